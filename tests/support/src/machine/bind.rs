//! A real BIND 9 inside the machine, authoritative for two test zones on
//! 127.0.0.1:53, taking RFC 2136 updates signed with the TSIG key
//! `portico`: `example.test` (updates only at `_acme-challenge.example.test`
//! and below `*.example.test`'s challenge names, never at
//! `_acme-challenge.app.example.test`, which is a CNAME into the second
//! zone) and `validation.test` (the delegated challenge zone). pebble asks
//! it instead of pebble-challtestsrv. Recursion is on for loopback, as a
//! CA's resolver has it: only a recursive answer follows a CNAME from one
//! zone into another (an authoritative-only BIND stops at the CNAME).

use super::Machine;

/// The TSIG key file portico reads (as `tsig-keygen` writes it).
pub const KEY_FILE: &str = "/etc/portico/tsig.key";

/// The `[[dns]]` section for this BIND.
pub const DNS_RFC2136: &str = r#"[[dns]]
name = "bind"
provider = "rfc2136"
server = "127.0.0.1:53"
key_name = "portico"
algorithm = "hmac-sha256"
secret_file = "/etc/portico/tsig.key"
propagation_timeout = 30
"#;

const ZONE_EXAMPLE: &str = "$TTL 60
@ IN SOA ns.example.test. admin.example.test. 1 60 60 600 60
@ IN NS ns.example.test.
ns IN A 127.0.0.1
@ IN A 127.0.0.1
a IN A 127.0.0.1
b IN A 127.0.0.1
app IN A 127.0.0.1
h IN A 127.0.0.1
n IN A 127.0.0.1
_acme-challenge.app IN CNAME app.validation.test.
";

const ZONE_VALIDATION: &str = "$TTL 60
@ IN SOA ns.validation.test. admin.validation.test. 1 60 60 600 60
@ IN NS ns.validation.test.
ns IN A 127.0.0.1
";

/// Installs and starts BIND with the two zones and the key, points the
/// machine's resolver and pebble at it. Returns the key file's text.
pub fn start_bind(m: &Machine) -> String {
    m.ok(&["apt-get", "install", "-y", "-q", "bind9", "bind9-dnsutils"]);
    let key = m.ok(&["tsig-keygen", "-a", "hmac-sha256", "portico"]);
    m.ok(&["mkdir", "-p", "-m", "0700", "/etc/portico"]);
    m.write(KEY_FILE, &key);
    m.ok(&["chmod", "0600", KEY_FILE]);
    m.write("/etc/bind/portico.key", &key);
    m.ok(&["chgrp", "bind", "/etc/bind/portico.key"]);
    m.ok(&["chmod", "0640", "/etc/bind/portico.key"]);
    m.write("/var/lib/bind/example.test.zone", ZONE_EXAMPLE);
    m.write("/var/lib/bind/validation.test.zone", ZONE_VALIDATION);
    m.ok(&[
        "chown",
        "bind:bind",
        "/var/lib/bind/example.test.zone",
        "/var/lib/bind/validation.test.zone",
    ]);
    m.write(
        "/etc/bind/named.conf.options",
        "options {\n  directory \"/var/cache/bind\";\n  listen-on port 53 { 127.0.0.1; };\n  \
         listen-on-v6 { none; };\n  recursion yes;\n  allow-recursion { 127.0.0.1; };\n  allow-query { any; };\n  dnssec-validation no;\n};\n",
    );
    m.write(
        "/etc/bind/named.conf.local",
        "include \"/etc/bind/portico.key\";\n\
         zone \"example.test\" {\n  type primary;\n  file \"/var/lib/bind/example.test.zone\";\n  \
         update-policy {\n    grant portico name _acme-challenge.example.test. TXT;\n    \
         grant portico name _acme-challenge.a.example.test. TXT;\n    \
         grant portico name _acme-challenge.h.example.test. TXT;\n    \
         grant portico name _acme-challenge.n.example.test. TXT;\n  };\n};\n\
         zone \"validation.test\" {\n  type primary;\n  file \"/var/lib/bind/validation.test.zone\";\n  \
         update-policy { grant portico subdomain validation.test. TXT; };\n};\n",
    );
    m.ok(&["named-checkconf"]);
    m.ok(&["systemctl", "restart", "named"]);
    for _ in 0..100 {
        if !dig(m, "example.test", "SOA").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !dig(m, "example.test", "SOA").is_empty(),
        "BIND did not come up: {}",
        m.ok(&["journalctl", "-u", "named", "--no-pager"])
    );
    m.write("/etc/resolv.conf", "nameserver 127.0.0.1\n");
    super::pebble::set_pebble_dns(m, "127.0.0.1:53");
    key
}

/// What BIND answers for `name`/`rtype` (`dig +short`).
pub fn dig(m: &Machine, name: &str, rtype: &str) -> String {
    let out = m.run(&["dig", "+short", "+norecurse", "@127.0.0.1", name, rtype]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
