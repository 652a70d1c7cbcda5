//! Golden files: every seed playbook rendered for a known nginx, compared
//! byte for byte with tests/golden/; then every rendered configuration is
//! checked by the real `nginx -t`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the golden files;
//! review the diff before committing it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portico::facts::nginx_conf::Socket;
use portico::facts::{self, Facts};
use portico::host::Root;
use portico::playbook::{self, Playbook};

use served::facts;
use support::served;

/// (golden directory name, playbook)
fn playbooks() -> Vec<(String, Playbook)> {
    let mut out = vec![(
        "default".to_string(),
        playbook::parse("default", playbook::DEFAULT_PLAYBOOK).unwrap(),
    )];
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::fixtures::repo("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        out.push((name, playbook::load_file(&path).unwrap()));
    }
    for (_, pb) in &mut out {
        pb.resolve_hostname("web1.example.com", "test").unwrap();
    }
    out
}

/// What the Debian fixture tree's own configuration claims as default
/// server (its default site: port 80, both families).
fn taken_in_fixture() -> BTreeSet<Socket> {
    served::taken(&Root::new(support::fixtures::repo(
        "tests/fixtures/trees/debian12",
    )))
}

/// Every file portico renders for the playbook on the fixture tree: the
/// sites and snippets, and the catch-all default servers.
fn all_rendered(pb: &Playbook, f: &Facts) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = portico::plan::rendered(pb, f)
        .into_iter()
        .map(|r| (r.rel, r.content))
        .collect();
    files.extend(portico::plan::catch_all_file(pb, f, &taken_in_fixture()));
    files
}

fn check_golden(dir: &str, pb: &Playbook, f: &Facts) {
    let golden = support::fixtures::repo("tests/golden").join(dir);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let produced: Vec<String> = all_rendered(pb, f)
        .iter()
        .map(|(path, _)| {
            Path::new(path)
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
    for (file_path, content) in all_rendered(pb, f) {
        let name = Path::new(&file_path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let path = golden.join(&name);
        if update {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &content).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run UPDATE_GOLDEN=1 cargo test --test golden",
                path.display()
            )
        });
        assert_eq!(content, want, "{dir}/{name} differs from its golden file");
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

/// The plan keeps how to render each site's files, not their text (a run
/// renders a file when it compares or writes it): what it renders is, byte
/// for byte, what the golden files hold.
#[test]
fn the_plan_renders_on_demand_exactly_the_golden_files() {
    let f = facts("1.22.1", "3.0.19");
    for (name, pb) in playbooks() {
        let want: Vec<(String, String)> = portico::plan::rendered(&pb, &f)
            .into_iter()
            .map(|r| (r.rel, r.content))
            .collect();
        let task = portico::plan::nginx_configuration(&std::sync::Arc::new(pb), &f);
        let got: Vec<(String, String)> = task
            .task
            .files
            .iter()
            .map(|g| (g.rel.clone(), g.content.get().into_owned()))
            .collect();
        assert_eq!(got.len(), want.len(), "{name}: the same files");
        for ((rel, text), (want_rel, want_text)) in got.iter().zip(&want) {
            assert_eq!(rel, want_rel, "{name}");
            assert_eq!(text, want_text, "{name}: {rel} rendered on demand");
        }
    }
}

#[test]
#[cfg(feature = "system")]
fn every_rendered_configuration_passes_real_nginx_t() {
    served::assert_root();
    let f = facts(&served::host_nginx_version(), "3.0.0");
    for (name, pb) in playbooks() {
        // With Debian's own default site (port 80 is its default server)
        // and without it (portico's catch-all takes port 80 too).
        for keep_default_site in [true, false] {
            let dir = served::materialize(&pb, &f, keep_default_site);
            let (ok, said) = served::nginx_t(dir.path());
            assert!(
                ok,
                "{name} (default site kept: {keep_default_site}): nginx -t said:\n{said}"
            );
            assert!(!said.contains("[warn]"), "{name}: nginx -t warned:\n{said}");
        }
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
    // Fixed in 1.26.3 and 1.27.4; 1.27.0 to 1.27.3 still have it.
    for (version, warned) in [
        ("1.26.2", true),
        ("1.26.3", false),
        ("1.27.0", true),
        ("1.27.3", true),
        ("1.27.4", false),
        ("1.28.0", false),
    ] {
        let w = portico::plan::warnings(&pb, &facts(version, "3.0.19"));
        assert_eq!(!w.is_empty(), warned, "{version}: {w:?}");
    }
    let own_port = playbook::parse(
        "own.toml",
        &shared.replace("client_auth =", "listen = 8443\nclient_auth ="),
    )
    .unwrap();
    assert!(portico::plan::warnings(&own_port, &facts("1.22.1", "3.0.19")).is_empty());
}

#[test]
fn the_compat_profile_with_an_ecdsa_key_is_warned_about() {
    let text = std::fs::read_to_string(support::fixtures::repo("playbooks/self-signed-proxy.toml"))
        .unwrap();
    // The seed uses compat with an RSA key, as it should.
    let rsa = playbook::parse("self-signed-proxy.toml", &text).unwrap();
    assert!(portico::plan::warnings(&rsa, &facts("1.26.3", "3.0.19")).is_empty());
    let ecdsa = playbook::parse(
        "ecdsa.toml",
        &text.replace("key = \"rsa2048\"", "key = \"ecdsa-p256\""),
    )
    .unwrap();
    let w = portico::plan::warnings(&ecdsa, &facts("1.26.3", "3.0.19"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("certificate internal: the compat profile's DHE suites are DHE-RSA"),
        "{w:?}"
    );
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

/// nginx before 1.19.4 (Ubuntu 20.04 and 22.04 ship 1.18) has no
/// `ssl_reject_handshake`: its TLS catch-all completes the handshake with
/// a throwaway certificate and closes the connection unanswered.
#[test]
fn on_nginx_1_18_the_tls_catch_all_uses_a_throwaway_certificate() {
    let v = support::fixtures::text("tests/fixtures/nginx/ubuntu2204-nginx-1.18.0.txt");
    let build = facts::nginx::parse_v(&v).expect("a 1.18 nginx -V parses");
    assert_eq!(build.version, "1.18.0");
    let mut f = facts("1.18.0", "3.0.2");
    f.nginx.http2 = build.http2;
    let pb = playbook::parse("default", playbook::DEFAULT_PLAYBOOK).unwrap();
    let (_, catch_all) = portico::plan::catch_all_file(&pb, &f, &taken_in_fixture())
        .expect("a catch-all for the default playbook");
    assert!(!catch_all.contains("ssl_reject_handshake"), "{catch_all}");
    let tls = catch_all
        .split("\nserver {")
        .find(|s| s.contains(" ssl"))
        .expect("a TLS catch-all");
    assert!(tls.contains("ssl_certificate "), "{tls}");
    assert!(tls.contains("return 444;"), "{tls}");
    // 1.19.4 and later: the handshake itself is refused.
    let (_, modern) =
        portico::plan::catch_all_file(&pb, &facts("1.22.1", "3.0.19"), &taken_in_fixture())
            .unwrap();
    assert!(modern.contains("ssl_reject_handshake on;"), "{modern}");
}
