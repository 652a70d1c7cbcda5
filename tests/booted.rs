//! End to end on a freshly booted Debian machine (systemd PID 1, D-Bus, real
//! apt, ufw, firewalld, iptables) — see tests/machine/mod.rs.
#![cfg(feature = "system")]

use report_json::task;
use support::https::Request;
use support::machine;
use support::report as report_json;

use machine::Machine;
use serde_json::Value;

/// The embedded default site plus an explicit firewall choice.
fn playbook(firewall: &str) -> String {
    format!(
        r#"version = 1

[firewall]
{firewall}

[[certificate]]
name = "default"
source = "self-signed"

[[site]]
name = "default"
server_names = ["{{hostname}}", "localhost"]
certificate = "default"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#
    )
}

/// Runs `portico apply FILE --json` inside with every command logged, and
/// returns (report, the mutating commands it ran).
fn apply(m: &Machine, file: &str) -> (Value, Vec<String>) {
    let out = m.run_env(
        &[("PORTICO_LOG", "portico=debug")],
        &["portico", "apply", "--replace", "--json", file],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "apply failed: {report:#}\n{stderr}"
    );
    let mutating = stderr
        .lines()
        .filter(|l| l.contains("mutating=true"))
        .map(str::to_string)
        .collect();
    (report, mutating)
}

/// nginx installed by apt, running and enabled; HTTP redirected; HTTPS served.
fn assert_nginx_serving(m: &Machine) {
    let status = m.ok(&["dpkg-query", "-W", "-f", "${Status}", "nginx"]);
    assert_eq!(status, "install ok installed");
    assert_eq!(m.ok(&["systemctl", "is-active", "nginx"]).trim(), "active");
    assert_eq!(
        m.ok(&["systemctl", "is-enabled", "nginx"]).trim(),
        "enabled"
    );
    let redirect = m.https(&Request::get("http://localhost/x"));
    assert_eq!(
        (redirect.status, redirect.redirect.as_str()),
        (301, "https://localhost/x")
    );
    // No backend on :3000 here: nginx answers 502 over TLS with portico's certificate.
    let https = m.https(&Request::get("https://localhost/").insecure());
    assert_eq!(https.status, 502, "{https:?}");
}

fn assert_idempotent(m: &Machine, file: &str) {
    let (report, mutating) = apply(m, file);
    assert_eq!(
        report["changed"], 0,
        "second apply changed something: {report:#}"
    );
    assert_eq!(report["failed"], 0);
    assert!(
        mutating.is_empty(),
        "second apply ran mutating commands: {mutating:?}"
    );
}

/// A fresh machine with the distro's firewall package, after one
/// `portico apply` of the default site with `firewall` settings.
fn applied_with_firewall(package: &str, firewall: &str) -> (Machine, Vec<String>) {
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", package]);
    m.write("/root/site.toml", &playbook(firewall));
    let (report, mutating) = apply(&m, "/root/site.toml");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_nginx_serving(&m);
    (m, mutating)
}

#[test]
fn fresh_machine_with_ufw() {
    // Inactive, as Ubuntu ships it: the playbook asks to enable it.
    let (m, mutating) = applied_with_firewall("ufw", "backend = \"ufw\"\nenable = true");
    // The log line the idempotence check relies on is really there when something runs.
    assert!(
        mutating.iter().any(|l| l.contains("apt-get")),
        "{mutating:?}"
    );
    let ufw = m.ok(&["ufw", "status"]);
    assert!(ufw.contains("Status: active"), "{ufw}");
    for rule in ["22/tcp", "80/tcp", "443/tcp"] {
        assert!(
            ufw.lines()
                .any(|l| l.starts_with(rule) && l.contains("ALLOW")),
            "{rule} not allowed:\n{ufw}"
        );
    }
    assert_idempotent(&m, "/root/site.toml");
}

#[test]
fn fresh_machine_with_firewalld() {
    let (m, _) = applied_with_firewall("firewalld", "backend = \"firewalld\"\nenable = true");
    assert_eq!(m.ok(&["firewall-cmd", "--state"]).trim(), "running");
    for scope in [
        &["firewall-cmd", "--list-services"][..],
        &["firewall-cmd", "--permanent", "--list-services"][..],
    ] {
        let services = m.ok(scope);
        for s in ["ssh", "http", "https"] {
            assert!(
                services.split_whitespace().any(|w| w == s),
                "{scope:?}: {s} missing in {services}"
            );
        }
    }
    assert_idempotent(&m, "/root/site.toml");
}

