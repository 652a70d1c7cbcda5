//! A private certificate authority for client certificates (mTLS): created
//! once, issues client certificates with a PKCS#12 bundle, revokes them into
//! the CRL nginx reads with `ssl_crl`.
//!
//! Layout under `/var/lib/portico/ca/NAME/` (directory 0700):
//! `ca.key` (0600), `ca.crt`, `crl.pem`, `index.json` (what was issued and
//! revoked), `issued/SERIAL.crt`.

use crate::paths;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::host::root::RootError;
use crate::host::Root;

/// Why a CA could not be created, read, or used to issue or revoke.
#[derive(Debug, Error)]
pub enum CaError {
    /// Reading or writing one of its files failed.
    #[error(transparent)]
    Fs(#[from] RootError),
    /// The CA has not been created (no certificate, key or index).
    #[error("ca {name}: does not exist; create it with `portico ca init {name}`")]
    Missing {
        /// The CA.
        name: String,
    },
    /// One of its files cannot be read as what it should hold.
    #[error("ca {name}: {path}: {message}")]
    Corrupt {
        /// The CA.
        name: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// It never issued a certificate with this serial.
    #[error("ca {name}: no certificate with serial {serial} (see `portico ca list {name}`)")]
    UnknownSerial {
        /// The CA.
        name: String,
        /// The serial asked for.
        serial: String,
    },
    /// The certificate to revoke is revoked already.
    #[error("ca {name}: certificate {serial} was already revoked")]
    AlreadyRevoked {
        /// The CA.
        name: String,
        /// The certificate's serial.
        serial: String,
    },
    /// The common name cannot name files: empty, starting with `.`, or
    /// holding `/`, a newline or NUL.
    #[error("{0:?} is not a valid common name")]
    BadCn(String),
    /// Making a key, a certificate or the CRL failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PKCS#12 bundle could not be made.
    #[error("PKCS#12 bundle: {0}")]
    Pkcs12(String),
    /// A server certificate signed by the CA could not be made.
    #[error("ca {name}: cannot issue a server certificate: {source}")]
    Server {
        /// The CA.
        name: String,
        /// Why.
        source: crate::tls::TlsError,
    },
}

/// What signing needs from the CA: its key and certificate as an rcgen
/// issuer, when it expires (nothing it signs may outlive it), and its PEM.
struct Signer {
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
    cert_pem: String,
}

/// One issued certificate as recorded in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lowercase hex, no separators.
    pub serial: String,
    /// The certificate's common name: who it was issued to.
    pub cn: String,
    /// Unix seconds.
    pub not_after: i64,
    /// Unix seconds; `None` while valid.
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    crl_number: u64,
    certs: Vec<Entry>,
}

/// Files written for an issued client certificate.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedFiles {
    /// Its serial, lowercase hex, no separators.
    pub serial: String,
    /// The certificate, PEM (0644).
    pub cert: PathBuf,
    /// Its private key, PEM (0600).
    pub key: PathBuf,
    /// Key, certificate and CA certificate in one PKCS#12 bundle (0600),
    /// for browsers and curl.
    pub p12: PathBuf,
    /// The bundle's password, in a 0600 file: never printed, never in argv.
    pub p12_password_file: PathBuf,
}

/// How the issuer of a certificate from one of portico's CAs begins, as
/// x509 prints it (the CA's common name is `portico CA NAME`).
pub const CN_PREFIX: &str = "CN=portico CA ";

/// Where a CA named `name` keeps its certificate (nginx's
/// `ssl_client_certificate`) and its CRL (`ssl_crl`).
pub fn ca_files(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(paths::CA_DIR).join(name);
    (dir.join("ca.crt"), dir.join("crl.pem"))
}

/// One named CA stored under a filesystem root, at a point in time (what
/// it signs starts then).
pub struct Ca<'a> {
    root: &'a Root,
    name: String,
    now: OffsetDateTime,
}

