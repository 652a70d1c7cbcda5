//! What a renewal run records when its reload fails (a sandboxed host,
//! tests/support/sandbox.rs, with pebble and nginx running): nginx refuses
//! the configuration at the reload, every file of the run is put back, the
//! old certificate keeps serving, and the renewal counts as a failure: the
//! report says so, the exit code is 1, and state.json backs it off.

mod support;

use support::sandbox::Sandbox;

const PLAYBOOK: &str = "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\n\
    directory = \"https://127.0.0.1:14000/dir\"\nca_root = \"/etc/pebble/ca.pem\"\n\
    email = \"ops@renew.test\"\nagree_terms = true\n[[certificate]]\nname = \"a\"\nsource = \"acme\"\n\
    [[site]]\nserver_names = [\"a.renew.test\"]\ncertificate = \"a\"\n\
    [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n";

fn served_serial(sb: &Sandbox) -> String {
    let out = sb.run(&[
        "sh",
        "-c",
        "openssl s_client -connect 127.0.0.1:443 -servername a.renew.test </dev/null 2>/dev/null | openssl x509 -noout -serial",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_renewal_whose_reload_fails_is_a_failure_backed_off_and_the_old_certificate_serves() {
    let sb = Sandbox::new();
    sb.start_pebble();
    sb.start_backends(&[3000]);
    sb.write("/etc/portico/p.toml", PLAYBOOK);
    assert!(sb
        .portico(&[], &["apply", "/etc/portico/p.toml"])
        .status
        .success());
    let before = served_serial(&sb);
    assert!(before.starts_with("serial="), "{before}");
    let cert_before = sb.ok(&["cat", "/etc/ssl/portico/certs/a.crt"]);

    // Someone's own file that nginx refuses: every reload now fails.
    sb.write("/etc/nginx/conf.d/zz-broken.conf", "this is not nginx;\n");
    let out = sb.portico(&[], &["renew", "--force", "--json", "/etc/portico/p.toml"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let cert = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "certificate a")
        .unwrap();
    assert_eq!(cert["status"], "failed", "{report:#}");
    assert!(
        cert["reason"].as_str().unwrap().contains("rolled back"),
        "{cert}"
    );
    // Put back, still serving.
    assert_eq!(sb.ok(&["cat", "/etc/ssl/portico/certs/a.crt"]), cert_before);
    assert_eq!(served_serial(&sb), before);
    // Counted and backed off.
    let state: serde_json::Value =
        serde_json::from_str(&sb.ok(&["cat", "/var/lib/portico/state.json"])).unwrap();
    let a = &state["certificates"]["a"];
    assert_eq!(a["failures"], 1, "{state:#}");
    assert!(a["next_attempt"].as_i64().is_some(), "{state:#}");
    assert!(
        a["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("rolled back"),
        "{state:#}"
    );
}

/// A first boot before DNS points here: the first apply cannot have the
/// certificate, so the site is not served over HTTPS and `status` says so
/// (exit 1). Once DNS is right, a renewal run (what the daemon does) gets
/// the certificate and makes the site live itself: no apply needed.
#[test]
fn a_site_waiting_for_its_certificate_is_completed_by_the_renewal_that_gets_it() {
    let sb = Sandbox::new();
    sb.start_pebble();
    sb.start_backends(&[3000]);
    let pb = PLAYBOOK.replace("a.renew.test", "first.renew.test");
    sb.write("/etc/portico/p.toml", &pb);
    // DNS does not point here yet: the CA looks elsewhere.
    let set = |path: &str, body: &str| {
        sb.ok(&[
            "curl",
            "-sS",
            "-X",
            "POST",
            "-d",
            body,
            &format!("http://127.0.0.1:8055/{path}"),
        ]);
    };
    set(
        "add-a",
        r#"{"host":"first.renew.test","addresses":["10.255.255.1"]}"#,
    );
    let first = sb.portico(&[], &["apply", "--json", "/etc/portico/p.toml"]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let status = sb.portico(&[], &["status", "/etc/portico/p.toml"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("site first.renew.test: not served over HTTPS"),
        "{text}"
    );

    set("clear-a", r#"{"host":"first.renew.test"}"#);
    let renew = sb.portico(&[], &["renew", "--force", "--json", "/etc/portico/p.toml"]);
    assert!(
        renew.status.success(),
        "{}",
        String::from_utf8_lossy(&renew.stdout)
    );
    let resolve = "first.renew.test:443:127.0.0.1";
    let (_, code, body) = sb.curl(&["-k", "--resolve", resolve], "https://first.renew.test/");
    assert_eq!((code, body.as_str()), (200, "backend 3000"));
    let status = sb.portico(&[], &["status", "/etc/portico/p.toml"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}
