//! ACME certificates: renewal policy and the state renewal keeps between runs.

pub mod ari;
pub mod http;
pub mod issue;
pub mod policy;
pub mod probe;
pub mod state;

use std::path::PathBuf;

use crate::host::Root;
use crate::playbook::{Acme, KeyType};

/// One certificate to obtain from the ACME server and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub acme: Acme,
    pub names: Vec<String>,
    pub key: KeyType,
    pub reuse_key: bool,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// `renew --dry-run`: talk to the server, write nothing.
    pub dry_run: bool,
}

/// Obtains the certificate (network only: nothing under the root changes
/// but the challenge files). Safe to run for several jobs at once.
pub fn obtain(root: &Root, job: &Job) -> Result<issue::Issued, issue::AcmeError> {
    // A reload is asynchronous: wait until nginx answers for every name, so
    // the CA's first look does not hit the old configuration.
    if root.is_host() && !probe::wait_until_served(&job.names, std::time::Duration::from_secs(10)) {
        return Err(issue::AcmeError::Local {
            path: PathBuf::from("http://127.0.0.1/.well-known/acme-challenge/"),
            message: format!(
                "nginx does not answer ACME challenges on port 80 for {}; is another server on port 80?",
                job.names.join(", ")
            ),
        });
    }
    let reuse_key = if job.reuse_key {
        root.read_to_string(&job.key_path)?
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| issue::AcmeError::Local {
            path: PathBuf::from("<runtime>"),
            message: e.to_string(),
        })?;
    rt.block_on(issue::issue(
        root,
        &issue::Request {
            acme: &job.acme,
            names: &job.names,
            key: job.key,
            reuse_key,
            replaces: root
                .read(&job.cert_path)
                .ok()
                .flatten()
                .and_then(|pem| ari::identifier(&pem)),
        },
    ))
}

/// Writes key then chain, atomically, 0600 and 0644.
pub fn install(root: &Root, job: &Job, issued: &issue::Issued) -> Result<(), issue::AcmeError> {
    if job.dry_run {
        return Ok(());
    }
    for (path, bytes, mode, dir_mode) in [
        (&job.key_path, issued.key_pem.as_bytes(), 0o600, 0o700),
        (&job.cert_path, issued.chain_pem.as_bytes(), 0o644, 0o755),
    ] {
        if let Some(dir) = path.parent() {
            root.create_dir_all(dir, dir_mode)?;
        }
        root.write_atomic(path, bytes, mode)?;
    }
    Ok(())
}

/// Obtains and installs one certificate.
pub fn run(root: &Root, job: &Job) -> Result<(), issue::AcmeError> {
    let issued = obtain(root, job)?;
    install(root, job, &issued)
}
