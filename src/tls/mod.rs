//! TLS material: key generation, self-signed certificates, renewal policy.

use core::net::IpAddr;
use std::collections::BTreeSet;

pub mod ca;
pub mod dhparam;

/// The openssl CLI as the independent judge of what the unit tests make.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Runs `openssl ARGS` with `stdin`; returns stdout and stderr, asserting success.
    pub(crate) fn openssl(args: &[&str], stdin: &str) -> String {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl CLI (tests/run installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use thiserror::Error;

use crate::playbook::KeyType;

/// Why a key or certificate could not be made.
#[derive(Debug, Error)]
pub enum TlsError {
    /// rcgen could not make the key or sign the certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// aws-lc could not generate or encode an RSA key.
    #[error("RSA key generation failed")]
    Rsa,
}

/// A freshly made certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

/// Generates a key of the requested type.
pub fn generate_key(key: KeyType) -> Result<KeyPair, TlsError> {
    use aws_lc_rs::rsa::KeySize;
    Ok(match key {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
        KeyType::Rsa2048 => rsa(KeySize::Rsa2048)?,
        KeyType::Rsa3072 => rsa(KeySize::Rsa3072)?,
        KeyType::Rsa4096 => rsa(KeySize::Rsa4096)?,
    })
}

/// ring signs with RSA keys but cannot make them; aws-lc does. It is only
/// loaded here: its start-up (DRBG seeding) costs ~30 ms that ECDSA-only
/// runs should not pay.
fn rsa(size: aws_lc_rs::rsa::KeySize) -> Result<KeyPair, TlsError> {
    use aws_lc_rs::encoding::AsDer;
    let generated = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| TlsError::Rsa)?;
    let pkcs8 = generated.as_der().map_err(|_| TlsError::Rsa)?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec());
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &der,
        &rcgen::PKCS_RSA_SHA256,
    )?)
}

/// What a server certificate is for, and from when.
pub struct Validity<'a> {
    /// DNS names and IP addresses (as SANs; the first also as CN).
    pub names: &'a BTreeSet<String>,
    /// Its key type.
    pub key: KeyType,
    /// Lifetime.
    pub days: u32,
    /// Now, Unix seconds: it is valid from five minutes before.
    pub now: i64,
}

/// What every server certificate portico makes has: the names as SANs (IP
/// addresses as such), the first as CN, serverAuth, valid from five minutes
/// before `now` (clients whose clocks run behind) for `days`.
fn server_params(v: &Validity) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = v
        .names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    if let Some(first) = v.names.iter().next() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.clone());
    }
    let now = time::OffsetDateTime::from_unix_timestamp(v.now)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(v.days));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// A self-signed server certificate for `names` valid from `now` for `days`.
pub fn self_signed(
    names: &BTreeSet<String>,
    key: KeyType,
    days: u32,
    now: i64,
) -> Result<Issued, TlsError> {
    let key_pair = generate_key(key)?;
    let cert = server_params(&Validity {
        names,
        key,
        days,
        now,
    })?
    .self_signed(&key_pair)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
    })
}

/// A server certificate signed by a CA (`issuer`, whose own certificate is
/// `ca_pem`), never outliving it; the file gets the chain, leaf first.
pub fn signed_by(
    v: &Validity,
    issuer: &rcgen::Issuer<'_, KeyPair>,
    ca_pem: &str,
    ca_not_after: time::OffsetDateTime,
    serial: Vec<u8>,
) -> Result<Issued, TlsError> {
    let key_pair = generate_key(v.key)?;
    let mut params = server_params(v)?;
    params.not_after = params.not_after.min(ca_not_after);
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial.into());
    let cert = params.signed_by(&key_pair, issuer)?;
    Ok(Issued {
        cert_pem: format!("{}{}", cert.pem(), ca_pem),
        key_pem: key_pair.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_carries_the_names_and_lifetime() {
        let names: BTreeSet<String> = ["example.test", "127.0.0.1"].map(String::from).into();
        let issued = self_signed(&names, KeyType::EcdsaP256, 30, 1_800_000_000).unwrap();
        let info = crate::facts::cert::inspect_pem(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.names, names);
        let days = (info.not_after - info.not_before) / 86_400;
        assert_eq!(days, 30);
        assert!(issued.key_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn keys_of_every_type_are_made_and_read_back() {
        let names: BTreeSet<String> = ["rsa.example".to_string()].into();
        for (key, bits) in [(KeyType::Rsa2048, 2048), (KeyType::Rsa3072, 3072)] {
            let issued = self_signed(&names, key, 10, 1_800_000_000).unwrap();
            let text = openssl_text(&issued.cert_pem);
            assert!(
                text.contains(&format!("Public-Key: ({bits} bit)")),
                "{text}"
            );
            // And portico reads back the type openssl sees.
            let info = crate::facts::cert::inspect_pem(issued.cert_pem.as_bytes()).unwrap();
            assert_eq!(info.key, key.name());
        }
        for key in [KeyType::EcdsaP256, KeyType::EcdsaP384] {
            let issued = self_signed(&names, key, 10, 1_800_000_000).unwrap();
            let text = openssl_text(&issued.cert_pem);
            let curve = if key == KeyType::EcdsaP256 {
                "prime256v1"
            } else {
                "secp384r1"
            };
            assert!(text.contains(&format!("ASN1 OID: {curve}")), "{text}");
            let info = crate::facts::cert::inspect_pem(issued.cert_pem.as_bytes()).unwrap();
            assert_eq!(info.key, key.name());
        }
    }

    fn openssl_text(pem: &str) -> String {
        test_support::openssl(&["x509", "-noout", "-text"], pem)
    }
}
