//! End to end on a freshly booted Debian machine (systemd PID 1, D-Bus, real
//! apt, ufw, firewalld, iptables) — see tests/machine/mod.rs.

mod machine;

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
        &["portico", "apply", "--json", file],
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
    let redirect = m.ok(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "http://localhost/x",
    ]);
    assert_eq!(redirect, "301 https://localhost/x");
    // No backend on :3000 here: nginx answers 502 over TLS with portico's certificate.
    let https = m.ok(&[
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "https://localhost/",
    ]);
    assert_eq!(https, "502");
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

#[test]
fn fresh_machine_with_ufw() {
    let m = Machine::boot();
    // The distro's firewall package, inactive as Ubuntu ships it.
    m.ok(&["apt-get", "install", "-y", "-q", "ufw"]);
    m.write(
        "/root/site.toml",
        &playbook("backend = \"ufw\"\nenable = true"),
    );
    let (report, mutating) = apply(&m, "/root/site.toml");
    assert_eq!(report["failed"], 0, "{report:#}");
    // The log line the idempotence check relies on is really there when something runs.
    assert!(
        mutating.iter().any(|l| l.contains("apt-get")),
        "{mutating:?}"
    );
    assert_nginx_serving(&m);
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
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "firewalld"]);
    m.write(
        "/root/site.toml",
        &playbook("backend = \"firewalld\"\nenable = true"),
    );
    let (report, _) = apply(&m, "/root/site.toml");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_nginx_serving(&m);
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
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "iptables"]);
    m.write("/root/site.toml", &playbook("backend = \"iptables\""));
    let (report, _) = apply(&m, "/root/site.toml");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_nginx_serving(&m);
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
    let code = m.ok(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://localhost/",
    ]);
    assert_eq!(code, "301", "nginx stopped serving after a refused reload");
}
