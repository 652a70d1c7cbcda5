//! ACME end to end on a booted machine: a real pebble (with
//! pebble-challtestsrv answering DNS with 127.0.0.1), real nginx, HTTP-01
//! through the webroot, all inside the machine's own network namespace.
#![cfg(feature = "system")]

use report_json::task;
use support::https::Request;
use support::machine;
use support::report as report_json;

use machine::pebble::{pebble_machine, reconfigure_pebble, run_pebble, use_pebble_with_ari};
use machine::Machine;
use serde_json::Value;

const PLAYBOOK: &str = r#"version = 1

[firewall]
backend = "none"

[acme]
directory = "https://127.0.0.1:14000/dir"
ca_root = "/etc/pebble/ca.pem"
email = "ops@app.test"
agree_terms = true

[[certificate]]
name = "app"
source = "acme"

[[site]]
server_names = ["app.test", "www.app.test"]
certificate = "app"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#;

fn apply(m: &Machine) -> (Option<i32>, Value, String) {
    let out = m.run_env(
        &[("PORTICO_LOG", "portico=debug")],
        &["portico", "apply", "--replace", "--json", "/root/site.toml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), v, stderr)
}

#[test]
fn a_fresh_machine_gets_a_san_certificate_from_pebble_in_one_apply() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    m.write("/root/site.toml", PLAYBOOK);

    let t = std::time::Instant::now();
    let (code, report, stderr) = apply(&m);
    let took = t.elapsed();
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    eprintln!("first apply on a fresh machine (apt install nginx + ACME issuance): {took:?}");
    let tasks: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let pos = |name: &str| {
        tasks
            .iter()
            .position(|t| *t == name)
            .unwrap_or_else(|| panic!("{name} not in {tasks:?}"))
    };
    assert!(pos("acme challenges served") < pos("certificate app"));
    assert!(pos("certificate app") < pos("nginx configuration"));

    // The chain nginx serves verifies against pebble's root from its management API.
    m.ok(&["sh", "-c", "curl -s --cacert /etc/pebble/ca.pem https://127.0.0.1:15000/roots/0 > /root/pebble-root.pem"]);
    for name in ["app.test", "www.app.test"] {
        let answer =
            m.https(&Request::get(&format!("https://{name}/")).cacert("/root/pebble-root.pem"));
        assert_eq!(
            answer.exit, 0,
            "{name}: TLS verification against pebble's root failed: {answer:?}"
        );
        assert_eq!(
            answer.status, 502,
            "{name}: nginx answers (no backend on :3000 here)"
        );
    }
    let san = m.ok(&[
        "openssl",
        "x509",
        "-in",
        "/etc/ssl/portico/certs/app.crt",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        san.contains("DNS:app.test") && san.contains("DNS:www.app.test"),
        "{san}"
    );
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(m.root().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("etc/ssl/portico/private/app.key"), 0o600);
    assert_eq!(mode("var/lib/portico/acme"), 0o700);
    let accounts = std::fs::read_dir(m.root().join("var/lib/portico/acme"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        mode(
            accounts
                .join("account.json")
                .strip_prefix(m.root())
                .unwrap()
                .to_str()
                .unwrap()
        ),
        0o600
    );
    assert!(
        !stderr.contains("PRIVATE KEY") && !stderr.contains("private_key"),
        "a secret reached the log"
    );

    // Nothing due: the second apply orders nothing and changes nothing.
    let before = serial(&m);
    let (code, report, _) = apply(&m);
    assert_eq!(code, Some(0));
    assert_eq!(report["changed"], 0, "{report:#}");
    assert_eq!(serial(&m), before);
}

fn serial(m: &Machine) -> String {
    m.ok(&[
        "openssl",
        "x509",
        "-in",
        "/etc/ssl/portico/certs/app.crt",
        "-noout",
        "-serial",
    ])
}

/// The serial of the certificate nginx actually serves.
fn served_serial(m: &Machine) -> String {
    m.ok(&[
        "sh", "-c",
        "openssl s_client -connect 127.0.0.1:443 -servername app.test </dev/null 2>/dev/null | openssl x509 -noout -serial",
    ])
}

/// How many times nginx's master re-read its configuration (SIGHUP), as
/// its own log says. portico signals the master through systemd without a
/// reload job, so systemd's journal does not count them. The first call
/// has the master log its notices (Debian logs errors only) to a file of
/// the test's own, and waits until it does.
fn reloads(m: &Machine) -> usize {
    const LOG: &str = "/var/log/nginx/test-reloads.log";
    const CONF: &str = "/etc/nginx/modules-enabled/zz-test-reloads.conf";
    if m.run(&["test", "-e", CONF]).status.code() != Some(0) {
        m.write(CONF, &format!("error_log {LOG} notice;\n"));
        m.ok(&["systemctl", "reload", "nginx"]);
        for _ in 0..100 {
            if m.run(&["test", "-e", LOG]).status.code() == Some(0) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // One per SIGHUP ("signal 1 (SIGHUP) received from PID, reconfiguring",
    // then "reconfiguring" on a line of its own).
    m.ok(&["cat", LOG]).matches("(SIGHUP) received").count()
}

fn orders(m: &Machine) -> usize {
    m.ok(&["journalctl", "-u", "pebble", "--no-pager"])
        .matches("POST /order-plz")
        .count()
}

fn renew(m: &Machine, args: &[&str]) -> (Option<i32>, Value) {
    let mut argv = vec!["portico", "renew", "--json"];
    argv.extend_from_slice(args);
    argv.push("/root/site.toml");
    let out = m.run(&argv);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), v)
}

#[test]
fn renew_reloads_once_on_change_never_without_and_backs_off_on_failure() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    m.write("/root/site.toml", PLAYBOOK);
    assert_eq!(apply(&m).0, Some(0));
    let first = served_serial(&m);
    assert_eq!(first, serial(&m));

    // Nothing due (pebble's certificates live 5 years): no order, no reload.
    let (orders0, reloads0) = (orders(&m), reloads(&m));
    let (code, v) = renew(&m, &[]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["changed"], 0, "{v:#}");
    assert_eq!(
        (orders(&m), reloads(&m)),
        (orders0, reloads0),
        "an order or a reload without need"
    );

    // Forced: a new certificate is served after exactly one reload.
    let (code, v) = renew(&m, &["--force"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(orders(&m), orders0 + 1);
    assert_eq!(reloads(&m), reloads0 + 1, "not exactly one reload");
    let second = served_serial(&m);
    assert_ne!(second, first, "the old certificate is still served");
    assert_eq!(second, serial(&m));

    // The CA is down: the old certificate keeps serving, the failure is
    // recorded with a back-off, and the exit code says so.
    m.ok(&["systemctl", "stop", "pebble"]);
    let (code, v) = renew(&m, &["--force"]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(served_serial(&m), second);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(m.root().join("var/lib/portico/state.json")).unwrap(),
    )
    .unwrap();
    let app = &state["certificates"]["app"];
    assert_eq!(app["failures"], 1, "{state:#}");
    let next = app["next_attempt"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 50..=now + 70).contains(&next),
        "back-off of about a minute: {next} vs {now}"
    );
    // Inside the back-off a plain renew does not even try, says until
    // when (RFC 3339), and exits 1: the certificate is past its renewal time.
    let (code, v) = renew(&m, &[]);
    assert_eq!(code, Some(1), "{v:#}");
    let skipped = task(&v, "certificate app");
    assert_eq!(skipped["status"], "skipped");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("next attempt at 20") && reason.contains("Z or later"),
        "{reason}"
    );

    // The back-off over (the clock moved past next_attempt) and the CA back: renewal succeeds.
    let state_path = m.root().join("var/lib/portico/state.json");
    let text = std::fs::read_to_string(&state_path)
        .unwrap()
        .replace(&next.to_string(), &(now - 1).to_string());
    std::fs::write(&state_path, text).unwrap();
    run_pebble(&m);
    let (code, v) = renew(&m, &["--force"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_ne!(served_serial(&m), second);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["certificates"]["app"]["failures"], 0);

    // A corrupted state file never blocks renewal: it is named, moved
    // aside for a look, and renewal goes on with a fresh state.
    std::fs::write(&state_path, "{ not json").unwrap();
    let out = m.run(&["portico", "renew", "/root/site.toml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warning: /var/lib/portico/state.json:1:") && text.contains("moved it to"),
        "{text}"
    );
    let aside: Vec<String> = std::fs::read_dir(state_path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["version"], 1);
}

#[test]
fn apply_installs_the_renewal_daemon_which_reloads_and_stops_cleanly() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    m.write("/root/site.toml", PLAYBOOK);
    assert_eq!(apply(&m).0, Some(0));

    assert_eq!(
        m.ok(&["systemctl", "is-active", "portico"]).trim(),
        "active"
    );
    assert_eq!(
        m.ok(&["systemctl", "is-enabled", "portico"]).trim(),
        "enabled"
    );
    let log = || m.ok(&["journalctl", "-u", "portico", "--no-pager", "-o", "cat"]);
    // Type=notify: active means READY=1 arrived; the startup renewal ran.
    for _ in 0..100 {
        if log().contains("renewal done") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(log().contains("renewal scheduled"), "{}", log());
    assert!(log().contains("renewal done"), "{}", log());
    let security = m.ok(&[
        "systemd-analyze",
        "security",
        "portico.service",
        "--no-pager",
    ]);
    let overall = security.lines().last().unwrap_or("");
    eprintln!("systemd-analyze security: {overall}");
    let exposure: f64 = overall
        .split(": ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure figure in {overall:?}"));
    assert!(exposure <= 3.0, "exposure {exposure} > 3.0:\n{security}");

    // The daemon itself renews, inside its sandbox: with the certificate
    // gone, a restart's startup renewal obtains one and reloads nginx once,
    // through systemd.
    m.ok(&["systemctl", "stop", "portico"]);
    let (before_serial, before_reloads) = (served_serial(&m), reloads(&m));
    // Gone is the live pair nginx reads (a missing plain copy is only
    // written again from it).
    m.ok(&[
        "rm",
        "/etc/ssl/portico/live/app",
        "/etc/ssl/portico/certs/app.crt",
    ]);
    m.ok(&["systemctl", "start", "portico"]);
    for _ in 0..100 {
        if log().matches("renewal done").count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(log().matches("renewal done").count() >= 2, "{}", log());
    // Renewed and reloaded without a failure, inside the sandbox (where
    // www-data's workers must still be visible to follow the reload).
    let done = log()
        .lines()
        .rfind(|l| l.contains("renewal done"))
        .unwrap_or_default()
        .to_string();
    assert!(
        done.contains("failed=0") && !done.contains("done changed=0"),
        "{done}\n{}",
        log()
    );
    assert_eq!(reloads(&m), before_reloads + 1, "{}", log());
    assert_ne!(served_serial(&m), before_serial);
    assert_eq!(
        m.ok(&["stat", "-c", "%a %U", "/etc/ssl/portico/private/app.key"])
            .trim(),
        "600 root"
    );

    // A bad playbook on SIGHUP is reported and the old one kept.
    m.write(
        "/etc/portico/playbook.toml",
        "version = 1\n[[site]]\nbogus = 1\n",
    );
    m.ok(&["systemctl", "reload", "portico"]);
    for _ in 0..50 {
        if log().contains("keeping the previous playbook") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(log().contains("keeping the previous playbook"), "{}", log());
    assert_eq!(
        m.ok(&["systemctl", "is-active", "portico"]).trim(),
        "active"
    );

    // SIGTERM: a clean stop.
    m.ok(&["systemctl", "stop", "portico"]);
    assert_eq!(
        m.ok(&["systemctl", "show", "-p", "Result", "--value", "portico"])
            .trim(),
        "success"
    );
    assert!(log().contains("stopping"), "{}", log());
}

#[test]
fn eleven_certificates_renew_in_parallel_with_one_reload() {
    let names: Vec<String> = (1..=11).map(|i| format!("s{i}.test")).collect();
    let m = pebble_machine(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut pb = PLAYBOOK[..PLAYBOOK.find("[[certificate]]").unwrap()].to_string();
    for n in &names {
        pb.push_str(&format!(
            "[[certificate]]\nname = \"{n}\"\nsource = \"acme\"\n\n[[site]]\nserver_names = [\"{n}\"]\ncertificate = \"{n}\"\n\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n\n"
        ));
    }
    m.write("/root/site.toml", &pb);
    let (code, report, stderr) = apply(&m);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");

    let t = std::time::Instant::now();
    let (code, v) = renew(&m, &[]);
    let idle = t.elapsed();
    assert_eq!((code, v["changed"].as_u64()), (Some(0), Some(0)), "{v:#}");

    let (orders0, reloads0) = (orders(&m), reloads(&m));
    let t = std::time::Instant::now();
    let (code, v) = renew(&m, &["--force"]);
    let forced = t.elapsed();
    assert_eq!(code, Some(0), "{v:#}");
    let renewed = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["name"].as_str().unwrap().starts_with("certificate ") && t["status"] == "changed"
        })
        .count();
    assert_eq!(renewed, 11, "{v:#}");
    assert_eq!(orders(&m), orders0 + 11);
    assert_eq!(
        reloads(&m),
        reloads0 + 1,
        "not exactly one reload for eleven certificates"
    );
    eprintln!("renew, 11 certificates, nothing due: {idle:?}; forced: {forced:?} (inside the machine, through nsenter)");
}

fn state(m: &Machine) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(m.root().join("var/lib/portico/state.json")).unwrap(),
    )
    .unwrap()
}

/// ARI against pebble 2.6: the window is asked for and remembered (no
/// order while it lies ahead); once the CA says "now" (the certificate was
/// revoked), the next plain `renew` replaces it, naming the one it replaces.
#[test]
fn the_cas_renewal_window_decides_and_the_new_order_names_what_it_replaces() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    use_pebble_with_ari(&m);
    m.write("/root/site.toml", PLAYBOOK);
    let (code, report, stderr) = apply(&m);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    m.ok(&["systemctl", "stop", "portico"]); // this test drives renewals itself
    let first = served_serial(&m);
    let orders_before = orders(&m);

    let (code, v) = renew(&m, &[]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["changed"], 0, "{v:#}");
    assert_eq!(orders(&m), orders_before);
    let s = state(&m);
    let cert = &s["certificates"]["app"];
    let (start, end) = (
        cert["ari_window"]["start"].as_i64().unwrap(),
        cert["ari_window"]["end"].as_i64().unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        start > now && end > start,
        "window {start}..{end}, now {now}"
    );
    assert!(cert["ari_next_check"].as_i64().unwrap() > now, "{s:#}");
    assert!(cert["jitter"].as_f64().is_some(), "{s:#}");

    // The CA now wants it replaced: revoke it (with its own key).
    m.ok(&["apt-get", "install", "-y", "-q", "certbot"]);
    let out = m.run_env(
        &[("REQUESTS_CA_BUNDLE", "/etc/pebble/ca.pem")],
        &[
            "certbot",
            "revoke",
            "--non-interactive",
            "--no-delete-after-revoke",
            "--server",
            "https://127.0.0.1:14000/dir",
            "--cert-path",
            "/etc/ssl/portico/certs/app.crt",
            "--key-path",
            "/etc/ssl/portico/private/app.key",
        ],
    );
    assert!(
        out.status.success(),
        "certbot revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Remembered windows are asked again only after Retry-After: move it.
    let text = std::fs::read_to_string(m.root().join("var/lib/portico/state.json")).unwrap();
    let mut s: Value = serde_json::from_str(&text).unwrap();
    s["certificates"]["app"]["ari_next_check"] = 0.into();
    m.write("/var/lib/portico/state.json", &s.to_string());

    let out = m.run_env(
        &[("PORTICO_LOG", "portico=debug")],
        &["portico", "renew", "--json", "/root/site.toml"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{log}");
    assert_eq!(v["changed"], 2, "{v:#}"); // the certificate and the reload
    assert!(v.to_string().contains("ARI"), "{v:#}");
    assert!(log.contains("ordering as the replacement of "), "{log}");
    assert!(!log.contains("refused"), "the CA refused `replaces`: {log}");
    assert_ne!(served_serial(&m), first);
    assert_eq!(orders(&m), orders_before + 1);
}

/// A CA that requires external account binding: without `eab` the error
/// says so; with it the account is made; `reuse_key` keeps the key across
/// renewals, and without it each renewal has a new key.
#[test]
fn eab_is_used_when_the_ca_requires_it_and_reuse_key_keeps_the_key() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    // base64url of 32 bytes, as CAs hand out EAB HMAC keys.
    let hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    reconfigure_pebble(
        &m,
        &format!(
            "\"externalAccountBindingRequired\": true, \"externalAccountMACKeys\": {{\"kid-1\": \"{hmac}\"}}"
        ),
    );
    m.write("/root/site.toml", PLAYBOOK);
    let (code, report, _) = apply(&m);
    assert_eq!(code, Some(1), "{report:#}");
    assert!(report.to_string().contains("externalAccount"), "{report:#}");

    m.write("/etc/portico/eab.key", hmac);
    let with_eab = PLAYBOOK
        .replace(
            "agree_terms = true\n",
            "agree_terms = true\neab = { kid = \"kid-1\", hmac_key_file = \"/etc/portico/eab.key\" }\n",
        )
        .replace("source = \"acme\"\n", "source = \"acme\"\nreuse_key = true\n");
    m.write("/root/site.toml", &with_eab);
    let (code, report, stderr) = apply(&m);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    m.ok(&["systemctl", "stop", "portico"]);

    let public = |m: &Machine| {
        m.ok(&[
            "openssl",
            "pkey",
            "-in",
            "/etc/ssl/portico/private/app.key",
            "-pubout",
        ])
    };
    let (key1, serial1) = (public(&m), serial(&m));
    assert_eq!(renew(&m, &["--force"]).0, Some(0));
    assert_ne!(serial(&m), serial1);
    assert_eq!(public(&m), key1, "reuse_key = true keeps the key");

    m.write(
        "/root/site.toml",
        &with_eab.replace("reuse_key = true\n", ""),
    );
    assert_eq!(renew(&m, &["--force"]).0, Some(0));
    assert_ne!(
        public(&m),
        key1,
        "without reuse_key each certificate has a new key"
    );

    // A profile this CA does not offer is refused, not silently ignored;
    // the certificate in place keeps serving.
    let served = served_serial(&m);
    m.write(
        "/root/site.toml",
        &with_eab.replace(
            "agree_terms = true\n",
            "agree_terms = true\nprofile = \"shortlived\"\n",
        ),
    );
    let (code, v) = renew(&m, &["--force"]);
    assert_eq!(code, Some(1), "{v:#}");
    let text = v.to_string();
    assert!(text.contains("does not offer the profile"), "{v:#}");
    assert!(
        text.contains("shortlived") && text.contains("offers none"),
        "{v:#}"
    );
    assert_eq!(served_serial(&m), served);
}

/// A log nginx opens outside what the renewal daemon's sandbox may write:
/// a plain `nginx -t` passes, the daemon's would fail at every renewal's
/// reload. `apply` runs it under the unit's own sandbox and says so now.
#[test]
fn apply_warns_when_nginx_t_fails_in_the_daemons_sandbox() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    m.write("/root/site.toml", PLAYBOOK);
    let (code, report, stderr) = apply(&m);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("sandbox"), "{warnings}");
    m.ok(&["mkdir", "-p", "/srv/logs"]);
    m.write(
        "/etc/nginx/conf.d/zz-elsewhere.conf",
        "access_log /srv/logs/access.log;\n",
    );
    m.ok(&["nginx", "-t", "-q"]);
    let (code, report, stderr) = apply(&m);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("the renewal daemon's nginx -t fails inside its sandbox")
            && warnings.contains("/srv/logs/access.log"),
        "{warnings}"
    );
}