#[test]
fn fresh_machine_with_iptables() {
    let (m, _) = applied_with_firewall("iptables", "backend = \"iptables\"");
    let live = m.ok(&["iptables", "-S", "INPUT"]);
    let saved = std::fs::read_to_string(m.root().join("etc/iptables/rules.v4")).unwrap();
    for port in [80, 443] {
        let rule = format!("-A INPUT -p tcp -m tcp --dport {port} -j ACCEPT");
        assert!(live.lines().any(|l| l == rule), "{rule} not live:\n{live}");
        assert!(
            saved.lines().any(|l| l == rule),
            "{rule} not persisted:\n{saved}"
        );
    }
    assert_idempotent(&m, "/root/site.toml");
}

fn main_pid(m: &Machine) -> String {
    m.ok(&["systemctl", "show", "-p", "MainPID", "--value", "nginx"])
        .trim()
        .to_string()
}

fn workers(m: &Machine, master: &str) -> Vec<String> {
    let mut w: Vec<String> = m
        .ok(&["pgrep", "-P", master])
        .split_whitespace()
        .map(String::from)
        .collect();
    w.sort();
    w
}

fn service(m: &Machine, action: &str) -> std::process::Output {
    m.run(&["portico", "service", action])
}

#[test]
fn service_commands_drive_systemd_over_dbus() {
    let m = Machine::boot();
    m.write("/root/site.toml", &playbook("backend = \"none\""));
    apply(&m, "/root/site.toml");

    // reload: same master, new workers.
    let master = main_pid(&m);
    let before = workers(&m, &master);
    assert!(service(&m, "reload").status.success());
    assert_eq!(main_pid(&m), master, "reload replaced the master");
    // Old workers finish gracefully; new ones are there when reload returns.
    let after = workers(&m, &master);
    assert!(
        after.iter().any(|w| !before.contains(w)),
        "no new workers: {before:?} -> {after:?}"
    );

    let is = |what: &str| m.run(&["systemctl", what, "nginx"]).stdout;
    assert!(service(&m, "stop").status.success());
    assert_eq!(String::from_utf8_lossy(&is("is-active")).trim(), "inactive");
    assert!(service(&m, "start").status.success());
    assert_eq!(String::from_utf8_lossy(&is("is-active")).trim(), "active");
    let master = main_pid(&m);
    assert!(service(&m, "restart").status.success());
    assert_ne!(main_pid(&m), master, "restart kept the master");
    assert!(service(&m, "disable").status.success());
    assert_eq!(
        String::from_utf8_lossy(&is("is-enabled")).trim(),
        "disabled"
    );
    assert!(service(&m, "enable").status.success());
    assert_eq!(String::from_utf8_lossy(&is("is-enabled")).trim(), "enabled");
    let status: Value =
        serde_json::from_str(&m.ok(&["portico", "service", "status", "--json"])).unwrap();
    assert_eq!(status["active"], "active");
    assert_eq!(status["file"], "enabled");

    // A broken config: no reload, nginx's error shown, the running nginx keeps serving.
    let master = main_pid(&m);
    m.write(
        "/etc/nginx/conf.d/broken.conf",
        "this_is_not_a_directive on;\n",
    );
    let out = service(&m, "reload");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown directive \"this_is_not_a_directive\""),
        "{err}"
    );
    assert_eq!(main_pid(&m), master);
    let code = m.https(&Request::get("http://localhost/")).status;
    assert_eq!(code, 301, "nginx stopped serving after a refused reload");
}

/// Small backends and an oauth2-proxy stand-in, served by the machine's own
/// nginx from a file portico does not manage. Each backend echoes what it got.
const BACKENDS: &str = r#"
server {
    listen 127.0.0.1:3000;
    location / { return 200 "backend=3000 uri=$request_uri host=$http_host realip=$http_x_real_ip xff=$http_x_forwarded_for proto=$http_x_forwarded_proto verify=$http_x_ssl_client_verify dn=$http_x_ssl_client_dn user=$http_x_auth_request_user\n"; }
}
server {
    listen 127.0.0.1:3001;
    location / { return 200 "backend=3001 uri=$request_uri host=$http_host verify=$http_x_ssl_client_verify dn=$http_x_ssl_client_dn user=$http_x_auth_request_user\n"; }
}
# Answers like oauth2-proxy's /oauth2/auth: 202 and the user for a session, 401 otherwise.
server {
    listen 127.0.0.1:4180;
    location = /oauth2/auth {
        if ($http_cookie ~ "session=ok") {
            add_header X-Auth-Request-User alice always;
            add_header X-Auth-Request-Email alice@example.com always;
            return 202;
        }
        return 401;
    }
    location /oauth2/ { return 200 "oauth2-proxy page $request_uri\n"; }
}
"#;

const SCENARIOS: &str = r#"version = 1

