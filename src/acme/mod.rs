//! ACME certificates: renewal policy and the state renewal keeps between runs.

pub mod ari;
pub mod http;
pub mod issue;
pub mod policy;
pub mod probe;
pub mod state;

use std::path::PathBuf;

use crate::host::{Clock, Probe, Root};
use crate::playbook::{Acme, Dns, KeyType};

/// How many orders a run has in flight at once: enough to hide a CA's
/// latency, few enough not to look like a flood to it.
pub const PARALLEL: usize = 4;

/// One certificate to obtain from the ACME server and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The ACME server and the account to use with it.
    pub acme: Acme,
    /// The names to certify (subject alternative names).
    pub names: Vec<String>,
    /// The key type of a new key.
    pub key: KeyType,
    /// DNS-01 through this provider; `None`: HTTP-01 through the webroot.
    pub dns: Option<Dns>,
    /// Keep the key already at `key_path` instead of making a new one.
    pub reuse_key: bool,
    /// The certificate's name: what is obtained is written as its pair.
    pub name: String,
    /// Where the current certificate chain is read from.
    pub cert_path: PathBuf,
    /// Where the current private key is read from (with `reuse_key`).
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

/// Obtains one certificate: [`obtain_all`] with one job.
pub fn obtain(net: Net, job: &Job) -> Result<issue::Issued, issue::AcmeError> {
    obtain_all(net, &[job], 1)
        .pop()
        .unwrap_or(Err(issue::AcmeError::Panicked))
}

/// Obtains the certificates, `parallel` orders at a time, in the order
/// given (network only: nothing under the root changes but the account
/// and the challenge files). Orders to one ACME server share its account
/// and one HTTP/2 connection; each job's result is its own.
pub fn obtain_all(
    net: Net,
    jobs: &[&Job],
    parallel: usize,
) -> Vec<Result<issue::Issued, issue::AcmeError>> {
    obtain_all_then(net, jobs, parallel, &mut |_, r| r)
}

/// [`obtain_all`], handing each result to `done` (with the job's index) as
/// soon as its order ends, while the others go on: what `done` returns is
/// that job's result (the engine writes the certificate there, so a stop
/// or a kill later loses none of what was obtained).
pub fn obtain_all_then(
    net: Net,
    jobs: &[&Job],
    parallel: usize,
    done: &mut dyn FnMut(
        usize,
        Result<issue::Issued, issue::AcmeError>,
    ) -> Result<issue::Issued, issue::AcmeError>,
) -> Vec<Result<issue::Issued, issue::AcmeError>> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let message = e.to_string();
            return jobs
                .iter()
                .map(|_| {
                    Err(issue::AcmeError::Runtime(std::io::Error::other(
                        message.clone(),
                    )))
                })
                .collect();
        }
    };
    // One session per server; a playbook names one, so usually one in all.
    let mut sessions: Vec<issue::Session> = Vec::new();
    for job in jobs {
        if !sessions.iter().any(|s| s.serves(&job.acme)) {
            sessions.push(issue::Session::new(net.root, &job.acme));
        }
    }
    let sessions = &sessions;
    // Blocking, before any order, for every name at once: mostly done at
    // the first look (the run's reload waited for the new workers).
    let served = served(net, jobs);
    let orders: Vec<_> = jobs
        .iter()
        .zip(served)
        .map(|(job, served)| guarded_order(net, sessions, job, served))
        .collect();
    use futures_util::StreamExt;
    let mut results: Vec<Option<Result<issue::Issued, issue::AcmeError>>> =
        jobs.iter().map(|_| None).collect();
    rt.block_on(async {
        let mut ended = futures_util::stream::iter(
            orders
                .into_iter()
                .enumerate()
                .map(|(i, order)| async move { (i, order.await) }),
        )
        .buffer_unordered(parallel.max(1));
        while let Some((i, result)) = ended.next().await {
            results[i] = Some(done(i, result));
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(issue::AcmeError::NotStarted("the run ended before it"))))
        .collect()
}

