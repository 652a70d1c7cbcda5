//! Day two on a booted machine: switching playbooks converges the host
//! (sites, firewall rules), files portico did not write are refused,
//! `remove` gives the machine back, `validate` touches nothing, and with a
//! real ACME CA: `status` against what nginx serves, deploy hooks, and the
//! daemon's warnings in the journal.
#![cfg(feature = "system")]

use support::https::Request;
use support::machine;

use machine::pebble::pebble_machine;
use machine::Machine;
use serde_json::Value;

/// Every path under the directories portico touches, with the SSH and
/// journal state left out (they change on their own).
fn file_list(m: &Machine) -> Vec<String> {
    let out = m.ok(&[
        "sh",
        "-c",
        "find /etc /var/lib/portico /var/www -xdev 2>/dev/null | sort",
    ]);
    out.lines()
        // The boot's own bookkeeping, not portico's.
        .filter(|l| !l.starts_with("/etc/.") && !l.starts_with("/etc/ld.so.cache"))
        .map(str::to_string)
        .collect()
}

fn https_code(m: &Machine, host: &str, port: u16) -> String {
    let request = Request::get(&format!("https://{host}:{port}/"))
        .insecure()
        .resolve(host, port, "127.0.0.1");
    format!("{:03}", m.https(&request).status)
}

fn ufw_rules(m: &Machine) -> String {
    m.ok(&["ufw", "show", "added"])
}

