//! The Debian package on a fresh booted machine: what `apt-get install`
//! pulls in, the man pages, the embedded default serving HTTPS, the
//! packaged unit used as it is, bash completion, and a purge that leaves
//! nothing behind. tests/run builds the .deb (target/debian/) first.
#![cfg(feature = "system")]

use support::https::Request;
use support::machine;

use machine::pebble::start_pebble;
use machine::Machine;

/// A package tests/run built (`how` says how to build it by hand).
fn built(rel: &str, how: &str) -> std::path::PathBuf {
    let path = support::fixtures::repo(rel);
    assert!(
        path.exists(),
        "{} is missing: tests/run builds it ({how})",
        path.display()
    );
    path
}

/// The shipped binary: built against glibc 2.17 by tests/run.
fn shipped() -> std::path::PathBuf {
    built(
        "target/x86_64-unknown-linux-gnu/release/portico",
        "cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.17",
    )
}

/// `objdump ARGS BINARY`.
fn objdump(binary: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("objdump")
        .args(args)
        .arg(binary)
        .output()
        .expect("objdump (binutils; tests/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// glibc's own libraries: the only ones the shipped binary may link.
const GLIBC_LIBS: [&str; 7] = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
];

/// `[2, 17]` from the `2.17` at the start of `text`.
fn version_at(text: &str) -> Option<Vec<u32>> {
    let v: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<u32> = v.split('.').filter_map(|n| n.parse().ok()).collect();
    (!parts.is_empty()).then_some(parts)
}

/// The newest `GLIBC_` symbol version a binary asks for.
fn newest_glibc(binary: &std::path::Path) -> Vec<u32> {
    let symbols = objdump(binary, &["-T"]);
    let newest = symbols.split("GLIBC_").skip(1).filter_map(version_at).max();
    newest.expect("versioned glibc symbols in objdump -T")
}

/// The .deb's Depends is what the binary asks of glibc, and the .deb
/// carries that binary.
#[test]
fn the_deb_depends_on_the_glibc_the_binary_asks_for() {
    let newest = newest_glibc(&shipped());
    let v: Vec<String> = newest.iter().map(u32::to_string).collect();
    let out = std::process::Command::new("dpkg-deb")
        .args(["-f"])
        .arg(deb())
        .arg("Depends")
        .output()
        .expect("dpkg-deb");
    let depends = String::from_utf8_lossy(&out.stdout);
    assert_eq!(depends.trim(), format!("libc6 (>= {})", v.join(".")));
    let dir = tempfile::tempdir().unwrap();
    let unpacked = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb())
        .arg(dir.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(unpacked.success());
    let carried = newest_glibc(&dir.path().join("usr/bin/portico"));
    assert_eq!(carried, newest, "the .deb carries another binary");
}

/// One binary for every host the seeds name: it asks nothing newer than
/// glibc 2.17 (CentOS 7) and links only glibc's own libraries.
#[test]
fn the_shipped_binary_runs_on_glibc_2_17() {
    let newest = newest_glibc(&shipped());
    assert!(newest <= vec![2, 17], "needs GLIBC_{newest:?}");
    let needed: Vec<String> = objdump(&shipped(), &["-p"])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|l| l.trim().to_string())
        .collect();
    assert!(needed.iter().any(|l| l == "libc.so.6"), "{needed:?}");
    for lib in &needed {
        assert!(
            GLIBC_LIBS.contains(&lib.as_str()),
            "{lib} is not glibc's: {needed:?}"
        );
    }
}

/// What EL 7's rpm 4.11 provides of its own (`rpm --showrc`, "Features
/// supported by rpmlib"): a package needing any other cannot install there
/// (PayloadIsZstd, RichDependencies, Caret, ...).
const RPM_4_11: [&str; 17] = [
    "BuiltinLuaScripts",
    "CompressedFileNames",
    "ConcurrentAccess",
    "ExplicitPackageProvide",
    "FileCaps",
    "FileDigests",
    "HeaderLoadSortsTags",
    "LargeFiles",
    "PartialHardlinkSets",
    "PayloadFilesHavePrefix",
    "PayloadIsBzip2",
    "PayloadIsLzma",
    "PayloadIsXz",
    "ScriptletExpansion",
    "ScriptletInterpreterArgs",
    "TildeInVersions",
    "VersionedDependencies",
];

