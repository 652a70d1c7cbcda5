//! ACME certificates: renewal policy and the state renewal keeps between runs.

use crate::paths;

pub mod ari;
pub mod http;
pub mod issue;
pub mod ledger;
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
            return every(
                jobs,
                |e| issue::AcmeError::Runtime(std::io::Error::other(e)),
                &e,
            )
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
    // The accounts' budgets and holds, before anything is sent: the slots
    // of the orders about to start are taken and saved first.
    let admitted_at = net.clock.unix_now();
    let (admitted, ledger) = admit(net, jobs, admitted_at);
    let took: Vec<bool> = admitted.iter().map(Option::is_none).collect();
    let held = &Holds::new(ledger, admitted_at);
    // Blocking, before any order, for every name at once: mostly done at
    // the first look (the run's reload waited for the new workers).
    let served = served(net, jobs);
    let orders: Vec<_> = jobs
        .iter()
        .zip(served)
        .zip(admitted)
        .map(|((job, served), refused)| guarded_order(net, sessions, job, served, refused, held))
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
            held.note(net, jobs[i], took[i], &result);
            results[i] = Some(done(i, result));
        }
    });
    held.save(net);
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(issue::AcmeError::NotStarted("the run ended before it"))))
        .collect()
}

/// The same error for every job (what stops them all before any order).
fn every(
    jobs: &[&Job],
    error: impl Fn(String) -> issue::AcmeError,
    why: &dyn std::fmt::Display,
) -> Vec<Result<issue::Issued, issue::AcmeError>> {
    jobs.iter().map(|_| Err(error(why.to_string()))).collect()
}

/// The batch's accounts, as the orders end: the CA rate-limited one (no
/// order of its starts after the answer, and the hold is saved at once),
/// or a slot taken for an order that was never sent (given back).
struct Holds {
    directories: std::sync::Mutex<std::collections::BTreeSet<String>>,
    ledger: std::sync::Mutex<Option<ledger::Ledger>>,
    /// When the slots were taken.
    admitted_at: i64,
    /// Slots were given back: the ledger is saved after the batch.
    gave_back: std::sync::atomic::AtomicBool,
}

impl Holds {
    fn new(ledger: Option<ledger::Ledger>, admitted_at: i64) -> Self {
        Holds {
            directories: Default::default(),
            ledger: std::sync::Mutex::new(ledger),
            admitted_at,
            gave_back: Default::default(),
        }
    }

    /// Is `directory`'s account held since an order of this run?
    fn holds(&self, directory: &str) -> bool {
        self.directories.lock().is_ok_and(|h| h.contains(directory))
    }

    /// `job`'s order ended with `result` (`admitted`: it had taken a slot).
    /// A `rateLimited` answer holds its whole account from the next order
    /// on, saved now (a kill later must not forget it); an order that was
    /// never sent gives its slot back.
    fn note(
        &self,
        net: Net,
        job: &Job,
        admitted: bool,
        result: &Result<issue::Issued, issue::AcmeError>,
    ) {
        let directory = issue::directory_url(&job.acme.directory);
        let Err(e) = result else { return };
        if let issue::AcmeError::RateLimited {
            retry_after,
            message,
            ..
        } = e
        {
            if let Ok(mut h) = self.directories.lock() {
                h.insert(directory.clone());
            }
            self.with_ledger(net, |l| {
                l.account(&directory)
                    .hold(net.clock.unix_now(), *retry_after, message);
                true
            });
        } else if admitted && e.sent_no_order() {
            self.with_ledger(net, |l| {
                l.account(&directory).give_back(self.admitted_at);
                self.gave_back
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                false
            });
        }
    }

    /// Changes the ledger with `change`, and saves it when `change` says so.
    fn with_ledger(&self, net: Net, change: impl FnOnce(&mut ledger::Ledger) -> bool) {
        let Ok(mut l) = self.ledger.lock() else {
            return;
        };
        let Some(l) = l.as_mut() else { return };
        if change(l) {
            if let Err(e) = l.save(net.root, net.clock.unix_now()) {
                tracing::warn!(
                    "{}: {e}; the account's count or hold may be lost",
                    paths::ORDERS_FILE
                );
            }
        }
    }

    /// Saves the slots given back, if any.
    fn save(&self, net: Net) {
        let gave_back = self.gave_back.load(std::sync::atomic::Ordering::SeqCst);
        self.with_ledger(net, |_| gave_back);
    }
}

/// Which jobs may order now: for each, `None` when it may, or why not
/// (its account is held, or its hour's orders are sent). The slots of
/// those that may are taken and the ledger saved before any order starts,
/// so a kill never loses count. Jobs are admitted in the order given. A
/// ledger that cannot be read or saved admits nothing: the count is what
/// keeps the account inside its limits.
fn admit(
    net: Net,
    jobs: &[&Job],
    now: i64,
) -> (Vec<Option<issue::AcmeError>>, Option<ledger::Ledger>) {
    let refuse_all = |e: &dyn std::fmt::Display| {
        let refused = every(
            jobs,
            |e| issue::AcmeError::Ledger(format!("{}: {e}", paths::ORDERS_FILE)),
            e,
        );
        (refused.into_iter().map(Result::err).collect(), None)
    };
    let (mut l, warning) = match ledger::Ledger::load(net.root, now) {
        Ok(x) => x,
        Err(e) => return refuse_all(&e),
    };
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let mut taken = false;
    let verdicts = jobs
        .iter()
        .map(|job| {
            let limit = ledger::limit(&job.acme);
            let account = l.account(&issue::directory_url(&job.acme.directory));
            account.prune(now);
            if let Some(until) = account.held(now) {
                return Some(issue::AcmeError::Held {
                    until: crate::when::rfc3339(until),
                    because: account.held_because.clone().unwrap_or_default(),
                });
            }
            if account.free(now, limit) == 0 {
                return Some(issue::AcmeError::Queued {
                    made: account.recent(now),
                    limit: limit.unwrap_or_default(),
                    next: crate::when::rfc3339(account.next_chance(now, limit)),
                });
            }
            account.take(now, 1);
            taken = true;
            None
        })
        .collect();
    if taken {
        if let Err(e) = l.save(net.root, now) {
            return refuse_all(&e);
        }
    }
    (verdicts, Some(l))
}

/// One order, started only if its account admitted it, its account was
/// not rate-limited since, the run may still start one, and nginx serves
/// its challenges; bounded in time, and a panic over what a CA sent ends
/// this order alone.
async fn guarded_order(
    net: Net<'_>,
    sessions: &[issue::Session<'_>],
    job: &Job,
    served: bool,
    refused: Option<issue::AcmeError>,
    held: &Holds,
) -> Result<issue::Issued, issue::AcmeError> {
    if let Some(e) = refused {
        return Err(e);
    }
    if held.holds(&issue::directory_url(&job.acme.directory)) {
        return Err(issue::AcmeError::Held {
            until: "its Retry-After".into(),
            because: "an order of this run met the limit".into(),
        });
    }
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
