//! DNS-01 end to end on a booted machine: a real BIND 9 serving two zones
//! and taking TSIG-signed RFC 2136 updates, a real pebble asking that BIND,
//! real nginx serving what was issued. One apply issues a wildcard (apex
//! plus `*.`) through RFC 2136, a certificate whose challenge name is a
//! CNAME into another zone, and one through a hook that drives `nsupdate`.
#![cfg(feature = "system")]

use report_json::task;
use support::machine;
use support::report as report_json;

use machine::bind::{dig, start_bind, DNS_RFC2136, KEY_FILE};
use machine::pebble::pebble_machine;
use machine::Machine;
use serde_json::Value;

/// The hook: `add` or `del` the record through nsupdate with BIND's own
/// copy of the key, and a line in a log for the test.
const HOOK: &str = r#"#!/bin/sh
set -eu
case "$1" in
  add) op="update add $PORTICO_TXT_NAME. 60 TXT \"$PORTICO_TXT_VALUE\"" ;;
  del) op="update delete $PORTICO_TXT_NAME. TXT \"$PORTICO_TXT_VALUE\"" ;;
  pretend) echo "pretend $PORTICO_DOMAIN $PORTICO_TXT_NAME" >> /root/hook.log; exit 0 ;;
  *) echo "usage: dns-hook add|del" >&2; exit 2 ;;
esac
printf 'server 127.0.0.1\n%s\nsend\n' "$op" | nsupdate -k /etc/bind/portico.key
echo "$1 $PORTICO_DOMAIN $PORTICO_TXT_NAME" >> /root/hook.log
"#;

fn playbook() -> String {
    format!(
        r#"version = 1

[firewall]
backend = "none"

[acme]
directory = "https://127.0.0.1:14000/dir"
ca_root = "/etc/pebble/ca.pem"
agree_terms = true

{DNS_RFC2136}
[[dns]]
name = "script"
provider = "hook"
present = ["/usr/local/bin/dns-hook", "add"]
cleanup = ["/usr/local/bin/dns-hook", "del"]
propagation_timeout = 30

[[certificate]]
name = "wild"
source = "acme"
challenge = "dns-01"
dns = "bind"

[[certificate]]
name = "app"
source = "acme"
challenge = "dns-01"
dns = "bind"

[[certificate]]
name = "hooked"
source = "acme"
challenge = "dns-01"
dns = "script"

[[site]]
server_names = ["example.test", "*.example.test"]
certificate = "wild"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site]]
server_names = ["app.example.test"]
certificate = "app"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"

[[site]]
server_names = ["h.example.test"]
certificate = "hooked"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#
    )
}

/// The serial of the certificate nginx serves for `name`, verified against
/// pebble's root (fails the test when it does not verify).
fn served_serial(m: &Machine, name: &str) -> String {
    m.ok(&[
        "sh",
        "-c",
        &format!(
            "openssl s_client -connect 127.0.0.1:443 -servername {name} -verify_return_error \
             -CAfile /root/pebble-root.pem </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ),
    ])
}

fn run_json(m: &Machine, argv: &[&str]) -> (Option<i32>, Value, String) {
    let out = m.run_env(&[("PORTICO_LOG", "debug")], argv);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout}\n{stderr}"));
    (out.status.code(), v, format!("{stdout}\n{stderr}"))
}

/// The base64 secret of a `tsig-keygen` key file.
fn secret_of(key: &str) -> String {
    let at = key.find("secret \"").unwrap() + "secret \"".len();
    key[at..at + key[at..].find('"').unwrap()].to_string()
}

