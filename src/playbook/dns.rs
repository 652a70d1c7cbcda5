//! What a `[[dns]]` section's strings mean: a server's address and a TSIG
//! algorithm's name. The playbook checks them with these, and the DNS-01
//! code uses what they return, so both read them the same way.

use core::net::{IpAddr, SocketAddr};

/// `IP`, `IP:PORT` or `[IPv6]:PORT` as a socket address (port 53 by default).
pub fn server_addr(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .filter(|a| a.port() != 0)
}

/// A TSIG algorithm portico signs with: SHA-256 and up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tsig {
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

/// The algorithm a name means (without case), if portico signs with it.
pub fn tsig_algorithm(name: &str) -> Option<Tsig> {
    match name.to_ascii_lowercase().as_str() {
        "hmac-sha256" => Some(Tsig::HmacSha256),
        "hmac-sha384" => Some(Tsig::HmacSha384),
        "hmac-sha512" => Some(Tsig::HmacSha512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(server_addr("192.0.2.53"), "192.0.2.53:53".parse().ok());
        assert_eq!(
            server_addr("192.0.2.53:5353"),
            "192.0.2.53:5353".parse().ok()
        );
        assert_eq!(
            server_addr("[2001:db8::1]:53"),
            "[2001:db8::1]:53".parse().ok()
        );
        assert_eq!(server_addr("2001:db8::1"), "[2001:db8::1]:53".parse().ok());
        assert_eq!(server_addr("ns.example.test"), None);
        assert_eq!(server_addr("192.0.2.53:0"), None);
    }

    #[test]
    fn only_sha2_algorithms() {
        assert_eq!(tsig_algorithm("hmac-sha256"), Some(Tsig::HmacSha256));
        assert_eq!(tsig_algorithm("HMAC-SHA512"), Some(Tsig::HmacSha512));
        assert!(tsig_algorithm("hmac-md5").is_none());
        assert!(tsig_algorithm("hmac-sha1").is_none());
    }
}
