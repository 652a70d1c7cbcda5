//! A real pebble (ACME test CA) and pebble-challtestsrv (DNS answering
//! 127.0.0.1) inside a booted machine, for the ACME tests and benches.

use super::Machine;

/// A CA and a certificate for pebble's HTTPS listener (the package ships none).
pub fn pebble_listener_cert() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
    };
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "pebble listener test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// Starts pebble and its DNS inside the machine as transient units.
pub fn start_pebble(m: &Machine) {
    m.ok(&["apt-get", "install", "-y", "-q", "pebble"]);
    for (path, text) in pebble_files() {
        m.write(path, &text);
    }
    let mut argv = vec!["systemd-run", "--unit=challtestsrv"];
    argv.extend(CHALLTESTSRV);
    m.ok(&argv);
    run_pebble(m);
}

/// pebble's configuration, its listener's CA, certificate and key: each
/// file with what it holds.
pub fn pebble_files() -> [(&'static str, String); 4] {
    let (ca, cert, key) = pebble_listener_cert();
    [
        ("/etc/pebble/ca.pem", ca),
        ("/etc/pebble/cert.pem", cert),
        ("/etc/pebble/key.pem", key),
        ("/etc/pebble/config.json", CONFIG.to_string()),
    ]
}

/// pebble on 127.0.0.1:14000 (management :15000), validating on port 80.
const CONFIG: &str = r#"{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
    "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
    "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}"#;

/// pebble-challtestsrv answering every name with 127.0.0.1 on :8053 (DNS
/// only; its own HTTP servers off).
pub const CHALLTESTSRV: [&str; 15] = [
    "pebble-challtestsrv",
    "-defaultIPv4",
    "127.0.0.1",
    "-defaultIPv6",
    "",
    "-dns01",
    "127.0.0.1:8053",
    "-http01",
    "",
    "-https01",
    "",
    "-tlsalpn01",
    "",
    "-management",
    "127.0.0.1:8055",
];

/// (Re)starts pebble as a transient unit and waits for its directory.
pub fn run_pebble(m: &Machine) {
    // A unit file rather than a transient unit: a stopped transient unit
    // stays loaded until systemd collects it, and starting it again before
    // that fails ("already loaded"), which a loaded CI machine hit.
    let unit = "/etc/systemd/system/pebble.service";
    if !m.root().join(unit.trim_start_matches('/')).exists() {
        m.write(
            unit,
            "[Unit]\nDescription=pebble, the ACME test CA\n\n[Service]\n\
             # No random validation sleeps, no random nonce rejections: the\n\
             # server behaves like a well-run CA, only faster.\n\
             Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0\n\
             ExecStart=/usr/bin/pebble -config /etc/pebble/config.json -dnsserver 127.0.0.1:8053\n",
        );
        m.ok(&["systemctl", "daemon-reload"]);
    }
    m.ok(&["systemctl", "restart", "pebble"]);
    for _ in 0..100 {
        let up = m.run(&[
            "curl",
            "-s",
            "--cacert",
            "/etc/pebble/ca.pem",
            "-o",
            "/dev/null",
            "https://127.0.0.1:14000/dir",
        ]);
        if up.status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "pebble did not come up: {}",
        m.ok(&["journalctl", "-u", "pebble", "--no-pager"])
    );
}

/// A booted machine whose `names` resolve to itself, with pebble running.
pub fn pebble_machine(names: &[&str]) -> Machine {
    let m = Machine::boot();
    let mut hosts = std::fs::read_to_string(m.root().join("etc/hosts")).unwrap_or_default();
    hosts.push_str(&format!("127.0.0.1 {}\n", names.join(" ")));
    m.write("/etc/hosts", &hosts);
    start_pebble(&m);
    m
}

/// Swaps the machine's pebble for 2.6 (trixie's), which offers ACME Renewal
/// Information, and restarts it. Call before anything has an account.
pub fn use_pebble_with_ari(m: &Machine) {
    m.ok(&["dpkg", "-i", "/srv/extra/pebble-ari.deb"]);
    m.ok(&["systemctl", "stop", "pebble"]);
    run_pebble(m);
    let dir = m.ok(&[
        "curl",
        "-s",
        "--cacert",
        "/etc/pebble/ca.pem",
        "https://127.0.0.1:14000/dir",
    ]);
    assert!(dir.contains("renewalInfo"), "pebble offers no ARI: {dir}");
}

/// Restarts pebble asking `server` (`IP:PORT`) for DNS instead of
/// pebble-challtestsrv, never reusing an authorization.
pub fn set_pebble_dns(m: &Machine, server: &str) {
    let path = m.root().join("etc/systemd/system/pebble.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    let start = unit
        .find("-dnsserver ")
        .expect("pebble's unit names its DNS server");
    let end = unit[start..].find('\n').map_or(unit.len(), |e| start + e);
    let unit = format!("{}-dnsserver {server}{}", &unit[..start], &unit[end..])
        // Every order validated anew (pebble reuses half of the valid
        // authorizations by default): a DNS test or bench that skipped its
        // challenges would prove and measure nothing.
        .replace(
            "PEBBLE_WFE_NONCEREJECT=0\n",
            "PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0\n",
        );
    std::fs::write(&path, unit).unwrap();
    m.ok(&["systemctl", "daemon-reload"]);
    m.ok(&["systemctl", "stop", "pebble"]);
    run_pebble(m);
}

/// Restarts pebble with an extra setting in its config (e.g. EAB).
pub fn reconfigure_pebble(m: &Machine, extra: &str) {
    let path = m.root().join("etc/pebble/config.json");
    let config = std::fs::read_to_string(&path).unwrap();
    let config = config.replace("\"externalAccountBindingRequired\": false", extra);
    std::fs::write(&path, config).unwrap();
    m.ok(&["systemctl", "stop", "pebble"]);
    run_pebble(m);
}
