//! ACME certificates: renewal policy and the state renewal keeps between runs.

pub mod ari;
pub mod http;
pub mod issue;
pub mod policy;
pub mod probe;
pub mod state;

use std::path::PathBuf;

use crate::host::{Clock, Probe, Root};
use crate::playbook::{Acme, KeyType};

/// One certificate to obtain from the ACME server and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The ACME server and the account to use with it.
    pub acme: Acme,
    /// The names to certify (subject alternative names).
    pub names: Vec<String>,
    /// The key type of a new key.
    pub key: KeyType,
    /// Keep the key already at `key_path` instead of making a new one.
    pub reuse_key: bool,
    /// Where the certificate chain is written.
    pub cert_path: PathBuf,
    /// Where the private key is written (and read from with `reuse_key`).
    pub key_path: PathBuf,
    /// `renew --dry-run`: talk to the server, write nothing.
    pub dry_run: bool,
}

/// What obtaining a certificate may touch: the files under the root (the
/// account, the challenge answers), nginx on loopback (is it answering the
/// challenges yet?) and the clock. All of it `Sync`: several certificates
/// are obtained at once.
#[derive(Clone, Copy)]
pub struct Net<'a> {
    /// The filesystem.
    pub root: &'a Root,
    /// nginx on loopback.
    pub probe: &'a dyn Probe,
    /// The clock (bounded waits).
    pub clock: &'a dyn Clock,
    /// A running host (false under `--root`: nothing to probe).
    pub live: bool,
}

/// Obtains the certificate (network only: nothing under the root changes
/// but the account and the challenge files). Safe to run for several jobs
/// at once.
pub fn obtain(net: Net, job: &Job) -> Result<issue::Issued, issue::AcmeError> {
    // A reload is asynchronous: wait until nginx answers for every name, so
    // the CA's first look does not hit the old configuration.
    if net.live
        && !probe::wait_until_served(
            net.probe,
            net.clock,
            &job.names,
            std::time::Duration::from_secs(10),
        )
    {
        return Err(issue::AcmeError::NotServed {
            names: job.names.join(", "),
        });
    }
    let reuse_key = if job.reuse_key {
        net.root
            .read_to_string(&job.key_path)?
            .map(|pem| (job.key_path.clone(), pem))
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(issue::AcmeError::Runtime)?;
    rt.block_on(issue::issue(
        net.root,
        &issue::Request {
            acme: &job.acme,
            names: &job.names,
            key: job.key,
            reuse_key,
            replaces: net
                .root
                .read(&job.cert_path)
                .ok()
                .flatten()
                .and_then(|pem| ari::identifier(&pem)),
        },
    ))
}
