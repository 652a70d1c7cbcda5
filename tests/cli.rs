//! Drives the built `portico` binary the way users and image builders do.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use report_json::task;
use support::report as report_json;
use support::served;

use support::bin::portico;

/// `portico ARGS` with `input` on its standard input.
fn portico_fed(args: &[&str], input: &str) -> Output {
    support::bin::Portico::new(args)
        .stdin(input.as_bytes())
        .run()
}

fn tree(name: &str) -> String {
    support::fixtures::repo(&format!("tests/fixtures/trees/{name}"))
        .display()
        .to_string()
}

/// A writable copy of a fixture tree.
fn copy_of_tree(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", tree(name)),
            dir.path().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "cp -a {name}");
    dir
}

/// The JSON report's contract: integer counts, tasks with a known status.
fn report(out: &Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    for key in ["changed", "unchanged", "failed"] {
        assert!(v[key].is_u64(), "{key} is not an integer: {v}");
    }
    for t in v["tasks"].as_array().expect("tasks array") {
        assert!(t["name"].is_string(), "{t}");
        assert!(t["changes"].is_array(), "{t}");
        let s = t["status"].as_str().unwrap();
        assert!(
            ["changed", "unchanged", "failed", "skipped"].contains(&s),
            "{t}"
        );
    }
    v
}

#[test]
fn check_of_the_embedded_default_on_a_debian_tree() {
    let out = portico(&["apply", "--check", "--json", "--root", &tree("debian12")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = report(&out);
    assert_eq!(v["failed"], 0);
    assert_eq!(task(&v, "packages nginx")["status"], "skipped");
    let nginx = task(&v, "nginx configuration");
    assert_eq!(nginx["status"], "changed");
    let changes = nginx["changes"].to_string();
    assert!(changes.contains("write /etc/nginx/portico/gen-"), "{nginx}");
    assert!(
        changes.contains("create /etc/nginx/conf.d/portico.conf"),
        "{nginx}"
    );
    let cert = task(&v, "certificate default");
    assert!(
        cert["changes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("self-signed certificate: missing"),
        "{cert}"
    );
}

#[test]
fn verbose_says_how_long_each_task_took_and_quiet_says_nothing() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let out = portico(&["-v", "apply", "--root", root]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    // `step{name="task" of="TASK"}: portico::timing: N ms`, one per task, no colours.
    let timed = |name: &str, of: &str| {
        log.lines().any(|l| {
            l.contains(&format!(
                r#"step{{name="{name}" of="{of}"}}: portico::timing: "#
            )) && l.ends_with(" ms")
        })
    };
    assert!(timed("task", "certificate default"), "{log}");
    assert!(timed("task", "nginx configuration"), "{log}");
    assert!(!log.contains('\x1b'), "{log}");
    let quiet = portico(&["apply", "--root", root]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("portico::timing"));
}

#[test]
fn a_playbook_on_standard_input_is_read_as_a_file_would_be() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let text =
        std::fs::read_to_string(support::fixtures::repo("src/playbook/default.toml")).unwrap();
    let out = portico_fed(&["apply", "--check", "--json", "--root", root, "-"], &text);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&out)["playbook"], "(standard input)");
    // A bad one is named as standard input, with line and column.
    let out = portico_fed(
        &["apply", "--check", "--root", root, "-"],
        "version = 1\nbogus = 2\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(standard input):2"), "{err}");
}

#[test]
fn check_on_a_rhel_tree_uses_conf_d() {
    let out = portico(&["apply", "--check", "--json", "--root", &tree("rocky9")]);
    assert_eq!(out.status.code(), Some(0));
    let v = report(&out);
    // The one file in nginx's own include directory, on EL's layout too.
    let changes = task(&v, "nginx configuration")["changes"].to_string();
    assert!(
        changes.contains("create /etc/nginx/conf.d/portico.conf"),
        "{v}"
    );
}

