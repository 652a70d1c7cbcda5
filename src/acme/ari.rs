//! ACME Renewal Information (RFC 9773): the CA suggests when each
//! certificate should be renewed (earlier than usual after a mis-issuance or
//! revocation event, say). Asked at most once per Retry-After (a day when the
//! CA offers no ARI at all) and remembered in state.json, so a renewal run
//! with nothing due stays off the network.

use instant_acme::CertificateIdentifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::issue::{self, AcmeError};
use super::policy::Window;
use crate::host::Root;
use crate::playbook::Acme;

/// Never ask more often than this, whatever Retry-After says.
pub const MIN_RECHECK: i64 = 3600;
/// Ask again after this when the CA offers no ARI or gave no usable delay.
pub const DEFAULT_RECHECK: i64 = 24 * 3600;

/// The ARI identifier of a chain's leaf (its first PEM certificate).
pub fn identifier(chain_pem: &[u8]) -> Option<CertificateIdentifier<'static>> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem).next()?.ok()?;
    CertificateIdentifier::try_from(&leaf)
        .ok()
        .map(CertificateIdentifier::into_owned)
}

/// What the CA said about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    /// `None`: the CA offers no ARI.
    pub window: Option<Window>,
    /// Do not ask again before this (Unix seconds).
    pub next_check: i64,
}

/// Turns a renewalInfo answer into advice (pure).
pub fn advice(window: Option<Window>, retry_after_secs: Option<u64>, now: i64) -> Advice {
    let wait = retry_after_secs
        .map(|s| (s.min(i64::MAX as u64) as i64).clamp(MIN_RECHECK, 7 * DEFAULT_RECHECK))
        .unwrap_or(DEFAULT_RECHECK);
    Advice {
        window,
        next_check: now + wait,
    }
}

/// Asks the CA about each (name, path of its chain), read only once the
/// CA answered; one connection for all.
pub fn fetch(
    root: &Root,
    acme: &Acme,
    certs: &[(String, std::path::PathBuf)],
    now: i64,
) -> Result<Vec<(String, Advice)>, AcmeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AcmeError::Runtime)?;
    rt.block_on(async {
        let account = issue::account(root, acme).await?;
        let mut out = Vec::new();
        for (name, path) in certs {
            let Some(id) = root
                .read(path)
                .ok()
                .flatten()
                .and_then(|pem| identifier(&pem))
            else {
                continue; // missing or unreadable: the certificate task re-issues it anyway
            };
            let a = match account.renewal_info(&id).await {
                Ok((info, retry)) => {
                    let w = info.suggested_window;
                    advice(
                        Some(Window {
                            start: w.start.unix_timestamp(),
                            end: w.end.unix_timestamp(),
                        }),
                        Some(retry.as_secs()),
                        now,
                    )
                }
                Err(instant_acme::Error::Unsupported(_)) => advice(None, None, now),
                Err(e) => {
                    // Not fatal: renewal falls back to the lifetime rule.
                    tracing::warn!("ACME renewalInfo for {name}: {e}");
                    advice(None, Some(MIN_RECHECK as u64), now)
                }
            };
            out.push((name.clone(), a));
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let now = 1_000_000;
        assert_eq!(advice(None, Some(6 * 3600), now).next_check, now + 6 * 3600);
        assert_eq!(advice(None, Some(5), now).next_check, now + MIN_RECHECK);
        assert_eq!(advice(None, None, now).next_check, now + DEFAULT_RECHECK);
        assert_eq!(
            advice(None, Some(u64::MAX), now).next_check,
            now + 7 * DEFAULT_RECHECK
        );
    }

    #[test]
    fn the_identifier_is_aki_dot_serial_of_the_leaf() {
        // RFC 9773 section 4.1: base64url(AKI keyIdentifier) "." base64url(serial),
        // checked against what x509-parser reads from the same leaf.
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        leaf.serial_number = Some(vec![0x00, 0x87, 0x65, 0x43, 0x21].into());
        leaf.use_authority_key_identifier_extension = true; // as every CA-issued leaf
        let leaf = leaf.signed_by(&KeyPair::generate().unwrap(), &ca).unwrap();
        let chain = format!("{}{}", leaf.pem(), ca.pem());

        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.der()).unwrap();
        let aki = parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let want = format!("{}.{}", b64.encode(aki), b64.encode(parsed.raw_serial()));
        assert_eq!(identifier(chain.as_bytes()).unwrap().to_string(), want);
        assert!(want.ends_with(".AIdlQyE"), "{want}"); // the RFC's example serial
        assert!(identifier(b"not pem").is_none());
    }
}