/// Whether an rpm requirement is one EL 7 meets: rpm 4.11's own features,
/// the declared glibc, or a glibc library at a symbol version up to 2.17.
fn el7_has(requirement: &str) -> bool {
    let r = requirement.trim().trim_end_matches("(64bit)");
    if let Some(feature) = r.strip_prefix("rpmlib(") {
        let feature = feature.split(')').next().unwrap_or_default();
        return RPM_4_11.contains(&feature);
    }
    // config(portico): the package's own config files, provided by itself.
    if r.starts_with("rtld(")
        || r.starts_with("config(portico) ")
        || r == "/bin/sh"
        || r == "glibc >= 2.17"
    {
        return true;
    }
    let (lib, version) = match r.split_once("(GLIBC_") {
        Some((lib, rest)) => (lib, version_at(rest)),
        None => (r.trim_end_matches("()"), None),
    };
    GLIBC_LIBS.contains(&lib) && version.is_none_or(|v| v <= vec![2, 17])
}

fn deb() -> std::path::PathBuf {
    built(
        &format!(
            "target/debian/portico_{}-1_amd64.deb",
            env!("CARGO_PKG_VERSION")
        ),
        "cargo build --release; cargo run --example packaging; cargo deb --no-build",
    )
}

/// The files of the machine outside what changes by itself (logs, caches,
/// package manager state, runtime): what a purge must give back.
fn files(m: &Machine) -> Vec<String> {
    let out = m.ok(&[
        "sh",
        "-c",
        "find /etc /usr /lib /var/lib /srv /root -xdev \\( -path /var/lib/dpkg -o -path /var/lib/apt \
         -o -path /var/lib/systemd -o -path /var/cache -o -path /var/log -o -path /root/.cache \
         -o -path /var/lib/man-db -o -path /etc/ld.so.cache \\) -prune -o -print | sort",
    ]);
    out.lines().map(String::from).collect()
}

const ACME_PLAYBOOK: &str = r#"version = 1

[firewall]
backend = "none"

[acme]
directory = "https://127.0.0.1:14000/dir"
ca_root = "/etc/pebble/ca.pem"
agree_terms = true

[[certificate]]
name = "app"
source = "acme"

[[site]]
server_names = ["app.test"]
certificate = "app"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#;

#[test]
fn the_deb_installs_serves_completes_and_purges_clean() {
    let deb = deb();
    let m = Machine::boot();
    // The harness puts a debug build in /usr/local/bin: the package's
    // /usr/bin/portico is the one under test.
    m.ok(&["rm", "/usr/local/bin/portico"]);
    std::fs::copy(&deb, m.root().join("root/portico.deb")).unwrap();

    // Without recommends it needs nothing the machine lacks; with them,
    // nginx and its libraries only.
    let lone = m.ok(&[
        "apt-get",
        "install",
        "-s",
        "--no-install-recommends",
        "/root/portico.deb",
    ]);
    let inst: Vec<&str> = lone.lines().filter(|l| l.starts_with("Inst ")).collect();
    assert_eq!(inst.len(), 1, "{lone}");
    assert!(inst[0].starts_with("Inst portico "), "{lone}");
    let with = m.ok(&["apt-get", "install", "-s", "/root/portico.deb"]);
    for line in with.lines().filter(|l| l.starts_with("Inst ")) {
        let pkg = line.split_whitespace().nth(1).unwrap();
        assert!(
            pkg == "portico" || pkg == "nginx" || pkg == "nginx-common" || pkg.starts_with("lib"),
            "apt-get install pulls in {pkg}:\n{with}"
        );
    }
    assert!(
        with.contains("Inst nginx "),
        "nginx is recommended:\n{with}"
    );

    // What a purge must give back: the machine with nginx, man and pebble
    // (not the package's business), before the package.
    m.ok(&["apt-get", "install", "-y", "-q", "nginx", "man-db"]);
    m.write("/etc/hosts", "127.0.0.1 localhost app.test\n");
    m.write("/root/site.toml", ACME_PLAYBOOK);
    start_pebble(&m);
    m.ok(&["systemctl", "stop", "nginx"]);
    let before = files(&m);

    m.ok(&["apt-get", "install", "-y", "-q", "/root/portico.deb"]);
    assert_eq!(
        m.ok(&["sh", "-c", "command -v portico"]).trim(),
        "/usr/bin/portico"
    );
    assert_eq!(m.ok(&["stat", "-c", "%a", "/etc/portico"]).trim(), "700");

    // The man pages render.
    for page in [
        vec!["portico"],
        vec!["portico-apply"],
        vec!["5", "portico.toml"],
    ] {
        let mut argv = vec!["env", "MANPAGER=cat", "MANWIDTH=80", "man"];
        argv.extend(page.iter().copied());
        let text = m.ok(&argv);
        assert!(text.contains("NAME"), "{page:?}:\n{text}");
    }
    assert!(m
        .ok(&["env", "MANPAGER=cat", "man", "5", "portico.toml"])
        .contains("propagation_timeout"));

    // Bash completion of `portico ap<TAB>`.
    let completed = m.ok(&[
        "bash",
        "-c",
        "source /usr/share/bash-completion/completions/portico; \
         COMP_WORDS=(portico ap); COMP_CWORD=1; COMP_LINE='portico ap'; COMP_POINT=10; \
         _portico portico ap portico; echo \"${COMPREPLY[@]}\"",
    ]);
    assert_eq!(completed.trim(), "apply", "{completed}");

    // The embedded default serves HTTPS.
    m.ok(&["portico", "apply"]);
    let code = m
        .https(&Request::get("https://localhost/").insecure())
        .status;
    assert_eq!(code, 502, "nginx answers over HTTPS (no backend on :3000)");

    // An ACME playbook: the daemon runs from the packaged unit, and apply
    // writes no unit of its own.
    m.ok(&["portico", "apply", "--replace", "/root/site.toml"]);
    let unit = m.ok(&["systemctl", "cat", "portico"]);
    assert!(
        unit.starts_with("# /lib/systemd/system/portico.service")
            && unit.contains("ExecStart=\"/usr/bin/portico\" daemon"),
        "{unit}"
    );
    assert!(!m.root().join("etc/systemd/system/portico.service").exists());
    assert_eq!(
        m.ok(&["systemctl", "is-active", "portico"]).trim(),
        "active"
    );

    // `portico remove --purge`, then the package's purge: nothing left.
    m.ok(&["portico", "remove", "--purge"]);
    m.ok(&["apt-get", "purge", "-y", "-q", "portico"]);
    m.ok(&["systemctl", "stop", "nginx"]);
    let after = files(&m);
    let added: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(added.is_empty(), "left behind after purge: {added:#?}");
}