/// Unix seconds as the time crate's type (the epoch for nonsense).
fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// 16 random bytes, top bit clear: a positive serial as RFC 5280 wants.
fn random_serial() -> Vec<u8> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("system random source");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // never a leading zero byte: one canonical hex form
    bytes.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Accepts `0A:1B:...`, `0a1b...`; returns lowercase hex without separators.
pub fn normalize_serial(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
        .trim_start_matches("0x")
        .to_string()
}

impl<'a> Ca<'a> {
    /// The CA's name, as the playbook and the command line give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA `name` under `root`, now being `now` (Unix seconds).
    pub fn new(root: &'a Root, name: &str, now: i64) -> Self {
        Ca {
            root,
            name: name.to_string(),
            now: at(now),
        }
    }

    /// The directory its files are in.
    pub fn dir(&self) -> PathBuf {
        Path::new(paths::CA_DIR).join(&self.name)
    }

    /// Path of the CA certificate (nginx's `ssl_client_certificate`).
    pub fn cert_path(&self) -> PathBuf {
        ca_files(&self.name).0
    }

    /// Path of the CRL (nginx's `ssl_crl`).
    pub fn crl_path(&self) -> PathBuf {
        ca_files(&self.name).1
    }

    fn key_path(&self) -> PathBuf {
        self.dir().join("ca.key")
    }

    fn index_path(&self) -> PathBuf {
        self.dir().join("index.json")
    }

    fn corrupt(&self, path: PathBuf, message: impl std::fmt::Display) -> CaError {
        CaError::Corrupt {
            name: self.name.clone(),
            path,
            message: message.to_string(),
        }
    }

    /// Has it been created (its certificate and key are there)?
    pub fn exists(&self) -> bool {
        self.root.exists(&self.cert_path()) && self.root.exists(&self.key_path())
    }

    /// Creates the CA; `Ok(false)` when it exists already (left untouched).
    pub fn init(&self, days: u32) -> Result<bool, CaError> {
        if self.exists() {
            return Ok(false);
        }
        self.root.create_dir_all(Path::new(paths::CA_DIR), 0o700)?;
        self.root.create_dir_all(&self.dir(), 0o700)?;
        for (path, bytes, mode) in self.new_files(days)? {
            self.root.write_atomic(&path, &bytes, mode)?;
        }
        Ok(true)
    }

