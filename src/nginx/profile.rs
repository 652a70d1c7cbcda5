//! TLS settings after Mozilla's server-side TLS guidelines (6.0): no TLS 1.0
//! or 1.1, no DHE in intermediate, no OCSP stapling (Let's Encrypt ended OCSP).

use crate::facts::Version;
use crate::playbook::Profile;

const INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

const DHE_CIPHERS: &str =
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/// The `http`-independent TLS directives of a profile, one per line.
/// `dhparam` is the file written for profiles with DHE suites.
pub fn directives(
    profile: Profile,
    dhparam: Option<&str>,
    openssl: Option<Version>,
) -> Vec<String> {
    let mut d = Vec::new();
    match profile {
        Profile::Modern => d.push("ssl_protocols TLSv1.3;".to_string()),
        Profile::Intermediate => {
            d.push("ssl_protocols TLSv1.2 TLSv1.3;".into());
            d.push(format!("ssl_ciphers {INTERMEDIATE_CIPHERS};"));
        }
        Profile::Compat => {
            d.push("ssl_protocols TLSv1.2 TLSv1.3;".into());
            d.push(format!("ssl_ciphers {INTERMEDIATE_CIPHERS}:{DHE_CIPHERS};"));
            if let Some(path) = dhparam {
                d.push(format!("ssl_dhparam {path};"));
            }
        }
    }
    // The hybrid post-quantum group first where OpenSSL has it (3.5+).
    if openssl.is_some_and(|v| v >= Version(3, 5, 0)) {
        d.push("ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;".into());
    } else {
        d.push("ssl_ecdh_curve X25519:prime256v1:secp384r1;".into());
    }
    // Every suite listed is strong, so the order is a detail, but scanners
    // (testssl.sh 3.0.8 rates a missing order HIGH) and auditors ask for one.
    d.push(format!(
        "ssl_prefer_server_ciphers {};",
        if profile == Profile::Modern {
            "off"
        } else {
            "on"
        }
    ));
    d.push("ssl_session_timeout 1d;".into());
    // ssl_session_cache is set per server: a site with client certificates
    // gets a cache of its own (CVE-2025-23419, see render.rs).
    // Tickets without key rotation undo forward secrecy.
    d.push("ssl_session_tickets off;".into());
    d
}
