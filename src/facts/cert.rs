//! Certificate inspection shared by planning, status and renewal.

use core::net::IpAddr;
use std::collections::BTreeSet;
use std::path::PathBuf;

use x509_parser::extensions::GeneralName;

/// What portico needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names and IP addresses from the subjectAltName extension.
    pub names: BTreeSet<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// The serial number, as colon-separated hex bytes (`0a:1b:...`).
    pub serial: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The subject's distinguished name.
    pub subject: String,
    /// Issued by itself (issuer and subject the same name): self-signed.
    pub self_issued: bool,
    /// SHA-256 of the DER, as `AB:CD:...` (what `openssl x509 -fingerprint -sha256` prints).
    pub fingerprint: String,
    /// The public key, named as playbooks name key types (`ecdsa-p256`,
    /// `rsa3072`, ...); `other` for anything portico does not make.
    pub key: String,
}

/// A certificate's public key, as a playbook `key` value.
fn key_name(cert: &x509_parser::certificate::X509Certificate) -> String {
    use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384};
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa{}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => "ecdsa-p256".into(),
                Some(c) if c == OID_NIST_EC_P384 => "ecdsa-p384".into(),
                _ => "other".into(),
            }
        }
        _ => "other".into(),
    }
}

/// SHA-256 of a certificate's DER, as `AB:CD:...` (what `openssl x509
/// -fingerprint -sha256` prints).
pub fn fingerprint_der(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses the first certificate of a PEM file; `None` when it is not one.
pub fn inspect_pem(pem: &[u8]) -> Option<CertInfo> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => {
                    names.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(CertInfo {
        fingerprint: fingerprint_der(&pem.contents),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert.raw_serial_as_string(),
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        self_issued: cert.issuer().as_raw() == cert.subject().as_raw(),
        key: key_name(&cert),
    })
}

/// One line about a certificate for a diff, instead of its base64: its
/// names, issuer, validity and serial.
pub fn describe(pem: &[u8]) -> String {
    match inspect_pem(pem) {
        Some(i) => format!(
            "subject {}; names {}; issuer {}; valid {} to {}; serial {}",
            i.subject,
            i.names.iter().cloned().collect::<Vec<_>>().join(", "),
            i.issuer,
            crate::when::rfc3339(i.not_before),
            crate::when::rfc3339(i.not_after),
            i.serial
        ),
        None => format!("not a readable certificate ({} bytes)", pem.len()),
    }
}

/// What is wrong with a certificate portico validates but did not make,
/// said after the file's path (`/etc/x.crt: certificate has expired`,
/// `/etc/x.crt with /etc/x.key: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// The file is not there.
    #[error(": {0} file does not exist")]
    Missing(&'static str),
    /// It and its key do not make a pair.
    #[error(" with {}: {problem}", key.display())]
    Pair {
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        problem: PairProblem,
    },
    /// Its end has passed.
    #[error(": certificate has expired")]
    Expired,
    /// Names the sites serve that it does not carry.
    #[error(": does not cover {0}")]
    Uncovered(String),
}

/// What is wrong with a certificate/key pair a user provides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairProblem {
    /// The file holds no PEM certificate.
    #[error("no PEM certificate in the file")]
    NoCertificate,
    /// A certificate of the chain is not X.509.
    #[error("certificate {index} of the chain cannot be parsed")]
    Unparsable {
        /// Its place in the chain (from 0, the leaf).
        index: usize,
    },
    /// The key file holds no key portico can read.
    #[error("the key cannot be read (PKCS#8 or SEC1 PEM expected)")]
    BadKey,
    /// The key is not the leaf certificate's.
    #[error("the key does not match the certificate")]
    KeyMismatch,
    /// A certificate is not followed by its issuer.
    #[error("chain out of order: certificate {index} is issued by {issuer:?}, but the next one is {next:?} (leaf first, then each issuer)")]
    ChainOrder {
        /// Its place in the chain (from 0, the leaf).
        index: usize,
        /// The issuer it names.
        issuer: String,
        /// The subject of the certificate after it.
        next: String,
    },
}

/// Checks a full-chain PEM (leaf first) and its key: every certificate parses,
/// each is followed by its issuer, and the key belongs to the leaf.
pub fn check_pair(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertInfo, PairProblem> {
    let pems: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(chain_pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .collect();
    if pems.is_empty() {
        return Err(PairProblem::NoCertificate);
    }
    let certs = pems
        .iter()
        .enumerate()
        .map(|(index, p)| {
            p.parse_x509()
                .map_err(|_| PairProblem::Unparsable { index })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (index, pair) in certs.windows(2).enumerate() {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            return Err(PairProblem::ChainOrder {
                index,
                issuer: pair[0].issuer().to_string(),
                next: pair[1].subject().to_string(),
            });
        }
    }
    let key_text = std::str::from_utf8(key_pem).map_err(|_| PairProblem::BadKey)?;
    let key = rcgen::KeyPair::from_pem(key_text).map_err(|_| PairProblem::BadKey)?;
    use rcgen::PublicKeyData;
    if key.subject_public_key_info() != certs[0].public_key().raw {
        return Err(PairProblem::KeyMismatch);
    }
    inspect_pem(chain_pem).ok_or(PairProblem::Unparsable { index: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

    /// A CA and a leaf it signed: (leaf pem, ca pem, leaf key pem).
    fn chain() -> (String, String, String) {
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "portico test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["files.example".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "files.example");
        let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
        (leaf.pem(), ca.pem(), leaf_key.serialize_pem())
    }

    #[test]
    fn a_good_chain_and_its_key_pass() {
        let (leaf, ca, key) = chain();
        let info = check_pair(format!("{leaf}{ca}").as_bytes(), key.as_bytes()).unwrap();
        assert!(info.names.contains("files.example"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (leaf, ca, _) = chain();
        let other = KeyPair::generate().unwrap().serialize_pem();
        let err = check_pair(format!("{leaf}{ca}").as_bytes(), other.as_bytes()).unwrap_err();
        assert_eq!(err, PairProblem::KeyMismatch);
    }

    #[test]
    fn a_chain_with_the_issuer_first_is_refused() {
        let (leaf, ca, key) = chain();
        let err = check_pair(format!("{ca}{leaf}").as_bytes(), key.as_bytes()).unwrap_err();
        assert!(
            matches!(err, PairProblem::ChainOrder { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_named() {
        assert_eq!(
            check_pair(b"hello", b"").unwrap_err(),
            PairProblem::NoCertificate
        );
        let (leaf, _, _) = chain();
        assert_eq!(
            check_pair(leaf.as_bytes(), b"not a key").unwrap_err(),
            PairProblem::BadKey
        );
    }
}