    /// The files of a brand-new CA, made in memory: key first (a CA
    /// certificate without its key would be useless), then the certificate,
    /// an empty index and an empty signed CRL.
    pub fn new_files(&self, days: u32) -> Result<Vec<(PathBuf, Vec<u8>, u32)>, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("portico CA {}", self.name));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = self.now - time::Duration::minutes(5);
        params.not_after = self.now + time::Duration::days(i64::from(days));
        params.serial_number = Some(SerialNumber::from(random_serial()));
        let cert = params.self_signed(&key)?;
        let (key_pem, cert_pem) = (key.serialize_pem(), cert.pem());
        let mut index = Index::default();
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        let crl = signed_crl(&issuer, params.not_after, &mut index, self.now)?;
        let index_json = serde_json::to_vec_pretty(&index).expect("index serializes");
        Ok(vec![
            (self.key_path(), key_pem.into_bytes(), 0o600),
            (self.cert_path(), cert_pem.into_bytes(), 0o644),
            (self.index_path(), index_json, 0o600),
            (self.crl_path(), crl.into_bytes(), 0o644),
        ])
    }

    fn read_index(&self) -> Result<Index, CaError> {
        let path = self.index_path();
        let text = self
            .root
            .read_to_string(&path)?
            .ok_or_else(|| CaError::Missing {
                name: self.name.clone(),
            })?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(path, e))
    }

    fn write_index(&self, index: &Index) -> Result<(), CaError> {
        let json = serde_json::to_vec_pretty(index).expect("index serializes");
        self.root.write_atomic(&self.index_path(), &json, 0o600)?;
        Ok(())
    }

    /// The CA's issuer (its key and certificate), for signing.
    fn issuer(&self) -> Result<Signer, CaError> {
        if !self.exists() {
            return Err(CaError::Missing {
                name: self.name.clone(),
            });
        }
        let key_pem = self
            .root
            .read_to_string(&self.key_path())?
            .unwrap_or_default();
        let key = KeyPair::from_pem(&key_pem).map_err(|e| self.corrupt(self.key_path(), e))?;
        let cert_pem = self
            .root
            .read_to_string(&self.cert_path())?
            .unwrap_or_default();
        let not_after = crate::facts::cert::inspect_pem(cert_pem.as_bytes())
            .map(|i| i.not_after)
            .ok_or_else(|| self.corrupt(self.cert_path(), "not a certificate"))?;
        let not_after = OffsetDateTime::from_unix_timestamp(not_after)
            .map_err(|e| self.corrupt(self.cert_path(), e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| self.corrupt(self.cert_path(), e))?;
        Ok(Signer {
            issuer,
            not_after,
            cert_pem,
        })
    }

    /// Signs a fresh CRL listing every revoked certificate.
    fn write_crl(&self, index: &mut Index) -> Result<(), CaError> {
        let ca = self.issuer()?;
        let crl = signed_crl(&ca.issuer, ca.not_after, index, self.now)?;
        self.root
            .write_atomic(&self.crl_path(), crl.as_bytes(), 0o644)?;
        Ok(())
    }

    /// The certificates issued to `cn` that are neither revoked nor expired.
    pub fn valid_for(&self, cn: &str) -> Result<Vec<Entry>, CaError> {
        let now = self.now.unix_timestamp();
        Ok(self
            .read_index()?
            .certs
            .into_iter()
            .filter(|e| e.cn == cn && e.revoked_at.is_none() && e.not_after > now)
            .collect())
    }

    /// Issues a client certificate for `cn` and writes `CN.crt`, `CN.key`,
    /// `CN.p12` and `CN.p12.pass` into `out` (on `out_root`).
    pub fn issue(
        &self,
        cn: &str,
        days: u32,
        out_root: &Root,
        out: &Path,
    ) -> Result<IssuedFiles, CaError> {
        if cn.is_empty() || cn.contains(['/', '\0', '\n']) || cn.starts_with('.') {
            return Err(CaError::BadCn(cn.to_string()));
        }
        let ca = self.issuer()?;
        let mut index = self.read_index()?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let serial = random_serial();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = self.now - time::Duration::minutes(5);
        params.not_after = (self.now + time::Duration::days(i64::from(days))).min(ca.not_after);
        params.serial_number = Some(SerialNumber::from(serial.clone()));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca.issuer)?;
        let serial_hex = hex(&serial);

        let ca_der = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes())
            .map(|(_, p)| p.contents)
            .map_err(|e| self.corrupt(self.cert_path(), e))?;
        let password = {
            let mut raw = [0u8; 18];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
                .expect("system random source");
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        };
        let p12 = pkcs12(cn, &key.serialize_der(), cert.der(), &ca_der, &password)?;

        out_root.create_dir_all(out, 0o700)?;
        let files = IssuedFiles {
            serial: serial_hex.clone(),
            cert: out.join(format!("{cn}.crt")),
            key: out.join(format!("{cn}.key")),
            p12: out.join(format!("{cn}.p12")),
            p12_password_file: out.join(format!("{cn}.p12.pass")),
        };
        out_root.write_atomic(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
        out_root.write_atomic(&files.cert, cert.pem().as_bytes(), 0o644)?;
        out_root.write_atomic(&files.p12, &p12, 0o600)?;
        out_root.write_atomic(
            &files.p12_password_file,
            format!("{password}\n").as_bytes(),
            0o600,
        )?;

        let issued = self.dir().join("issued");
        self.root.create_dir_all(&issued, 0o700)?;
        self.root.write_atomic(
            &issued.join(format!("{serial_hex}.crt")),
            cert.pem().as_bytes(),
            0o644,
        )?;
        index.certs.push(Entry {
            serial: serial_hex,
            cn: cn.to_string(),
            not_after: params.not_after.unix_timestamp(),
            revoked_at: None,
        });
        self.write_index(&index)?;
        Ok(files)
    }

    /// A server certificate for `names` (serverAuth), signed by this CA;
    /// PEM chain (leaf, CA) and key. Pure: nothing is written or recorded
    /// (server certificates are re-issued, not revoked).
    pub fn server_certificate(
        &self,
        names: &std::collections::BTreeSet<String>,
        key: crate::playbook::KeyType,
        days: u32,
    ) -> Result<crate::tls::Issued, CaError> {
        let ca = self.issuer()?;
        crate::tls::signed_by(
            &crate::tls::Validity {
                names,
                key,
                days,
                now: self.now.unix_timestamp(),
            },
            &ca.issuer,
            &ca.cert_pem,
            ca.not_after,
            random_serial(),
        )
        .map_err(|source| CaError::Server {
            name: self.name.clone(),
            source,
        })
    }

    /// Revokes a certificate and re-signs the CRL.
    pub fn revoke(&self, serial: &str) -> Result<Entry, CaError> {
        let serial = normalize_serial(serial);
        let mut index = self.read_index()?;
        let entry = index
            .certs
            .iter_mut()
            .find(|e| e.serial == serial)
            .ok_or_else(|| CaError::UnknownSerial {
                name: self.name.clone(),
                serial: serial.clone(),
            })?;
        if entry.revoked_at.is_some() {
            return Err(CaError::AlreadyRevoked {
                name: self.name.clone(),
                serial,
            });
        }
        entry.revoked_at = Some(self.now.unix_timestamp());
        let done = entry.clone();
        // The CRL first: a revocation is only real once nginx can read it.
        self.write_crl(&mut index)?;
        self.write_index(&index)?;
        Ok(done)
    }

    /// Every certificate it has issued, revoked ones too, oldest first.
    pub fn list(&self) -> Result<Vec<Entry>, CaError> {
        Ok(self.read_index()?.certs)
    }
}

