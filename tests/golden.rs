//! Golden files: every seed playbook rendered for a known nginx, compared
//! byte for byte with tests/golden/; then every rendered configuration is
//! checked by the real `nginx -t`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the golden files;
//! review the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

use portico::facts::{self, Facts};
use portico::host::cmd::FakeRunner;
use portico::host::Root;
use portico::playbook::{self, CertSource, Playbook};

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The Debian 12 fixture tree's facts with a known nginx build.
fn facts(nginx: &str, openssl: &str) -> Facts {
    let root = Root::new(manifest("tests/fixtures/trees/debian12"));
    let mut f = facts::gather(&root, &FakeRunner::new());
    f.nginx.installed = true;
    f.nginx.version = Some(nginx.into());
    f.nginx.openssl = Some(openssl.into());
    f.nginx.http2 = true;
    f
}

/// (golden directory name, playbook)
fn playbooks() -> Vec<(String, Playbook)> {
    let mut out = vec![(
        "default".to_string(),
        playbook::parse("default", playbook::DEFAULT_PLAYBOOK).unwrap(),
    )];
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        out.push((name, playbook::load_file(&path).unwrap()));
    }
    for (_, pb) in &mut out {
        pb.resolve_hostname("web1.example.com");
    }
    out
}

fn check_golden(dir: &str, pb: &Playbook, f: &Facts) {
    let golden = manifest("tests/golden").join(dir);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let produced: Vec<String> = portico::plan::rendered(pb, f)
        .iter()
        .map(|r| {
            Path::new(&r.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    // A golden file nothing renders any more is a stale expectation.
    if let Ok(entries) = std::fs::read_dir(&golden) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                produced.contains(&name),
                "{dir}/{name} is not rendered any more: delete it"
            );
        }
    }
    for file in portico::plan::rendered(pb, f) {
        let name = Path::new(&file.path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let path = golden.join(&name);
        if update {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &file.content).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run UPDATE_GOLDEN=1 cargo test --test golden",
                path.display()
            )
        });
        assert_eq!(
            file.content, want,
            "{dir}/{name} differs from its golden file"
        );
    }
}

#[test]
fn every_seed_playbook_matches_its_golden_files() {
    let f = facts("1.22.1", "3.0.19");
    for (name, pb) in playbooks() {
        check_golden(&name, &pb, &f);
    }
    // A current nginx and OpenSSL: `http2 on;` and the hybrid post-quantum group.
    let (_, default) = &playbooks()[0];
    check_golden(
        "default@nginx-1.27-openssl-3.5",
        default,
        &facts("1.27.4", "3.5.1"),
    );
}

/// Writes the playbook's rendered files and the certificates, CAs and
/// dhparam they reference into a copy of the Debian tree.
fn materialize(pb: &Playbook, f: &Facts) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!(
            "{}/.",
            manifest("tests/fixtures/trees/debian12").display()
        ))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let root = Root::new(dir.path());
    for file in portico::plan::rendered(pb, f) {
        let p = Path::new(&file.path);
        root.create_dir_all(p.parent().unwrap(), 0o755).unwrap();
        root.write_atomic(p, file.content.as_bytes(), 0o644)
            .unwrap();
        if let Some(link) = file.enable_link {
            root.symlink(Path::new(&link), p).unwrap();
        }
    }
    for c in &pb.certificates {
        // ACME and CA-issued ones stand in as self-signed: nginx -t reads them the same way.
        let names = c.names.clone().unwrap_or_else(|| {
            pb.sites
                .iter()
                .filter(|s| s.certificate == c.name)
                .flat_map(|s| s.server_names.clone())
                .collect()
        });
        let issued = portico::tls::self_signed(&names.into_iter().collect(), c.key, 30).unwrap();
        let paths = portico::plan::cert_paths(c);
        if c.source == CertSource::Files {
            continue;
        }
        for (p, pem, mode) in [
            (&paths.cert, &issued.cert_pem, 0o644),
            (&paths.key, &issued.key_pem, 0o600),
        ] {
            root.create_dir_all(p.parent().unwrap(), 0o700).unwrap();
            root.write_atomic(p, pem.as_bytes(), mode).unwrap();
        }
    }
    for ca in &pb.cas {
        portico::tls::ca::Ca::new(&root, &ca.name)
            .init(ca.days)
            .unwrap();
    }
    root.create_dir_all(Path::new("/var/lib/portico"), 0o755)
        .unwrap();
    let dh = Path::new(portico::tls::dhparam::PATH);
    root.write_atomic(
        dh,
        portico::tls::dhparam::rfc7919_pem(pb.tls.dhparam).as_bytes(),
        0o644,
    )
    .unwrap();
    dir
}