[firewall]
backend = "none"

[[ca]]
name = "clients"

[[oauth2]]
name = "sso"
upstream = "http://127.0.0.1:4180"

[[certificate]]
name = "main"
source = "self-signed"
names = ["app.test", "sso.test", "api.test"]

[[site]]
server_names = ["app.test"]
certificate = "main"
redirect_code = 308

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site.location]]
path = "/newservice/"
proxy = "http://127.0.0.1:3001/"

[[site]]
server_names = ["sso.test"]
certificate = "main"
oauth2 = "sso"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site]]
server_names = ["api.test"]
certificate = "main"
listen = 8443

[site.client_auth]
ca = "clients"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site.location]]
path = "/exercise/"
proxy = "http://127.0.0.1:3001"
require_client_cert = true
"#;

/// curl inside the machine: (status, body or redirect).
fn curl(m: &Machine, args: &[&str]) -> (String, String) {
    let (url, extra) = args.split_last().expect("a URL");
    let request = extra
        .iter()
        .fold(Request::get(url).insecure(), |r, a| r.arg(a));
    let a = m.https(&request);
    let shown = if a.redirect.is_empty() {
        a.body
    } else {
        a.redirect
    };
    (a.status.to_string(), shown)
}

/// Names of the sites resolve to the machine itself.
fn hosts(m: &Machine) {
    let mut h = std::fs::read_to_string(m.root().join("etc/hosts")).unwrap_or_default();
    h.push_str("127.0.0.1 app.test sso.test api.test\n");
    m.write("/etc/hosts", &h);
}