/// A CRL of every revoked certificate in `index`, with the next CRL number.
fn signed_crl(
    issuer: &Issuer<'_, KeyPair>,
    ca_not_after: OffsetDateTime,
    index: &mut Index,
    now: OffsetDateTime,
) -> Result<String, CaError> {
    index.crl_number += 1;
    let revoked = index
        .certs
        .iter()
        .filter_map(|e| {
            let at = OffsetDateTime::from_unix_timestamp(e.revoked_at?).ok()?;
            let serial = (0..e.serial.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(e.serial.get(i..i + 2)?, 16).ok())
                .collect::<Vec<u8>>();
            Some(RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: at,
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(5),
        // nginx rejects every client once a CRL has expired; portico
        // re-signs it on each revoke, so it lasts as long as the CA.
        next_update: ca_not_after,
        crl_number: SerialNumber::from(index.crl_number.to_be_bytes().to_vec()),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)?;
    Ok(crl.pem()?)
}

/// A PKCS#12 bundle (key, certificate, CA) for curl and browsers, encrypted
/// with PBES2/AES-256 and an HMAC-SHA-256 MAC.
fn pkcs12(
    alias: &str,
    key_pkcs8: &[u8],
    cert_der: &[u8],
    ca_der: &[u8],
    password: &str,
) -> Result<Vec<u8>, CaError> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let err = |e: p12_keystore::error::Error| CaError::Pkcs12(e.to_string());
    let key = PrivateKey::from_der(key_pkcs8).map_err(err)?;
    let chain = PrivateKeyChain::new(
        alias,
        key,
        [
            Certificate::from_der(cert_der).map_err(err)?,
            Certificate::from_der(ca_der).map_err(err)?,
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().map_err(err)
}