#[test]
fn switching_playbooks_converges_and_remove_gives_the_machine_back() {
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "nginx", "ufw"]);
    m.ok(&["ufw", "allow", "22/tcp"]);
    m.ok(&["ufw", "--force", "enable"]);
    let pristine = file_list(&m);

    // The embedded default: {hostname} and localhost on 443, ufw opened for 80 and 443.
    let out = m.run(&["portico", "apply"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("playbook: <embedded default>\n"));
    assert_eq!(https_code(&m, "localhost", 443), "502");
    let rules = ufw_rules(&m);
    assert!(rules.contains("ufw allow 443/tcp"), "{rules}");

    // The seed with a backend nginx cannot resolve: nginx -t rejects the
    // switch, so nothing of it stays, the default keeps serving on its port,
    // and what portico made is still recorded (the next switch prunes it).
    let seed = std::fs::read_to_string("playbooks/mtls-api.toml").unwrap();
    m.write(
        "/root/bad.toml",
        &seed.replace("http://127.0.0.1:4000", "http://backend.invalid:4000"),
    );
    let before = file_list(&m);
    let out = m.run(&["portico", "apply", "--replace", "/root/bad.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    assert_eq!(
        file_list(&m)
            .into_iter()
            .filter(|p| !p.starts_with("/var/lib/portico"))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|p| !p.starts_with("/var/lib/portico"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        https_code(&m, "localhost", 443),
        "502",
        "the default still serves"
    );
    assert!(
        ufw_rules(&m).contains("ufw allow 443/tcp"),
        "a rejected switch closed 443"
    );
    let recorded = std::fs::read_to_string(m.root().join("var/lib/portico/managed.json")).unwrap();
    assert!(
        recorded.contains("/etc/ssl/portico/pairs/default"),
        "{recorded}"
    );

    m.write("/root/mtls.toml", &seed);

    // The switch: only the seed's site is served, on its port, and the
    // default's certificate goes to the archive.
    let out = m.run(&["portico", "apply", "--replace", "/root/mtls.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("prune tree /etc/ssl/portico/pairs/default"),
        "{text}"
    );
    assert_eq!(https_code(&m, "api.example.com", 8443), "502");
    // The default site is gone: nothing listens on 443 any more, and an
    // unknown name on the seed's port gets no certificate at all.
    assert_eq!(https_code(&m, "localhost", 443), "000");
    assert_eq!(https_code(&m, "unknown.example.com", 8443), "000");
    // Port 80's default server is Debian's own site, which portico leaves
    // alone: an unknown name gets its welcome page, never a seed's site.
    let http = m.ok(&[
        "curl",
        "-s",
        "-H",
        "Host: unknown.example.com",
        "http://127.0.0.1/",
    ]);
    assert!(http.contains("Welcome to nginx"), "{http}");
    // The rule for the dropped port is gone; SSH and the others stay.
    let rules = ufw_rules(&m);
    assert!(!rules.contains("ufw allow 443/tcp"), "{rules}");
    assert!(rules.contains("ufw allow 22/tcp"), "{rules}");
    assert!(rules.contains("ufw allow 8443/tcp"), "{rules}");
    assert!(rules.contains("ufw allow 80/tcp"), "{rules}");

    // validate: nginx rejects a config portico accepts; nothing on the host moves.
    let master = m.ok(&["systemctl", "show", "-p", "MainPID", "--value", "nginx"]);
    let before = file_list(&m);
    let out = m.run(&["portico", "validate", "/root/bad.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("host not found in upstream \"backend.invalid:4000\""),
        "{text}"
    );
    assert_eq!(file_list(&m), before);
    assert_eq!(
        m.ok(&["systemctl", "show", "-p", "MainPID", "--value", "nginx"]),
        master
    );

    // remove: the file list of before the first apply (portico's state
    // directory aside: the archived keys and the CA live there), the rules
    // portico added gone, SSH kept, nginx still installed and running.
    let out = m.run(&["portico", "remove"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let left: Vec<String> = file_list(&m)
        .into_iter()
        .filter(|p| !p.starts_with("/var/lib/portico"))
        .collect();
    assert_eq!(left, pristine);
    let rules = ufw_rules(&m);
    assert!(!rules.contains("8443"), "{rules}");
    assert!(!rules.contains("ufw allow 80/tcp"), "{rules}");
    assert!(rules.contains("ufw allow 22/tcp"), "{rules}");
    assert_eq!(m.ok(&["systemctl", "is-active", "nginx"]).trim(), "active");
    let archived = m.ok(&["find", "/var/lib/portico/archive", "-name", "api.key"]);
    assert_eq!(
        archived.lines().count(),
        1,
        "the key is archived: {archived}"
    );

    // --purge: keys, CA and state too.
    let out = m.run(&["portico", "remove", "--purge"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(file_list(&m), pristine);
}

const ACME: &str = r#"version = 1

[firewall]
backend = "none"

[renewal]
deploy_hook = ["/usr/local/bin/hook", "--from-portico"]

[acme]
directory = "https://127.0.0.1:14000/dir"
ca_root = "/etc/pebble/ca.pem"
email = "ops@app.test"
agree_terms = true

[[certificate]]
name = "app"
source = "acme"

[[certificate]]
name = "api"
source = "acme"

[[site]]
server_names = ["app.test", "www.app.test"]
certificate = "app"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site]]
server_names = ["api.test"]
certificate = "api"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3001"
"#;

/// What the hook recorded, one line per run.
fn hook_runs(m: &Machine) -> Vec<String> {
    std::fs::read_to_string(m.root().join("var/log/portico-hook.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What openssl reads from the certificate nginx serves for `name`.
fn served(m: &Machine, name: &str) -> String {
    m.ok(&[
        "sh",
        "-c",
        &format!(
            "openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null \
             | openssl x509 -noout -serial -fingerprint -sha256 -startdate -enddate -issuer -nameopt RFC2253"
        ),
    ])
}

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in {text}"))
        .to_string()
}

fn rfc3339(m: &Machine, openssl_date: &str) -> String {
    m.ok(&["date", "-u", "-d", openssl_date, "+%Y-%m-%dT%H:%M:%SZ"])
        .trim()
        .to_string()
}

#[test]
fn status_hooks_and_the_journal_with_a_real_ca() {
    let m = pebble_machine(&["app.test", "www.app.test", "api.test"]);
    // The hook records its argv and environment.
    m.write(
        "/usr/local/bin/hook",
        "#!/bin/sh\necho \"$1 $PORTICO_CERT_NAME $PORTICO_CERT_PATH $PORTICO_KEY_PATH [$PORTICO_DOMAINS]\" >> /var/log/portico-hook.log\n",
    );
    m.ok(&["chmod", "755", "/usr/local/bin/hook"]);
    m.write("/root/site.toml", ACME);
    let out = m.run(&["portico", "apply", "--replace", "/root/site.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");

    // Once per certificate, after the reload, with its files and names.
    let mut runs = hook_runs(&m);
    runs.sort();
    assert_eq!(
        runs,
        [
            "--from-portico api /etc/ssl/portico/certs/api.crt /etc/ssl/portico/private/api.key [api.test]",
            "--from-portico app /etc/ssl/portico/certs/app.crt /etc/ssl/portico/private/app.key [app.test www.app.test]",
        ]
    );
    // Nothing changed: no hook.
    let out = m.run(&["portico", "renew"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("playbook: /etc/portico/playbook.toml\n")
    );
    let out = m.run(&["portico", "apply", "--replace", "/root/site.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(hook_runs(&m).len(), 2, "a hook ran without a change");

    // status --json, against openssl's reading of what nginx serves.
    let out = m.run(&["portico", "status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["playbook"], "/etc/portico/playbook.toml");
    assert_eq!(v["nginx"]["active"], true);
    assert_eq!(v["daemon"]["active"], true);
    assert!(v["daemon"]["next_run"].as_str().unwrap().ends_with('Z'));
    for (name, host) in [("app", "app.test"), ("api", "api.test")] {
        let c = v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let x = served(&m, host);
        let cur = &c["current"];
        assert_eq!(c["source"], "acme");
        assert_eq!(
            cur["serial"]
                .as_str()
                .unwrap()
                .replace(':', "")
                .to_uppercase()
                .trim_start_matches('0'),
            field(&x, "serial=").trim_start_matches('0'),
            "{x}"
        );
        assert_eq!(cur["fingerprint"], field(&x, "sha256 Fingerprint="));
        assert_eq!(cur["not_before"], rfc3339(&m, &field(&x, "notBefore=")));
        assert_eq!(cur["not_after"], rfc3339(&m, &field(&x, "notAfter=")));
        assert_eq!(cur["issuer"], field(&x, "issuer="));
        assert_eq!(c["renewal"]["by"], "daemon");
        assert_eq!(c["renewal"]["rule"], "lifetime");
        assert_eq!(c["failures"], 0);
    }

    // Forced renewal: the hook once per certificate again.
    let out = m.run(&["portico", "renew", "--force"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(hook_runs(&m).len(), 4);

    // The CA down and a certificate gone: the daemon's failed renewal is a
    // warning in the journal, and the info lines are not.
    m.ok(&["systemctl", "stop", "pebble"]);
    m.ok(&[
        "rm",
        "/etc/ssl/portico/live/api",
        "/etc/ssl/portico/certs/api.crt",
    ]);
    m.ok(&["systemctl", "restart", "portico"]);
    let log = |prio: &str| {
        m.ok(&[
            "journalctl",
            "-u",
            "portico",
            "-p",
            prio,
            "--no-pager",
            "-o",
            "cat",
        ])
    };
    for _ in 0..200 {
        if log("info").matches("renewal done").count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let warnings = log("warning");
    assert!(warnings.contains("certificate api"), "{warnings}");
    assert!(
        !warnings.contains("renewal done"),
        "info in -p warning:\n{warnings}"
    );
    assert!(!warnings.contains("renewal scheduled"), "{warnings}");
    assert!(log("info").contains("renewal done"));
    let status = m.ok(&[
        "systemctl",
        "show",
        "-p",
        "StatusText",
        "--value",
        "portico",
    ]);
    assert!(
        status.contains("1 failed") && status.contains("next renewal run 20"),
        "{status}"
    );
    // status says so, and fails.
    let out = m.run(&["portico", "status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("certificate api: no readable certificate"),
        "{text}"
    );
    // Renewal in back-off says until when, and exits non-zero.
    let out = m.run(&["portico", "renew"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("next attempt at 20"), "{text}");
    assert_eq!(hook_runs(&m).len(), 4, "a hook ran for a failed renewal");

    // No ACME certificate left: the daemon is stopped, disabled and its
    // unit removed; the ACME certificates and keys are archived.
    m.write(
        "/root/plain.toml",
        "version = 1\n[firewall]\nbackend = \"none\"\n[[certificate]]\nname = \"local\"\nsource = \"self-signed\"\n\
         [[site]]\nserver_names = [\"app.test\"]\ncertificate = \"local\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    );
    let out = m.run(&["portico", "apply", "--replace", "/root/plain.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("stop portico.service"), "{text}");
    assert!(!m.root().join("etc/systemd/system/portico.service").exists());
    assert!(!m
        .run(&["systemctl", "is-active", "portico"])
        .status
        .success());
    assert!(!m
        .run(&["systemctl", "is-enabled", "portico"])
        .status
        .success());
    let archived = m.ok(&["find", "/var/lib/portico/archive", "-name", "app.key"]);
    assert_eq!(archived.lines().count(), 1, "{archived}");
}