/// The daemon renews what the installed playbook says, even when nothing
/// signalled it: before each run it reads the file again if it changed (an
/// apply that failed halfway installs its playbook but holds the SIGHUP).
#[test]
fn the_daemon_renews_from_the_playbook_on_disk_not_the_one_in_memory() {
    let m = pebble_machine(&["app.test", "www.app.test", "old.test"]);
    let with_old = PLAYBOOK.replace(
        "[[certificate]]\nname = \"app\"",
        "[renewal]\nschedule = \"*/2 * * * * *\"\n\n[[certificate]]\nname = \"old\"\nsource = \"acme\"\nnames = [\"old.test\"]\n\n[[certificate]]\nname = \"app\"",
    );
    m.write("/root/site.toml", &with_old);
    assert_eq!(apply(&m).0, Some(0));
    let log = || m.ok(&["journalctl", "-u", "portico", "--no-pager", "-o", "cat"]);
    let wait_for = |what: &str| {
        for _ in 0..150 {
            if log().contains(what) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no {what:?} in the journal:\n{}", log());
    };
    wait_for("unchanged=2");
    // The playbook replaced on disk, no SIGHUP: the next run reads it.
    let without_old = PLAYBOOK.replace(
        "[[certificate]]\nname = \"app\"",
        "[renewal]\nschedule = \"*/2 * * * * *\"\n\n[[certificate]]\nname = \"app\"",
    );
    m.write("/etc/portico/playbook.toml", &without_old);
    wait_for("/etc/portico/playbook.toml changed on disk: re-read");
    wait_for("unchanged=1");
}

/// Stopping the daemon while its renewal waits for the host's lock (an
/// apply or a remove holds it): the stop reaches the renewal, which stops
/// waiting, and the daemon is down in seconds, not after a timeout.
#[test]
fn stopping_the_daemon_reaches_a_renewal_waiting_for_the_lock() {
    let m = pebble_machine(&["app.test", "www.app.test"]);
    m.write("/root/site.toml", PLAYBOOK);
    assert_eq!(apply(&m).0, Some(0));
    m.ok(&["systemctl", "stop", "portico"]);
    // Someone else's run holds the lock.
    m.ok(&[
        "systemd-run",
        "--unit=holder",
        "flock",
        "/run/portico/lock",
        "sleep",
        "120",
    ]);
    m.ok(&["systemctl", "start", "portico"]);
    // Its startup renewal is waiting for the lock.
    for _ in 0..100 {
        let log = m.ok(&["journalctl", "-u", "portico", "--no-pager", "-o", "cat"]);
        if log.contains("another run holds the host's lock") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let t = std::time::Instant::now();
    m.ok(&["systemctl", "stop", "portico"]);
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_secs(20),
        "the stop took {took:?}"
    );
    let state = m.run(&["systemctl", "is-active", "portico"]);
    assert_ne!(String::from_utf8_lossy(&state.stdout).trim(), "active");
    let log = m.ok(&["journalctl", "-u", "portico", "--no-pager", "-o", "cat"]);
    assert!(
        log.contains("another run holds the host's lock"),
        "the renewal never waited:\n{log}"
    );
    eprintln!("the daemon stopped in {took:?} while its renewal waited for the lock");
    m.ok(&["systemctl", "stop", "holder"]);
}