#[test]
fn every_rendered_configuration_passes_real_nginx_t() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts rendered trees over /etc/nginx in a private mount namespace: run as root (tests/run does)"
    );
    // The mount point for the CA files must exist on the host (an empty directory).
    std::fs::create_dir_all("/var/lib/portico").unwrap();
    let out = Command::new("nginx")
        .arg("-v")
        .output()
        .expect("nginx (tests/run installs it)");
    let v = String::from_utf8_lossy(&out.stderr);
    let version = v.trim().rsplit('/').next().unwrap().to_string();
    let f = facts(&version, "3.0.0");
    for (name, pb) in playbooks() {
        let dir = materialize(&pb, &f);
        let root = dir.path().display();
        let script = format!(
            "mount --bind {root}/etc/nginx /etc/nginx && mount --bind {root}/etc/ssl /etc/ssl && \
             mount --bind {root}/var/lib/portico /var/lib/portico && nginx -t"
        );
        let t = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .expect("unshare");
        let err = String::from_utf8_lossy(&t.stderr);
        assert!(
            t.status.success() && err.contains("test is successful"),
            "{name}: nginx -t said:\n{err}"
        );
    }
}

#[test]
fn client_auth_sharing_a_port_on_old_nginx_is_warned_about() {
    let shared = r#"version = 1
[[ca]]
name = "clients"
[[certificate]]
name = "c"
source = "self-signed"
[[site]]
server_names = ["www.example.com"]
certificate = "c"
[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
[[site]]
server_names = ["api.example.com"]
certificate = "c"
client_auth = { ca = "clients" }
[[site.location]]
path = "/"
proxy = "http://127.0.0.1:4000"
"#;
    let pb = playbook::parse("shared.toml", shared).unwrap();
    let w = portico::plan::warnings(&pb, &facts("1.22.1", "3.0.19"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("CVE-2025-23419"), "{w:?}");
    assert!(portico::plan::warnings(&pb, &facts("1.26.3", "3.0.19")).is_empty());
    let own_port = playbook::parse(
        "own.toml",
        &shared.replace("client_auth =", "listen = 8443\nclient_auth ="),
    )
    .unwrap();
    assert!(portico::plan::warnings(&own_port, &facts("1.22.1", "3.0.19")).is_empty());
}

#[test]
fn no_active_firewall_is_said_not_left_to_be_inferred() {
    let pb = playbook::parse("default", playbook::DEFAULT_PLAYBOOK).unwrap();
    let mut f = facts("1.22.1", "3.0.19");
    f.firewall = facts::FirewallBackend::None;
    let note = portico::plan::firewall_notice(&pb, &f).unwrap();
    assert!(note.contains("no ports are opened"), "{note}");
    f.firewall = facts::FirewallBackend::Ufw;
    assert_eq!(portico::plan::firewall_notice(&pb, &f), None);
    let named = playbook::parse(
        "none.toml",
        &playbook::DEFAULT_PLAYBOOK.replace("backend = \"auto\"", "backend = \"none\""),
    )
    .unwrap();
    assert_eq!(named.firewall.backend, playbook::FirewallBackend::None);
    f.firewall = facts::FirewallBackend::None;
    assert_eq!(portico::plan::firewall_notice(&named, &f), None);
}