#[test]
fn wildcard_cname_and_hook_certificates_through_bind_then_a_wrong_key_keeps_the_old_one() {
    let m = pebble_machine(&[]);
    let key = start_bind(&m);
    let secret = secret_of(&key);
    m.write("/usr/local/bin/dns-hook", HOOK);
    m.ok(&["chmod", "0755", "/usr/local/bin/dns-hook"]);
    m.write("/root/site.toml", &playbook());

    // The plan names the challenge and provider, and no secret.
    let plan = m.run(&[
        "portico",
        "apply",
        "--replace",
        "--check",
        "--diff",
        "/root/site.toml",
    ]);
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan_text.contains("over DNS-01 (rfc2136 bind)")
            && plan_text.contains("over DNS-01 (hook script)"),
        "{plan_text}"
    );

    let (code, report, output) =
        run_json(&m, &["portico", "-v", "apply", "--json", "/root/site.toml"]);
    assert_eq!(code, Some(0), "{report:#}\n{output}");
    for cert in ["wild", "app", "hooked"] {
        assert_eq!(
            task(&report, &format!("certificate {cert}"))["status"],
            "changed",
            "{report:#}"
        );
    }

    // The wildcard covers the apex and any name below it; nginx serves it
    // for two of them, and it verifies against pebble's root.
    m.ok(&[
        "sh",
        "-c",
        "curl -s --cacert /etc/pebble/ca.pem https://127.0.0.1:15000/roots/0 > /root/pebble-root.pem",
    ]);
    let san = m.ok(&[
        "openssl",
        "x509",
        "-in",
        "/etc/ssl/portico/certs/wild.crt",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        san.contains("DNS:example.test") && san.contains("DNS:*.example.test"),
        "{san}"
    );
    let wild = m.ok(&[
        "openssl",
        "x509",
        "-in",
        "/etc/ssl/portico/certs/wild.crt",
        "-noout",
        "-serial",
    ]);
    for name in ["a.example.test", "b.example.test", "example.test"] {
        assert_eq!(served_serial(&m, name), wild, "{name}");
    }
    assert_ne!(served_serial(&m, "app.example.test"), wild);
    assert_ne!(served_serial(&m, "h.example.test"), wild);

    // Apex and wildcard share one name: both values were published in one
    // update and waited for once.
    let steps = |name: &str, of: &str| {
        output
            .matches(&format!(
                "step{{name=\"{name}\" of=\"{of}\"}}: portico::timing"
            ))
            .count()
    };
    let both = "example.test,*.example.test";
    let one_of = |of: &str| steps("dns propagation", of);
    assert_eq!(
        one_of(both) + one_of("*.example.test,example.test"),
        1,
        "one propagation wait for the apex and its wildcard:\n{output}"
    );

    // Every record is gone afterwards.
    for name in [
        "_acme-challenge.example.test",
        "_acme-challenge.h.example.test",
        "app.validation.test",
    ] {
        assert_eq!(dig(&m, name, "TXT"), "", "{name} still has a TXT record");
    }
    // The CNAME's target zone took the update (example.test may not change
    // _acme-challenge.app at all): its journal exists, and the CNAME stays.
    m.ok(&["test", "-e", "/var/lib/bind/validation.test.zone.jnl"]);
    assert_eq!(
        dig(&m, "_acme-challenge.app.example.test", "CNAME"),
        "app.validation.test."
    );
    // The hook was called once to add and once to remove, with the names.
    let hook_log = m.ok(&["cat", "/root/hook.log"]);
    assert_eq!(
        hook_log,
        "add h.example.test _acme-challenge.h.example.test\n\
         del h.example.test _acme-challenge.h.example.test\n",
    );

    // A second apply has nothing to do.
    let (code, report, _) = run_json(
        &m,
        &["portico", "apply", "--replace", "--json", "/root/site.toml"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(report["changed"], 0, "{report:#}");

    // A wrong TSIG secret: a clear error naming the server and the record,
    // the old certificate still served, the failure backed off. The hook's
    // certificate, through BIND's own key, is renewed in the same run (nginx
    // is not reloaded while a certificate failed: it picks it up at the
    // next reload).
    let wrong = m.ok(&["tsig-keygen", "-a", "hmac-sha256", "portico"]);
    m.write(KEY_FILE, &wrong);
    let hooked_file = || {
        m.ok(&[
            "openssl",
            "x509",
            "-in",
            "/etc/ssl/portico/certs/hooked.crt",
            "-noout",
            "-serial",
        ])
    };
    let hooked_before = hooked_file();
    let (code, report, renew_output) = run_json(
        &m,
        &["portico", "renew", "--force", "--json", "/root/site.toml"],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let failed = task(&report, "certificate wild");
    assert_eq!(failed["status"], "failed", "{report:#}");
    let reason = failed["reason"].as_str().unwrap();
    for part in [
        "127.0.0.1:53",
        "_acme-challenge.example.test",
        "does not accept the TSIG key portico",
    ] {
        assert!(reason.contains(part), "{part:?} not in {reason}");
    }
    assert_eq!(served_serial(&m, "a.example.test"), wild);
    assert_eq!(
        task(&report, "certificate hooked")["status"],
        "changed",
        "{report:#}"
    );
    assert_ne!(hooked_file(), hooked_before);
    let state: Value =
        serde_json::from_str(&m.ok(&["cat", "/var/lib/portico/state.json"])).unwrap();
    assert_eq!(state["certificates"]["wild"]["failures"], 1, "{state:#}");
    assert!(
        state["certificates"]["wild"]["next_attempt"].is_i64(),
        "{state:#}"
    );
    assert_eq!(dig(&m, "_acme-challenge.example.test", "TXT"), "");

    // A hook that says it added the record but did not: the wait ends at
    // propagation_timeout naming the server, and cleanup still runs.
    m.write(
        "/root/never.toml",
        &playbook()
            .replace(
                "\"/usr/local/bin/dns-hook\", \"add\"",
                "\"/usr/local/bin/dns-hook\", \"pretend\"",
            )
            .replace(
                "propagation_timeout = 30\n\n[[certificate]]",
                "propagation_timeout = 1\n\n[[certificate]]",
            )
            .replace("[\"h.example.test\"]", "[\"n.example.test\"]"),
    );
    m.ok(&["rm", "/root/hook.log"]);
    let (code, report, _) = run_json(&m, &["portico", "renew", "--json", "/root/never.toml"]);
    assert_eq!(code, Some(1), "{report:#}");
    let reason = task(&report, "certificate hooked")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("_acme-challenge.n.example.test: the TXT record is not answered by ns.example.test (127.0.0.1:53) within 1 s"),
        "{reason}"
    );
    assert_eq!(
        m.ok(&["cat", "/root/hook.log"]),
        "pretend n.example.test _acme-challenge.n.example.test\n\
         del n.example.test _acme-challenge.n.example.test\n",
    );

    // The secret is in no output, log or state: not the right one, not the
    // wrong one.
    let journal = m.ok(&["journalctl", "--no-pager"]);
    let state_text = m.ok(&["cat", "/var/lib/portico/state.json"]);
    let wrong_secret = secret_of(&wrong);
    for (what, text) in [
        ("apply --check --diff", &plan_text),
        ("apply -v --json (debug log)", &output),
        ("renew --json (debug log)", &renew_output),
        ("state.json", &state_text),
        ("the journal", &journal),
    ] {
        assert!(!text.contains(&secret), "the secret is in {what}");
        assert!(
            !text.contains(&wrong_secret),
            "the wrong secret is in {what}"
        );
    }
}