/// Every file portico wrote into nginx's tree, with its bytes.
fn managed_files(m: &Machine) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in [
        "etc/nginx/sites-available",
        "etc/nginx/sites-enabled",
        "etc/nginx/snippets",
        "etc/nginx/conf.d",
    ] {
        for e in std::fs::read_dir(m.root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            files.push((
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
    files.sort();
    files
}

#[test]
fn seed_scenarios_are_served_as_promised() {
    let m = Machine::boot();
    hosts(&m);
    m.ok(&["apt-get", "install", "-y", "-q", "nginx"]);
    m.write("/etc/nginx/conf.d/test-backends.conf", BACKENDS);
    m.ok(&["systemctl", "reload", "nginx"]);
    m.write("/root/site.toml", SCENARIOS);
    let (report, _) = apply(&m, "/root/site.toml");
    assert_eq!(report["failed"], 0, "{report:#}");

    // Plain HTTP: the configured 308 to the same URL; ACME challenges still answered.
    assert_eq!(
        curl(&m, &["http://app.test/x?y=1"]),
        ("308".into(), "https://app.test/x?y=1".into())
    );
    m.write(
        "/var/lib/portico/acme-challenge/.well-known/acme-challenge/tok",
        "tok.thumbprint",
    );
    assert_eq!(
        curl(&m, &["http://app.test/.well-known/acme-challenge/tok"]),
        ("200".into(), "tok.thumbprint".into())
    );

    // Both backends, the right paths, the forwarding headers.
    let (code, body) = curl(&m, &["https://app.test/"]);
    assert_eq!(code, "200");
    assert!(
        body.starts_with(
            "backend=3000 uri=/ host=app.test realip=127.0.0.1 xff=127.0.0.1 proto=https"
        ),
        "{body}"
    );
    let (_, body) = curl(&m, &["https://app.test/newservice/foo?q=1"]);
    assert!(
        body.starts_with("backend=3001 uri=/foo?q=1 host=app.test"),
        "{body}"
    );

    // Identity headers a client sends never reach a backend, in any location.
    let forged = [
        "-H",
        "X-SSL-Client-Verify: SUCCESS",
        "-H",
        "X-SSL-Client-DN: CN=admin",
        "-H",
        "X-Auth-Request-User: mallory",
    ];
    // A site without client certificates passes no verification result at
    // all; one with them passes nginx's own (NONE without a certificate).
    for (url, want) in [
        ("https://app.test/", "verify= dn= user="),
        ("https://app.test/newservice/x", "verify= dn= user="),
        ("https://api.test:8443/", "verify=NONE dn= user="),
    ] {
        let mut args = forged.to_vec();
        args.push(url);
        let (code, body) = curl(&m, &args);
        assert_eq!(code, "200", "{url}: {body}");
        assert!(
            body.trim_end().ends_with(want),
            "{url}: forged headers got through: {body}"
        );
    }

    // A location that requires a client certificate: 403 without, 200 with one from the CA.
    assert_eq!(curl(&m, &["https://api.test:8443/exercise/"]).0, "403");
    m.ok(&[
        "portico",
        "ca",
        "issue",
        "clients",
        "--cn",
        "alice",
        "--out",
        "/root/alice",
    ]);
    let (code, body) = curl(
        &m,
        &[
            "--cert",
            "/root/alice/alice.crt",
            "--key",
            "/root/alice/alice.key",
            "https://api.test:8443/exercise/x",
        ],
    );
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("verify=SUCCESS dn=CN=alice"), "{body}");

    // oauth2: no session → the sign-in page with the original URL; a session → the user header.
    let (code, location) = curl(&m, &["https://sso.test/private?a=1"]);
    assert_eq!(code, "302");
    assert_eq!(
        location,
        "https://sso.test/oauth2/start?rd=https://sso.test/private?a=1"
    );
    let (code, body) = curl(
        &m,
        &["-H", "Cookie: session=ok", "https://sso.test/private"],
    );
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("user=alice"), "{body}");
    assert_eq!(
        curl(&m, &["https://sso.test/oauth2/start"]).0,
        "200",
        "oauth2-proxy's own pages are reachable"
    );
    assert_eq!(
        curl(&m, &["https://sso.test/oauth2/auth"]).0,
        "404",
        "the auth endpoint is internal"
    );
}

#[test]
fn a_config_nginx_rejects_is_rolled_back_and_nginx_keeps_serving() {
    let m = Machine::boot();
    hosts(&m);
    m.ok(&["apt-get", "install", "-y", "-q", "nginx"]);
    m.write("/etc/nginx/conf.d/test-backends.conf", BACKENDS);
    m.ok(&["systemctl", "reload", "nginx"]);
    m.write("/root/site.toml", SCENARIOS);
    apply(&m, "/root/site.toml");
    let before = managed_files(&m);
    let master = main_pid(&m);

    // Valid to portico, rejected by nginx: a backend name that does not resolve.
    m.write(
        "/root/bad.toml",
        &SCENARIOS.replace("http://127.0.0.1:3001/", "http://backend.invalid:3001/"),
    );
    let out = m.run(&["portico", "apply", "--replace", "--json", "/root/bad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let gate = task(&report, "nginx configuration");
    assert_eq!(gate["status"], "failed");
    let reason = gate["reason"].as_str().unwrap();
    assert!(
        reason.contains("host not found in upstream \"backend.invalid:3001\""),
        "{reason}"
    );
    assert!(reason.contains("rolled back"), "{reason}");

    assert_eq!(managed_files(&m), before, "files differ after the rollback");
    assert_eq!(main_pid(&m), master);
    let (code, body) = curl(&m, &["https://app.test/newservice/y"]);
    assert_eq!(
        (code.as_str(), body.starts_with("backend=3001 uri=/y")),
        ("200", true),
        "{body}"
    );
    // And the next good apply has nothing to do.
    assert_idempotent(&m, "/root/site.toml");
}

#[test]
fn testssl_finds_nothing_high_on_the_intermediate_profile() {
    let m = Machine::boot();
    hosts(&m);
    m.ok(&["apt-get", "install", "-y", "-q", "testssl.sh"]);
    m.write(
        "/root/site.toml",
        &playbook("backend = \"none\"").replace("\"localhost\"]", "\"localhost\", \"app.test\"]"),
    );
    apply(&m, "/root/site.toml");
    let out = m.run(&[
        "testssl",
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        // Protocols, cipher lists, forward secrecy, server preference,
        // vulnerabilities: the profile's findings, not the (self-signed)
        // certificate's trust or revocation, which belong to its issuer.
        "-p",
        "-s",
        "-f",
        "-P",
        "-U",
        "--ip",
        "127.0.0.1",
        "--jsonfile",
        "/root/testssl.json",
        "app.test:443",
    ]);
    let json = std::fs::read_to_string(m.root().join("root/testssl.json")).unwrap_or_else(|_| {
        panic!(
            "testssl wrote no report:\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let findings: Vec<Value> = serde_json::from_str(&json).unwrap();
    let bad: Vec<&Value> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .collect();
    assert!(
        bad.is_empty(),
        "testssl findings of severity HIGH or worse: {bad:#?}"
    );
    for id in ["TLS1", "TLS1_1", "SSLv3", "SSLv2"] {
        let f = findings
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} finding"));
        assert!(
            f["finding"].as_str().unwrap().starts_with("not offered"),
            "{id}: {f}"
        );
    }
    let summary: Vec<String> = findings
        .iter()
        .filter(|f| f["severity"] != "INFO" && f["severity"] != "OK")
        .map(|f| format!("{} {} {}", f["severity"], f["id"], f["finding"]))
        .collect();
    eprintln!("testssl non-OK findings:\n{}", summary.join("\n"));
}