#[test]
fn check_of_every_seed_playbook() {
    for entry in std::fs::read_dir(support::fixtures::repo("playbooks")).unwrap() {
        let path = entry.unwrap().path();
        let out = portico(&[
            "apply",
            "--check",
            "--json",
            "--root",
            &tree("debian12"),
            path.to_str().unwrap(),
        ]);
        let v = report(&out);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // A failed task is exit 1, and everything that needs it is skipped, never half-done.
        let expected = if v["failed"] == 0 { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{name}: {v}");
        for t in v["tasks"].as_array().unwrap() {
            if t["status"] == "failed" {
                assert!(
                    t["reason"].as_str().is_some_and(|r| !r.is_empty()),
                    "{name}: {t}"
                );
            }
        }
        if name == "self-signed-proxy.toml" || name == "mtls-api.toml" {
            assert!(v["changed"].as_u64().unwrap() > 0, "{name}: {v}");
        }
    }
}

#[test]
fn check_diff_redacts_keys_and_shows_the_config() {
    let out = portico(&["apply", "--check", "--diff", "--root", &tree("debian12")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("@@ key material redacted"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "a key leaked into the diff");
    assert!(
        text.contains("+    server_name web1.example.com localhost;"),
        "{text}"
    );
    assert!(text.contains("+ssl_protocols TLSv1.2 TLSv1.3;"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("changed, 0 unchanged, 0 failed"),
        "{text}"
    );
}

#[test]
fn a_bad_playbook_exits_2_naming_file_line_and_column_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("site.toml");
    std::fs::write(
        &pb,
        "version = 1\n[[certificate]]\nname = \"c\"\nsource = \"self-signed\"\n[[site]]\nserver_names = [\"a.example\"]\ncertificate = \"c\"\n[[site.location]]\npath = \"/\"\nproxy = \"htp://x\"\n",
    )
    .unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = portico(&[
        "apply",
        "--root",
        root.to_str().unwrap(),
        pb.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:10:9: site[0].location[0].proxy: \"htp://x\" is not an http or https URL",
            pb.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "the tree was touched"
    );
}

#[test]
fn a_missing_playbook_and_a_bad_root_exit_2() {
    let out = portico(&["apply", "--check", "/nonexistent/site.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("/nonexistent/site.toml: cannot read playbook"));
    let out = portico(&["apply", "--check", "--root", "/nonexistent-root"]);
    assert_eq!(out.status.code(), Some(2));
    let out = portico(&["apply", "--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn apply_under_a_root_writes_files_then_changes_nothing() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let first = portico(&["apply", "--json", "--root", root]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let v = report(&first);
    assert!(v["changed"].as_u64().unwrap() >= 3, "{v}");
    // The generation, read through the live link the entry includes.
    let conf = std::fs::read_to_string(
        dir.path()
            .join("etc/nginx/portico/live/portico-default.https.conf"),
    )
    .unwrap();
    assert!(conf.starts_with("# Managed by portico"));
    let live = std::fs::read_link(dir.path().join("etc/nginx/portico/live")).unwrap();
    assert!(live.to_string_lossy().starts_with("gen-"), "{live:?}");
    let entry = std::fs::read_to_string(dir.path().join("etc/nginx/conf.d/portico.conf")).unwrap();
    assert!(
        entry.contains("include /etc/nginx/portico/live/*.conf;"),
        "{entry}"
    );
    // The certificate: nginx reads the live pair; the plain copies are its bytes.
    let live = std::fs::read_link(dir.path().join("etc/ssl/portico/live/default")).unwrap();
    assert!(live.starts_with("../pairs/default/"), "{live:?}");
    assert_eq!(
        std::fs::read(dir.path().join("etc/ssl/portico/private/default.key")).unwrap(),
        std::fs::read(dir.path().join("etc/ssl/portico/live/default/privkey.pem")).unwrap()
    );

    let second = portico(&["apply", "--json", "--root", root]);
    let v = report(&second);
    assert_eq!(v["changed"], 0, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
}

#[test]
fn facts_json_on_this_machine() {
    let out = portico(&["facts", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let os = std::fs::read_to_string("/etc/os-release").unwrap();
    let id = os
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .unwrap()
        .trim_matches('"');
    assert_eq!(v["distro"]["id"], id);
    assert!(v["distro"]["version"].is_string());
    assert!(["debian", "rhel", "unknown"].contains(&v["distro"]["family"].as_str().unwrap()));
    assert!(["apt", "yum", "dnf", "unknown"].contains(&v["package_manager"].as_str().unwrap()));
    assert!(v["systemd"].is_boolean());
    assert!(v["nginx"]["installed"].is_boolean());
    assert!(["ufw", "firewalld", "iptables", "nftables", "none"]
        .contains(&v["firewall"].as_str().unwrap()));
    // tests/run installs nginx: its real `nginx -V` must have been read.
    assert!(
        v["nginx"]["version"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "nginx -V was not read (install nginx: tests/run does): {v}"
    );
}

#[test]
#[cfg(feature = "system")]
fn the_rendered_configs_pass_real_nginx_t() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test bind-mounts the rendered tree over /etc in a private mount namespace: run it as root (tests/run does)"
    );
    // The embedded default (intermediate profile) and seed 001 (compat: DHE + dhparam).
    let playbook = support::fixtures::repo("playbooks/self-signed-proxy.toml")
        .display()
        .to_string();
    for args in [vec![], vec![playbook.as_str()]] {
        let dir = copy_of_tree("debian12");
        let root = dir.path().to_str().unwrap();
        let mut apply = vec!["apply", "--root", root];
        apply.extend(args.iter().copied());
        let out = portico(&apply);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The host's /etc is untouched: the tree is mounted over it only inside
        // a mount namespace that ends with the command.
        let (ok, err) = served::nginx_t(dir.path());
        assert!(ok, "nginx -t rejected the config of {args:?}:\n{err}");
    }
}

#[test]
fn protected_sites_are_planned_with_their_protection() {
    // mtls-api: the CA comes first and the site needs it.
    let pb = support::fixtures::repo("playbooks/mtls-api.toml")
        .display()
        .to_string();
    let out = portico(&[
        "apply",
        "--check",
        "--json",
        "--diff",
        "--root",
        &tree("debian12"),
        &pb,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = report(&out);
    let names: Vec<&str> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let ca = names.iter().position(|n| *n == "ca clients").unwrap();
    let site = names
        .iter()
        .position(|n| *n == "nginx configuration")
        .unwrap();
    assert!(ca < site, "{names:?}");
    // --diff shows the CA certificate but never its key.
    let text = portico(&[
        "apply",
        "--check",
        "--diff",
        "--root",
        &tree("debian12"),
        &pb,
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("+    ssl_verify_client optional;"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "a key leaked into the diff");
}

#[test]
fn help_teaches_with_examples() {
    let out = portico(&["apply", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("--check") && text.contains("--root"),
        "{text}"
    );
}

#[test]
fn provided_certificate_files_are_validated() {
    // Two trees, each with a certificate and key portico made itself.
    let a = copy_of_tree("debian12");
    let b = copy_of_tree("debian12");
    for t in [&a, &b] {
        let out = portico(&["apply", "--root", t.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
        // The operator's own files live outside portico's directories.
        let own = t.path().join("etc/ssl/own");
        std::fs::create_dir_all(&own).unwrap();
        for (from, to) in [
            ("etc/ssl/portico/certs/default.crt", "default.crt"),
            ("etc/ssl/portico/private/default.key", "default.key"),
        ] {
            std::fs::copy(t.path().join(from), own.join(to)).unwrap();
        }
    }
    let pb = a.path().join("files.toml");
    let playbook = |key: &str| {
        format!(
            "version = 1\n[[certificate]]\nname = \"own\"\nsource = \"files\"\n\
             cert_file = \"/etc/ssl/own/default.crt\"\nkey_file = \"{key}\"\n\
             [[site]]\nserver_names = [\"localhost\"]\ncertificate = \"own\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        )
    };
    std::fs::write(&pb, playbook("/etc/ssl/own/default.key")).unwrap();
    let root = a.path().to_str().unwrap();
    let out = portico(&[
        "apply",
        "--check",
        "--json",
        "--root",
        root,
        pb.to_str().unwrap(),
    ]);
    let v = report(&out);
    assert_eq!(task(&v, "certificate own")["status"], "unchanged", "{v}");

    // The other tree's key does not belong to this certificate.
    std::fs::copy(
        b.path().join("etc/ssl/own/default.key"),
        a.path().join("etc/ssl/own/other.key"),
    )
    .unwrap();
    std::fs::write(&pb, playbook("/etc/ssl/own/other.key")).unwrap();
    let out = portico(&[
        "apply",
        "--check",
        "--json",
        "--root",
        root,
        pb.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = report(&out);
    let t = task(&v, "certificate own");
    assert_eq!(t["status"], "failed");
    assert_eq!(
        t["reason"],
        "/etc/ssl/own/default.crt with /etc/ssl/own/other.key: the key does not match the certificate"
    );
}

#[test]
fn a_playbook_ca_is_created_once_with_private_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let pb = support::fixtures::repo("playbooks/mtls-api.toml")
        .display()
        .to_string();
    let first = report(&portico(&["apply", "--json", "--root", root, &pb]));
    assert_eq!(task(&first, "ca clients")["status"], "changed", "{first}");
    let ca = dir.path().join("var/lib/portico/ca/clients");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ca), 0o700);
    assert_eq!(mode(&ca.join("ca.key")), 0o600);
    let crl = std::fs::read_to_string(ca.join("crl.pem")).unwrap();
    assert!(crl.starts_with("-----BEGIN X509 CRL-----"));
    let key_before = std::fs::read(ca.join("ca.key")).unwrap();
    let second = report(&portico(&["apply", "--json", "--root", root, &pb]));
    assert_eq!(task(&second, "ca clients")["status"], "unchanged");
    assert_eq!(
        std::fs::read(ca.join("ca.key")).unwrap(),
        key_before,
        "the CA key was replaced"
    );
}

/// `source = "ca"`: a server certificate signed by the playbook's own CA,
/// made in the same run that creates the CA; `--check` says it waits for the
/// CA; re-created CA, re-issued certificate.
#[test]
fn a_server_certificate_from_the_playbooks_ca_chains_to_it() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let pb = dir.path().join("internal.toml");
    std::fs::write(
        &pb,
        "version = 1\n[[ca]]\nname = \"internal\"\n[[certificate]]\nname = \"app\"\nsource = \"ca\"\n\
         ca = \"internal\"\nnames = [\"app.corp.test\", \"10.0.0.7\"]\n[[site]]\nserver_names = [\"app.corp.test\"]\n\
         certificate = \"app\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    )
    .unwrap();
    let pb = pb.to_str().unwrap();

    let check = report(&portico(&[
        "apply", "--check", "--json", "--root", root, pb,
    ]));
    let cert = task(&check, "certificate app");
    assert_eq!(cert["status"], "skipped", "{check}");
    assert!(
        cert["reason"].as_str().unwrap().contains("ca internal"),
        "{check}"
    );

    let first = report(&portico(&["apply", "--json", "--root", root, pb]));
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(task(&first, "certificate app")["status"], "changed");
    let crt = dir.path().join("etc/ssl/portico/certs/app.crt");
    let ca = dir.path().join("var/lib/portico/ca/internal/ca.crt");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let verify = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca.to_str().unwrap(),
        crt.to_str().unwrap(),
    ]);
    assert!(verify.trim_end().ends_with(": OK"), "{verify}");
    let text = openssl(&["x509", "-noout", "-text", "-in", crt.to_str().unwrap()]);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(
        text.contains("DNS:app.corp.test") && text.contains("IP Address:10.0.0.7"),
        "{text}"
    );
    // The file is the chain nginx serves: leaf, then the CA.
    let chain = std::fs::read_to_string(&crt).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(chain.ends_with(&std::fs::read_to_string(&ca).unwrap()));

    let second = report(&portico(&["apply", "--json", "--root", root, pb]));
    assert_eq!(second["changed"], 0, "{second}");

    // A new CA under the same name: the old certificate no longer chains.
    std::fs::remove_dir_all(dir.path().join("var/lib/portico/ca/internal")).unwrap();
    let third = report(&portico(&["apply", "--json", "--root", root, pb]));
    assert_eq!(
        task(&third, "certificate app")["status"],
        "changed",
        "{third}"
    );
    assert!(
        third
            .to_string()
            .contains("not issued by the current ca internal"),
        "{third}"
    );
    let verify = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        crt.to_str().unwrap(),
    ]);
    assert!(verify.trim_end().ends_with(": OK"), "{verify}");
}

#[test]
fn generate_dhparam_runs_openssl_once_and_keeps_the_result() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let pb = dir.path().join("dh.toml");
    let text = std::fs::read_to_string(support::fixtures::repo("playbooks/self-signed-proxy.toml"))
        .unwrap()
        .replace(
            "dhparam = \"ffdhe2048\"",
            "dhparam = \"ffdhe2048\"\ngenerate_dhparam = true",
        );
    std::fs::write(&pb, text).unwrap();
    let pb = pb.to_str().unwrap();
    let plan = report(&portico(&[
        "apply", "--check", "--json", "--root", root, pb,
    ]));
    let t = task(&plan, "file /etc/nginx/portico-dhparam.pem");
    assert!(
        t["changes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("generate 2048-bit"),
        "{t}"
    );
    // A real generation: seconds of CPU, once.
    let applied = report(&portico(&["apply", "--json", "--root", root, pb]));
    assert_eq!(applied["failed"], 0, "{applied}");
    let file = dir.path().join("etc/nginx/portico-dhparam.pem");
    let check = Command::new("openssl")
        .args(["dhparam", "-check", "-noout", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    // openssl 3 reports the check on stderr.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.status.success() && said.contains("DH parameters appear to be ok"),
        "{said}"
    );
    let generated = std::fs::read(&file).unwrap();
    assert_ne!(
        generated,
        portico::tls::dhparam::rfc7919_pem(portico::playbook::DhGroup::Ffdhe2048).as_bytes()
    );
    let again = report(&portico(&["apply", "--json", "--root", root, pb]));
    assert_eq!(
        task(&again, "file /etc/nginx/portico-dhparam.pem")["status"],
        "unchanged"
    );
    assert_eq!(std::fs::read(&file).unwrap(), generated);
}

#[test]
fn tightened_permissions_are_never_loosened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let seed = support::fixtures::repo("playbooks/self-signed-proxy.toml");
    let seed = seed.to_str().unwrap();
    assert_eq!(
        portico(&["apply", "--root", root, seed]).status.code(),
        Some(0)
    );
    let installed = dir.path().join("etc/portico/playbook.toml");
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o400)).unwrap();
    let v = report(&portico(&["apply", "--json", "--root", root, seed]));
    assert_eq!(
        task(&v, "file /etc/portico/playbook.toml")["status"],
        "unchanged"
    );
    // Even a rewrite keeps the operator's tighter mode.
    let edited = format!(
        "# edited by hand\n{}",
        std::fs::read_to_string(seed).unwrap()
    );
    // (Made writable for the edit, as an editor would, then 0400 again.)
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&installed, edited).unwrap();
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o400)).unwrap();
    let v = report(&portico(&["apply", "--json", "--root", root, seed]));
    assert_eq!(
        task(&v, "file /etc/portico/playbook.toml")["status"],
        "changed"
    );
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o400
    );
}

#[test]
fn a_file_edited_in_the_live_generation_is_put_back() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    assert_eq!(portico(&["apply", "--root", root]).status.code(), Some(0));
    let snippet = dir
        .path()
        .join("etc/nginx/portico/live/snippets/portico-proxy.conf");
    let was = std::fs::read_to_string(&snippet).unwrap();
    std::fs::write(&snippet, "# edited by hand\n").unwrap();
    let v = report(&portico(&["apply", "--json", "--root", root]));
    assert_eq!(task(&v, "nginx configuration")["status"], "changed", "{v}");
    let live = dir
        .path()
        .join("etc/nginx/portico/live/snippets/portico-proxy.conf");
    assert_eq!(std::fs::read_to_string(live).unwrap(), was);
    let v = report(&portico(&["apply", "--json", "--root", root]));
    assert_eq!(v["changed"], 0, "{v}");
}

#[test]
#[cfg(feature = "system")]
fn a_managed_file_given_away_is_owned_by_root_again() {
    use std::os::unix::fs::MetadataExt;
    assert!(
        nix::unistd::geteuid().is_root(),
        "run as root (tests/run does)"
    );
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    assert_eq!(portico(&["apply", "--root", root]).status.code(), Some(0));
    // The key itself, in its pair (the stable name is a link to it).
    let pair = std::fs::read_link(dir.path().join("etc/ssl/portico/live/default")).unwrap();
    let id = pair.file_name().unwrap().to_string_lossy().to_string();
    let key = dir
        .path()
        .join(format!("etc/ssl/portico/pairs/default/{id}/privkey.pem"));
    std::os::unix::fs::lchown(&key, Some(65534), Some(65534)).unwrap();
    let v = report(&portico(&["apply", "--json", "--root", root]));
    let t = task(&v, "certificate default");
    assert_eq!(
        t["changes"][0]["reason"],
        format!("chown 65534:65534 -> 0:0 /etc/ssl/portico/pairs/default/{id}/privkey.pem"),
        "{t}"
    );
    let m = std::fs::metadata(&key).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let v = report(&portico(&["apply", "--json", "--root", root]));
    assert_eq!(v["changed"], 0, "{v}");
}

#[test]
fn ca_names_and_lifetimes_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out_dir = dir.path().join("out");
    let out = out_dir.to_str().unwrap();
    for args in [
        vec!["ca", "--root", root, "init", "."],
        vec!["ca", "--root", root, "init", ".."],
        vec!["ca", "--root", root, "init", "../x"],
        vec!["ca", "--root", root, "init", "a/b"],
        vec!["ca", "--root", root, "init", ""],
        vec!["ca", "--root", root, "list", ".."],
        vec!["ca", "--root", root, "revoke", ".", "01"],
        vec!["ca", "--root", root, "init", "ok", "--days", "0"],
        vec!["ca", "--root", root, "init", "ok", "--days", "99999999999"],
        vec![
            "ca", "--root", root, "issue", "ok", "--cn", "a", "--out", out, "--days", "-1",
        ],
        vec![
            "ca",
            "--root",
            root,
            "issue",
            "ok",
            "--cn",
            "a",
            "--out",
            out,
            "--days",
            "9223372036854775807",
        ],
    ] {
        let o = portico(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is not a CA name") || err.contains("not in 1.."),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn a_hostile_host_name_is_an_error_naming_etc_hostname() {
    let dir = copy_of_tree("debian12");
    std::fs::write(
        dir.path().join("etc/hostname"),
        "web1\nserver { listen 81; location / { proxy_pass http://evil; } }\n",
    )
    .unwrap();
    let before = std::fs::read_dir(dir.path().join("etc/nginx/sites-available"))
        .unwrap()
        .count();
    let out = portico(&["apply", "--root", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/etc/hostname: \"web1\\nserver {"), "{err}");
    assert!(err.contains("cannot stand for {hostname}"), "{err}");
    let after = std::fs::read_dir(dir.path().join("etc/nginx/sites-available"))
        .unwrap()
        .count();
    assert_eq!(before, after, "nothing was written");
}

#[test]
fn a_symlinked_key_directory_is_never_written_through() {
    let dir = copy_of_tree("debian12");
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/ssl/portico")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("etc/ssl/portico/private")).unwrap();
    let out = portico(&["apply", "--json", "--root", dir.path().to_str().unwrap()]);
    let v = report(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let cert = task(&v, "certificate default");
    assert_eq!(cert["status"], "failed", "{cert}");
    assert!(
        cert["reason"]
            .as_str()
            .unwrap()
            .contains("/etc/ssl/portico/private is a symbolic link"),
        "{cert}"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "a key was written outside the root"
    );
}

/// A certificate for `name` valid for 90 days from now, issued by a CA of
/// its own (as an ACME server issues them), and its key.
fn acme_like(name: &str) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "stand-in ACME CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![name.to_string()]).unwrap();
    leaf.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    leaf.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(89);
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    (format!("{}{}", leaf.pem(), ca.pem()), key.serialize_pem())
}

#[test]
fn a_state_file_that_cannot_be_saved_is_reported_and_a_corrupt_one_moved_aside() {
    let dir = copy_of_tree("debian12");
    let root = dir.path();
    // A valid, far-from-due certificate where the ACME one lives, issued
    // by a CA as an ACME one is (a self-signed one would be re-issued: the
    // playbook wants it from the ACME server).
    let (cert_pem, key_pem) = acme_like("site.test");
    portico::tasks::pair::install(
        &portico::host::Root::new(root),
        "site",
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
    )
    .unwrap();
    // Nothing listens there: ARI is not available, which is not fatal.
    let pb = root.join("site.toml");
    std::fs::write(
        &pb,
        "version = 1\n[acme]\ndirectory = \"https://127.0.0.1:9/dir\"\nagree_terms = true\n\
         [[certificate]]\nname = \"site\"\nsource = \"acme\"\n[[site]]\nserver_names = [\"site.test\"]\n\
         certificate = \"site\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    )
    .unwrap();
    // A corrupt state file: moved aside, renewal goes on.
    std::fs::create_dir_all(root.join("var/lib/portico")).unwrap();
    std::fs::write(root.join("var/lib/portico/state.json"), "{ not json").unwrap();
    let out = portico(&[
        "renew",
        "--json",
        "--root",
        root.to_str().unwrap(),
        pb.to_str().unwrap(),
    ]);
    let v = report(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(task(&v, "certificate site")["status"], "unchanged", "{v:#}");
    let warning = v["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("state.json:1:3: not a portico state file"),
        "{warning}"
    );
    assert!(
        warning.contains("moved it to /var/lib/portico/state.json.corrupt-"),
        "{warning}"
    );
    let aside: Vec<_> = std::fs::read_dir(root.join("var/lib/portico"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");

    // The state cannot be written (its directory became a symlink): the
    // report says so, and the exit code is 1, with the report.
    std::fs::rename(
        root.join("var/lib/portico"),
        root.join("var/lib/portico-real"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        root.join("var/lib/portico-real"),
        root.join("var/lib/portico"),
    )
    .unwrap();
    let out = portico(&[
        "renew",
        "--json",
        "--root",
        root.to_str().unwrap(),
        pb.to_str().unwrap(),
    ]);
    let v = report(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let state = task(&v, "state /var/lib/portico/state.json");
    assert_eq!(state["status"], "failed");
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains("were not recorded"),
        "{state}"
    );
}

#[test]
#[cfg(feature = "system")]
fn validate_runs_real_nginx_t_and_changes_nothing_on_the_host() {
    served::assert_root();
    let listing = || {
        let out = Command::new("find")
            .args(["/etc/nginx", "/etc/ssl", "-printf", "%p %s %T@\n"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = listing();
    let seed = support::fixtures::repo("playbooks/mtls-api.toml")
        .display()
        .to_string();
    let out = portico(&["validate", &seed]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("nginx -t: the rendered configuration is accepted"),
        "{said}"
    );

    // Valid to portico, rejected by nginx: a backend name that does not resolve.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(support::fixtures::repo("playbooks/mtls-api.toml"))
            .unwrap()
            .replace("http://127.0.0.1:4000", "http://backend.invalid:4000"),
    )
    .unwrap();
    let out = portico(&["validate", bad.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("nginx -t: REJECTED"), "{said}");
    assert!(
        said.contains("host not found in upstream \"backend.invalid:4000\""),
        "{said}"
    );

    // A playbook portico refuses never reaches nginx.
    std::fs::write(&bad, "version = 1\n[[site]]\n").unwrap();
    let out = portico(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        listing(),
        before,
        "validate changed files under /etc/nginx or /etc/ssl"
    );
}

#[test]
fn status_json_reads_the_certificates_as_openssl_does() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let seed = support::fixtures::repo("playbooks/mtls-api.toml")
        .display()
        .to_string();
    let out = portico(&["apply", "--root", root, &seed]);
    assert_eq!(out.status.code(), Some(0));
    // No playbook named: the one apply installed.
    let out = portico(&["status", "--json", "--root", root]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["playbook"], "/etc/portico/playbook.toml");
    let c = &v["certificates"][0];
    assert_eq!(c["name"], "api");
    assert_eq!(c["source"], "self-signed");
    let cert = dir.path().join("etc/ssl/portico/certs/api.crt");
    let x = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-serial",
            "-fingerprint",
            "-sha256",
            "-enddate",
            "-in",
        ])
        .arg(&cert)
        .output()
        .unwrap();
    let x = String::from_utf8_lossy(&x.stdout).into_owned();
    let field = |k: &str| {
        x.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} in {x}"))
            .to_string()
    };
    let cur = &c["current"];
    assert_eq!(
        cur["serial"]
            .as_str()
            .unwrap()
            .replace(':', "")
            .to_uppercase(),
        field("serial=")
    );
    assert_eq!(cur["fingerprint"], field("sha256 Fingerprint="));
    let end = Command::new("date")
        .args(["-u", "-d", &field("notAfter="), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(
        cur["not_after"],
        String::from_utf8_lossy(&end.stdout).trim()
    );
    assert_eq!(c["renewal"]["by"], "apply");
    assert_eq!(v["sites"][0]["backends"][0], "/ -> http://127.0.0.1:4000");
    assert_eq!(v["sites"][0]["port"], 8443);

    // An expired certificate makes status fail, for a monitoring check.
    let names = ["api.example.com".to_string()].into();
    let old = portico::tls::self_signed(
        &names,
        portico::playbook::KeyType::EcdsaP256,
        1,
        served::now() - 3 * 86_400,
    )
    .unwrap();
    // Into the live pair nginx reads (the plain copy is only a copy).
    std::fs::write(
        dir.path().join("etc/ssl/portico/live/api/fullchain.pem"),
        old.cert_pem,
    )
    .unwrap();
    let out = portico(&["status", "--root", root]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("problem: certificate api: expired at "),
        "{said}"
    );
    assert!(said.contains("EXPIRED"), "{said}");
}

/// `portico apply | head -1`: once the reader is gone the output stops, the
/// work does not. Standard output here is a pipe whose read end is closed
/// before portico starts, so its first write already fails (EPIPE).
#[test]
fn a_closed_output_pipe_ends_the_output_not_the_apply() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let out = Command::new(support::bin::exe())
        .args(["apply", "--root", root])
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Everything was written; a second apply finds nothing to do.
    assert!(dir
        .path()
        .join("etc/nginx/portico/live/portico-default.https.conf")
        .exists());
    let v = report(&portico(&["apply", "--json", "--root", root]));
    assert_eq!(v["changed"], 0, "{v}");
}

/// An image builder's first `apply --root` into an empty directory creates
/// /etc and /var on the way; the manifest must not claim them (a manifest
/// naming /etc is refused when read back), so the next apply just converges.
#[test]
fn apply_into_an_empty_root_twice() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let playbook = support::fixtures::repo("playbooks/self-signed-proxy.toml");
    let playbook = playbook.to_str().unwrap();
    let first = portico(&["apply", "--json", "--root", root, playbook]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr)
    );
    let second = portico(&["apply", "--json", "--root", root, playbook]);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let v = report(&second);
    assert_eq!(v["changed"], 0, "{v}");
    let manifest =
        std::fs::read_to_string(dir.path().join("var/lib/portico/managed.json")).unwrap();
    for top in ["\"/etc\"", "\"/var\""] {
        assert!(!manifest.contains(top), "{top} in {manifest}");
    }
}

// The command line as a new user meets it (#29).

/// Standard error and output together, for messages.
fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A playbook with one self-signed site named `site`.
fn one_site(site: &str) -> String {
    format!(
        "version = 1\n\n[[certificate]]\nname = \"{site}\"\nsource = \"self-signed\"\n\n\
         [[site]]\nserver_names = [\"{site}.test\"]\ncertificate = \"{site}\"\n\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
    )
}

#[test]
fn a_bare_apply_keeps_the_installed_playbook_and_a_replacement_needs_replace() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let seed = support::fixtures::repo("playbooks/self-signed-proxy.toml");
    let first = portico(&["apply", "--root", root, seed.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", said(&first));
    // `portico apply` with no file: the installed playbook, nothing to do.
    let bare = portico(&["apply", "--check", "--json", "--root", root]);
    let v = report(&bare);
    assert_eq!(v["playbook"], "/etc/portico/playbook.toml", "{v}");
    assert_eq!(v["changed"], 0, "{v}");
    // Another playbook that keeps none of its sites: refused without
    // --replace (no terminal to ask on), said in --check, done with it.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, one_site("other")).unwrap();
    let other = other.to_str().unwrap();
    let refused = portico(&["apply", "--root", root, other]);
    assert_eq!(refused.status.code(), Some(2), "{}", said(&refused));
    assert!(
        said(&refused).contains("keeps none of the sites"),
        "{}",
        said(&refused)
    );
    assert!(said(&refused).contains("--replace"), "{}", said(&refused));
    assert!(
        dir.path()
            .join("etc/ssl/portico/certs/internal.crt")
            .exists(),
        "nothing was pruned"
    );
    let check = portico(&["apply", "--check", "--json", "--root", root, other]);
    assert!(report(&check)["warnings"].to_string().contains("--replace"));
    let replaced = portico(&["apply", "--replace", "--root", root, other]);
    assert_eq!(replaced.status.code(), Some(0), "{}", said(&replaced));
}

#[test]
fn every_playbook_error_comes_in_one_run_in_line_order_with_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("five.toml");
    std::fs::write(
        &file,
        "version = 1\n\n[tls]\nprofile = \"modern\"\ndhparam_bits = 2048\n\n\
         [[certificate]]\nname = \"web\"\nsource = \"self-signed\"\ndays = \"365\"\n\n\
         [[site]]\nserver_names = [\"a.test\"]\ncertificate = \"web\"\n\n\
         [[site.location]]\npath = \"/\"\nprxy = \"http://127.0.0.1:3000\"\n\n\
         [[sites]]\nserver_names = [\"b.test\"]\n\n\
         [[site]]\nserver_names = [\"a.test\"]\ncertificate = \"nope\"\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3001\"\n",
    )
    .unwrap();
    let out = portico(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 6, "every mistake at once:\n{err}");
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{err}");
    let line_no = |l: &str| -> usize { l.split(':').nth(2).unwrap().parse().unwrap() };
    assert!(
        lines.windows(2).all(|w| line_no(w[0]) <= line_no(w[1])),
        "line order:\n{err}"
    );
    for want in [
        "five.toml:5:1: tls.dhparam_bits: unknown key `dhparam_bits`",
        "certificate[0].days: expected a whole number",
        "(write it without quotes: 365)",
        "unknown key `prxy`; did you mean `proxy`?",
        "unknown key `sites`; did you mean `site`?",
        "duplicate server name \"a.test\"",
        "unknown certificate \"nope\"",
    ] {
        assert!(err.contains(want), "{want:?} missing:\n{err}");
    }
    assert!(
        !err.contains("u32") && !err.contains("invalid type"),
        "{err}"
    );
}

#[test]
fn validate_is_apply_check_and_runs_as_any_user() {
    let dir = tempfile::tempdir().unwrap();
    // Readable by a user other than root.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let pb = dir.path().join("compat.toml");
    std::fs::write(
        &pb,
        "version = 1\n[tls]\nprofile = \"compat\"\n\n[[certificate]]\nname = \"web\"\nsource = \"self-signed\"\n\
         key = \"ecdsa-p256\"\n\n[[site]]\nserver_names = [\"a.test\"]\ncertificate = \"web\"\n\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&pb, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let pb = pb.to_str().unwrap();
    let tree = copy_of_tree("debian12");
    let root = tree.path().to_str().unwrap();
    // The warnings apply prints, in the same words.
    let check = report(&portico(&[
        "apply", "--check", "--json", "--root", root, pb,
    ]));
    let v: Value =
        serde_json::from_slice(&portico(&["validate", "--json", "--root", root, pb]).stdout)
            .unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["mode"], "validate");
    assert_eq!(v["warnings"], check["warnings"], "{v}");
    assert!(v["warnings"].to_string().contains("ecdsa"), "{v}");
    // As a user other than root: valid, and it says what it did not check.
    let exe = support::bin::exe();
    let as_nobody = if nix::unistd::geteuid().is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(["validate", pb])
            .output()
            .unwrap()
    } else {
        Command::new(&exe).args(["validate", pb]).output().unwrap()
    };
    let text = said(&as_nobody);
    assert_eq!(as_nobody.status.code(), Some(0), "{text}");
    assert!(text.contains("not checked: nginx -t"), "{text}");
    assert!(text.lines().last() == Some("valid"), "{text}");
    // A certificate file that is not there is the playbook's fault: 2.
    let missing = dir.path().join("missing.toml");
    std::fs::write(
        &missing,
        "version = 1\n[[certificate]]\nname = \"web\"\nsource = \"files\"\ncert_file = \"/nonexistent/web.crt\"\n\
         key_file = \"/nonexistent/web.key\"\n\n[[site]]\nserver_names = [\"a.test\"]\ncertificate = \"web\"\n\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    )
    .unwrap();
    let out = portico(&["validate", "--root", root, missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("does not exist"), "{}", said(&out));
}

#[test]
fn facts_text_uses_the_words_of_the_json() {
    let tree = copy_of_tree("debian12");
    let out = portico(&["facts", "--root", tree.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for debug in [
        "Apt",
        "None",
        "SitesEnabled",
        "Debian family",
        "\"",
        "(from the default",
    ] {
        assert!(!text.contains(debug), "{debug:?} in:\n{text}");
    }
    assert!(text.contains("package manager: apt"), "{text}");
    assert!(text.contains("layout sites-enabled"), "{text}");
    let v: Value = serde_json::from_slice(
        &portico(&["facts", "--json", "--root", tree.path().to_str().unwrap()]).stdout,
    )
    .unwrap();
    // Not asked under --root: unknown, not false.
    assert!(v["nginx"]["http2"].is_null(), "{v}");
    assert_eq!(v["schema"], 1);
}

#[test]
fn reports_say_unchanged_and_show_what_is_new_as_new() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let out = portico(&["apply", "--check", "--diff", "--root", root]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // A new key's diff starts from nothing; a new certificate is shown by
    // what it says.
    assert!(
        text.contains("--- /dev/null\n+++ /etc/ssl/portico/live/default/privkey.pem"),
        "{text}"
    );
    assert!(text.contains("+subject CN="), "{text}");
    assert!(!text.contains("+MII"), "no base64: {text}");
    // Each directory is said once.
    let creates: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("create directory /etc/ssl/portico "))
        .collect();
    assert!(creates.len() <= 1, "{creates:?}");
    let applied = portico(&["apply", "--root", root]);
    assert_eq!(applied.status.code(), Some(0), "{}", said(&applied));
    let again = String::from_utf8_lossy(&portico(&["apply", "--root", root]).stdout).into_owned();
    assert!(again.contains("   unchanged  "), "{again}");
    assert!(!again.contains("          ok  "), "{again}");
}

#[test]
fn json_reports_have_one_versioned_shape() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let v = report(&portico(&[
        "apply", "--check", "--json", "--diff", "--root", root,
    ]));
    assert_eq!(v["schema"], 1);
    assert_eq!(v["mode"], "check");
    assert_eq!(v["rolled_back"], false);
    let tasks = v["tasks"].as_array().unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t["diffs"].as_array().is_some_and(|d| !d.is_empty())),
        "diffs in the JSON with --diff: {v}"
    );
    let change = &tasks.iter().find(|t| t["status"] == "changed").unwrap()["changes"][0];
    for key in ["action", "path", "reason"] {
        assert!(change.get(key).is_some(), "{key} in {change}");
    }
    let plain = report(&portico(&["apply", "--check", "--json", "--root", root]));
    assert!(
        plain["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("diffs").is_none()),
        "no diffs unless asked"
    );
    let applied = report(&portico(&["apply", "--json", "--root", root]));
    assert_eq!(applied["mode"], "apply");
    // The schema file documents the shape.
    let schema: Value =
        serde_json::from_str(&support::fixtures::text("docs/report.schema.json")).unwrap();
    for key in ["schema", "mode", "rolled_back", "tasks", "changed"] {
        assert!(
            schema["properties"].get(key).is_some(),
            "{key} in the schema"
        );
    }
}

#[test]
fn flags_and_exit_codes() {
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    // A drift check: 3 while changes are pending, 0 once applied.
    let drift = portico(&["apply", "--check", "--exit-code", "--root", root]);
    assert_eq!(drift.status.code(), Some(3), "{}", said(&drift));
    assert_eq!(portico(&["apply", "--root", root]).status.code(), Some(0));
    let clean = portico(&["apply", "--check", "--exit-code", "--root", root]);
    assert_eq!(clean.status.code(), Some(0), "{}", said(&clean));
    // --exit-code without --check is a usage error.
    assert_eq!(
        portico(&["apply", "--exit-code", "--root", root])
            .status
            .code(),
        Some(2)
    );
    // apply has no --dry-run, and says which flag is meant.
    let dry = portico(&["apply", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(2));
    assert!(said(&dry).contains("--check"), "{}", said(&dry));
    // renew --check: what is due, no CA asked, no root needed.
    let acme = dir.path().join("acme.toml");
    std::fs::write(
        &acme,
        "version = 1\n[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\nemail = \"ops@example.test\"\n\
         agree_terms = true\n\n[[certificate]]\nname = \"web\"\nsource = \"acme\"\nnames = [\"a.test\"]\n",
    )
    .unwrap();
    let due = portico(&[
        "renew",
        "--check",
        "--json",
        "--root",
        root,
        acme.to_str().unwrap(),
    ]);
    let v = report(&due);
    assert_eq!(v["mode"], "check", "{v}");
    assert_eq!(v["failed"], 0, "no CA was asked: {v}");
    assert!(task(&v, "certificate web")["status"] == "changed", "{v}");
    // An I/O failure is 1, bad input 2.
    let io = portico(&["apply", "--check", "--root", root, "/etc"]);
    assert_eq!(io.status.code(), Some(1), "{}", said(&io));
    let bad = portico(&["apply", "--check", "--root", root, "/nonexistent.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    // Every command that reads a host takes --root, worded once.
    let root_line = |cmd: &str| -> String {
        let help = String::from_utf8_lossy(&portico(&[cmd, "--help"]).stdout).into_owned();
        let lines: Vec<&str> = help.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with("--root <DIR>"))
            .unwrap_or_else(|| panic!("{cmd} has no --root:\n{help}"));
        // The option and its wrapped lines, however wide the column.
        let mut text = lines[at].trim().to_string();
        for l in &lines[at + 1..] {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('-') || !l.starts_with("      ") {
                break;
            }
            text.push(' ');
            text.push_str(t);
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let apply_root = root_line("apply");
    for cmd in [
        "validate", "status", "facts", "renew", "remove", "ca", "daemon",
    ] {
        assert_eq!(root_line(cmd), apply_root, "{cmd}");
    }
    let help = String::from_utf8_lossy(&portico(&["--help"]).stdout).into_owned();
    assert!(help.contains("PORTICO_LOG"), "{help}");
    let order: Vec<usize> = ["apply", "validate", "status", "facts", "renew", "remove"]
        .iter()
        .map(|c| help.find(&format!("\n  {c} ")).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the order a user meets them:\n{help}"
    );
}

#[test]
fn fmt_lays_out_a_playbook_and_keeps_its_comments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messy.toml");
    let messy = "# my site\nversion=1\n[[certificate]]\n  name   = \"web\"   # the one\nsource=\"self-signed\"\n\
                 [[site]]\nserver_names=[ \"a.test\" ]\ncertificate = \"web\"\n[[site.location]]\npath=\"/\"\n\
                 proxy = \"http://127.0.0.1:3000\"\n";
    std::fs::write(&file, messy).unwrap();
    let f = file.to_str().unwrap();
    let check = portico(&["fmt", "--check", f]);
    assert_eq!(check.status.code(), Some(1), "{}", said(&check));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        messy,
        "--check writes nothing"
    );
    assert_eq!(portico(&["fmt", f]).status.code(), Some(0));
    let tidy = std::fs::read_to_string(&file).unwrap();
    assert!(
        tidy.contains("# my site\nversion = 1\n\n[[certificate]]\nname = \"web\"  # the one\n"),
        "{tidy}"
    );
    assert!(tidy.contains("server_names = [\"a.test\"]"), "{tidy}");
    assert_eq!(portico(&["fmt", "--check", f]).status.code(), Some(0));
    // A playbook with errors is not laid out: its errors, exit 2.
    std::fs::write(&file, "version = 1\nbogus = 2\n").unwrap();
    assert_eq!(portico(&["fmt", f]).status.code(), Some(2));
}

/// The README's tables say what `--help` says: every command with its
/// summary, every exit code with its meaning.
#[test]
fn the_readme_tables_match_the_help() {
    let readme = support::fixtures::text("README.md");
    let help = String::from_utf8_lossy(&portico(&["--help"]).stdout).into_owned();
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    // `--help`'s Commands section: name, then its summary (wrapped).
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let mut listed: Vec<(String, String)> = Vec::new();
    for line in commands.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") {
            let (name, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            listed.push((name.to_string(), rest.to_string()));
        } else if let Some(last) = listed.last_mut() {
            last.1.push(' ');
            last.1.push_str(line.trim());
        }
    }
    listed.retain(|(n, _)| n != "help");
    for (name, summary) in &listed {
        let first = squash(summary)
            .split(". ")
            .next()
            .unwrap()
            .trim_end_matches('.')
            .to_string();
        let row = format!("| `portico {name}` | {first} |");
        assert!(readme.contains(&row), "README lacks the row:\n{row}");
    }
    let exit = help
        .split("Exit codes:\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    for line in exit.lines() {
        let (code, meaning) = line.trim().split_once("  ").unwrap();
        let row = format!("| {code} | {} |", squash(meaning));
        assert!(readme.contains(&row), "README lacks the row:\n{row}");
    }
}

/// A playbook's secrets (a deploy hook's token) never reach a diff, a
/// JSON report or an error message: the installed playbook is only root's
/// to read, so its diff names it and shows nothing; a hook written as a
/// string instead of a list is refused without echoing it.
#[test]
fn a_hooks_token_is_never_shown_by_diffs_reports_or_errors() {
    const SECRET: &str = "S3CRET-t0ken";
    let dir = copy_of_tree("debian12");
    let root = dir.path().to_str().unwrap();
    let playbook = |token: &str| {
        format!(
            "version = 1\n[renewal]\ndeploy_hook = [\"/usr/local/bin/notify\", \"--token\", \"{token}\"]\n\
             [[certificate]]\nname = \"app\"\nsource = \"self-signed\"\n\
             [[site]]\nserver_names = [\"app.test\"]\ncertificate = \"app\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        )
    };
    let file = dir.path().join("p.toml");
    let shown = |args: &[&str]| {
        let out = portico(args);
        format!("{}{}", said(&out), String::from_utf8_lossy(&out.stdout))
    };
    // The first install, and a changed token, in text and in JSON.
    std::fs::write(&file, playbook(SECRET)).unwrap();
    let p = file.to_str().unwrap();
    for args in [
        vec!["apply", "--check", "--diff", "--root", root, p],
        vec!["apply", "--check", "--diff", "--json", "--root", root, p],
    ] {
        let text = shown(&args);
        assert!(!text.contains(SECRET), "{args:?}:\n{text}");
        assert!(
            text.contains("+++ /etc/portico/playbook.toml")
                && text.contains("not shown: only root may read it"),
            "{args:?}: the playbook's change is named:\n{text}"
        );
    }
    let applied = portico(&["apply", "--replace", "--root", root, p]);
    assert_eq!(applied.status.code(), Some(0), "{}", said(&applied));
    std::fs::write(&file, playbook("An0ther-t0ken")).unwrap();
    let text = shown(&["apply", "--check", "--diff", "--replace", "--root", root, p]);
    assert!(
        !text.contains(SECRET) && !text.contains("An0ther-t0ken"),
        "{text}"
    );
    // A hook as one string (a common slip) is refused, the string unshown.
    let slip = playbook(SECRET).replace(
        &format!("[\"/usr/local/bin/notify\", \"--token\", \"{SECRET}\"]"),
        &format!("\"/usr/local/bin/notify --token {SECRET}\""),
    );
    std::fs::write(&file, slip).unwrap();
    let out = portico(&["apply", "--check", "--root", root, p]);
    let text = format!("{}{}", said(&out), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("renewal.deploy_hook"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}