/// The .rpm (tests/run builds it; no EL machine boots here): the same
/// contents at EL paths, nginx recommended only, and metadata rpm can read.
#[test]
fn the_rpm_holds_the_same_files_at_el_paths() {
    let rpm = built(
        &format!(
            "target/generate-rpm/portico-{}-1.x86_64.rpm",
            env!("CARGO_PKG_VERSION")
        ),
        "cargo generate-rpm",
    );
    let query = |args: &[&str]| {
        let out = std::process::Command::new("rpm")
            .args(args)
            .arg(&rpm)
            .output()
            .expect("rpm (tests/run installs it)");
        assert!(
            out.status.success(),
            "rpm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let files = query(&["-qlp"]);
    for f in [
        "/usr/bin/portico",
        "/usr/lib/systemd/system/portico.service",
        "/usr/lib/systemd/system/portico-renew.service",
        "/usr/lib/systemd/system/portico-renew.timer",
        "/usr/share/man/man8/portico.8",
        "/usr/share/man/man8/portico-apply.8",
        "/usr/share/man/man5/portico.toml.5",
        "/usr/share/bash-completion/completions/portico",
        "/usr/share/zsh/site-functions/_portico",
        "/usr/share/fish/vendor_completions.d/portico.fish",
        "/usr/share/doc/portico/examples/letsencrypt-reverse-proxy.toml",
        "/usr/share/doc/portico/examples/mtls-api.toml",
        "/usr/share/doc/portico/examples/oauth2-internal-services.toml",
        "/usr/share/doc/portico/examples/self-signed-proxy.toml",
        "/etc/portico/README",
    ] {
        assert!(
            files.lines().any(|l| l == f),
            "{f} not in the rpm:\n{files}"
        );
    }
    let info = query(&["-qip"]);
    assert!(info.contains("Name        : portico"), "{info}");
    assert!(
        info.contains(&format!("Version     : {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(info.contains("License     : Apache-2.0"), "{info}");
    assert_eq!(query(&["-qp", "--recommends"]).trim(), "nginx");
    // Nothing EL 7 lacks: glibc 2.17, its libraries, rpm's own features.
    let requires = query(&["-qpR"]);
    assert!(
        requires.lines().any(|l| l.trim() == "glibc >= 2.17"),
        "{requires}"
    );
    for r in requires.lines().filter(|l| !l.trim().is_empty()) {
        assert!(el7_has(r), "{r}: not on EL 7\n{requires}");
    }
    assert!(!query(&["-qp", "--requires"]).contains("nginx"));
    assert_eq!(
        query(&["-qp", "--configfiles"]).trim(),
        "/etc/portico/README"
    );
}