/// One order, started only if the run may still start one and nginx
/// serves its challenges; bounded in time, and a panic over what a CA sent
/// ends this order alone.
async fn guarded_order(
    net: Net<'_>,
    sessions: &[issue::Session<'_>],
    job: &Job,
    served: bool,
) -> Result<issue::Issued, issue::AcmeError> {
    // Checked as the order is about to start (`buffered` starts them as
    // others end): a run told to stop, or near its own limit, starts no
    // new one.
    if crate::host::stop::stopping() {
        return Err(issue::AcmeError::NotStarted(
            "the run is stopping (SIGTERM)",
        ));
    }
    if !crate::limits::may_start_order(run_started().elapsed()) {
        return Err(issue::AcmeError::NotStarted(
            "the run is near its time limit; the next run orders it",
        ));
    }
    if job.dns.is_none() {
        issue::check_webroot(net.root, &job.acme.webroot)?;
    }
    if !served {
        return Err(issue::AcmeError::NotServed {
            names: job.names.join(", "),
        });
    }
    let session = sessions
        .iter()
        .find(|s| s.serves(&job.acme))
        .expect("a session per server");
    // DNS-01 may wait for propagation on top of the CA.
    let limit = ORDER_TIMEOUT
        + job.dns.as_ref().map_or(std::time::Duration::ZERO, |d| {
            std::time::Duration::from_secs(u64::from(d.propagation_timeout))
        });
    let order = std::panic::AssertUnwindSafe(tokio::time::timeout(limit, one(net, session, job)));
    match futures_util::FutureExt::catch_unwind(order).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(issue::AcmeError::Server {
            step: "order",
            directory: issue::directory_url(&job.acme.directory),
            message: format!(
                "no certificate after {} s; giving up on this order",
                limit.as_secs()
            ),
        }),
        Err(_) => Err(issue::AcmeError::Panicked),
    }
}

/// The longest one order may take, every request and poll included: the
/// HTTP client has no timeout of its own.
const ORDER_TIMEOUT: std::time::Duration = crate::limits::ORDER_BASE;

/// When this run started (the first call; [`crate::renew::renew`] makes
/// it at its start): what a run's time limit counts from.
pub fn run_started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// A reload is asynchronous: for each job, true once nginx answers the
/// challenges for every one of its names, so the CA's first look does not
/// hit the old configuration. One wait of at most 10 s for all the jobs.
/// Always true off a live host (nothing to ask).
fn served(net: Net, jobs: &[&Job]) -> Vec<bool> {
    if !net.live {
        return vec![true; jobs.len()];
    }
    let _t = crate::timing::step("acme wait until served", &format!("{} orders", jobs.len()));
    // DNS-01 needs nothing from nginx.
    let names: Vec<String> = jobs
        .iter()
        .filter(|j| j.dns.is_none())
        .flat_map(|j| j.names.iter().cloned())
        .collect();
    if names.is_empty() {
        return vec![true; jobs.len()];
    }
    let ok = probe::served_within(
        net.probe,
        net.clock,
        &names,
        std::time::Duration::from_secs(10),
    );
    jobs.iter()
        .map(|j| j.dns.is_some() || j.names.iter().all(|n| ok.contains(n)))
        .collect()
}

/// One order within a session.
async fn one(
    net: Net<'_>,
    session: &issue::Session<'_>,
    job: &Job,
) -> Result<issue::Issued, issue::AcmeError> {
    let reuse_key = if job.reuse_key {
        net.root
            .read_to_string(&job.key_path)?
            .map(|pem| (job.key_path.clone(), pem))
    } else {
        None
    };
    issue::issue(
        session,
        &issue::Request {
            acme: &job.acme,
            names: &job.names,
            key: job.key,
            dns: job.dns.as_ref(),
            reuse_key,
            replaces: net
                .root
                .read(&job.cert_path)
                .ok()
                .flatten()
                .and_then(|pem| ari::identifier(&pem)),
        },
    )
    .await
}
