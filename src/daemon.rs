//! `portico daemon`: renews once at start, then on a schedule (daily at a
//! minute fixed per host, or the playbook's cron expression). SIGTERM stops
//! between steps (a renewal in progress finishes first); SIGHUP re-reads the
//! playbook, keeping the old one when the new one is bad. Each renewal is
//! its own process (see `cli::daemon`): between runs the daemon holds no
//! TLS, HTTP or certificate state, only its schedule. systemd hears
//! `READY=1` once it runs, `RELOADING=1` then `READY=1` around a SIGHUP,
//! and a `STATUS=` line kept current with the last outcome and the next run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::playbook::{self, Playbook};

/// Why the daemon could not run.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The cron scheduler did not start, or refused the schedule.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The signal handlers, or the runtime they run on, could not be set up.
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// A playbook and the text it was parsed from (what a renewal is given).
#[derive(Debug, Clone)]
pub struct Source {
    /// The text.
    pub text: String,
    /// What it says.
    pub pb: Playbook,
}

/// What the renewal worker is asked to do.
pub enum Msg {
    /// Renew now, with the playbook in use.
    Renew,
    /// Use this playbook from now on (SIGHUP re-read it).
    Use(Box<Source>),
    /// Exit once the renewal in progress, if any, is done.
    Stop,
}

/// The `STATUS=` line: the last outcome and the next run.
fn status_line(pb: &Playbook, seed: &str, last: &str) -> String {
    use crate::host::Clock;
    let now = crate::host::clock::SystemClock::default().unix_now();
    let next = pb
        .renewal
        .schedule
        .next_after(seed, now)
        .map_or("unknown".to_string(), crate::when::rfc3339);
    // One line: a newline would end the STATUS= field and start another.
    let last = last.replace(['\n', '\r'], " ");
    format!("STATUS={last}; next renewal run {next}")
}

/// Runs until SIGTERM/SIGINT. `renew` does one renewal with the playbook it
/// is given and returns a line saying what it came to; it runs on a worker
/// thread, never two at once.
pub fn run<F>(
    file: Option<PathBuf>,
    first: Source,
    seed: &str,
    mut renew: F,
) -> Result<(), DaemonError>
where
    F: FnMut(&Source) -> String + Send + 'static,
{
    use crate::host::Clock;
    let (tx, rx) = mpsc::channel::<Msg>();
    // At most one renewal waits behind the one running: a schedule firing
    // more often than renewals finish does not pile them up (nor a stop
    // behind them).
    let pending = Arc::new(AtomicBool::new(false));
    let request = {
        let pending = pending.clone();
        move |tx: &mpsc::Sender<Msg>| {
            if !pending.swap(true, Ordering::SeqCst) {
                let _ = tx.send(Msg::Renew);
            }
        }
    };
    // Set when the daemon stops: a renewal queued behind the running one
    // is not started.
    let stopping = Arc::new(AtomicBool::new(false));
    let worker_stopping = stopping.clone();
    let worker_seed = seed.to_string();
    let worker_file = file.clone();
    let worker_pending = pending.clone();
    let worker = std::thread::spawn(move || {
        let mut current = first;
        // The file as it was when read: before each run it is read again if
        // it changed (an apply installs the playbook it applied; the daemon
        // then renews what that playbook has, SIGHUP or not).
        let mut identity = worker_file.as_deref().and_then(crate::host::file_identity);
        let mut last = "no renewal run yet".to_string();
        for msg in rx {
            match msg {
                Msg::Renew if worker_stopping.load(Ordering::SeqCst) => {}
                Msg::Renew => {
                    worker_pending.store(false, Ordering::SeqCst);
                    if let Some(f) = &worker_file {
                        let now_id = crate::host::file_identity(f);
                        if now_id != identity {
                            match playbook::load_file_text(f) {
                                Ok((text, pb)) => {
                                    tracing::info!("{} changed on disk: re-read", f.display());
                                    current = Source { text, pb };
                                    identity = now_id;
                                }
                                Err(e) => {
                                    tracing::error!("{e}; renewing with the playbook read before")
                                }
                            }
                        }
                    }
                    crate::host::notify::notify(&status_line(
                        &current.pb,
                        &worker_seed,
                        "renewing",
                    ));
                    let outcome = renew(&current);
                    let now = crate::host::clock::SystemClock::default().unix_now();
                    last = format!("last run {}: {outcome}", crate::when::rfc3339(now));
                }
                Msg::Use(new) => current = *new,
                Msg::Stop => break,
            }
            crate::host::notify::notify(&status_line(&current.pb, &worker_seed, &last));
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Signals)?;
    let result = rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
        let sched_err =
            |e: tokio_cron_scheduler::JobSchedulerError| DaemonError::Scheduler(e.to_string());
        let mut scheduler = JobScheduler::new().await.map_err(sched_err)?;
        let schedule = |pb: &Playbook| pb.renewal.schedule.cron_expression(seed);
        let add = |scheduler: &JobScheduler, expr: String, tx: mpsc::Sender<Msg>| {
            let request = request.clone();
            let job = Job::new(expr.as_str(), move |_, _| request(&tx)).map_err(sched_err)?;
            Ok::<_, DaemonError>((scheduler.clone(), job))
        };
        let mut expr = {
            // The worker owns the playbook; the schedule is read once here.
            let pb = match &file {
                Some(f) => playbook::load_file(f).ok(),
                None => None,
            };
            pb.map(|p| schedule(&p))
                .unwrap_or_else(|| crate::playbook::Schedule::Daily.cron_expression(seed))
        };
        let (s, job) = add(&scheduler, expr.clone(), tx.clone())?;
        let mut job_id = s.add(job).await.map_err(sched_err)?;
        scheduler.start().await.map_err(sched_err)?;
        tracing::info!(schedule = %expr, "renewal scheduled");
        request(&tx);
        crate::host::notify::notify("READY=1");
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    crate::host::notify::reloading();
                    let Some(f) = &file else {
                        crate::host::notify::notify("READY=1");
                        tracing::info!("SIGHUP: no playbook file to re-read (embedded default)");
                        continue;
                    };
                    match playbook::load_file_text(f) {
                        Ok((text, pb)) => {
                            let new_expr = schedule(&pb);
                            if new_expr != expr {
                                let _ = scheduler.remove(&job_id).await;
                                let (s, job) = add(&scheduler, new_expr.clone(), tx.clone())?;
                                job_id = s.add(job).await.map_err(sched_err)?;
                                expr = new_expr;
                            }
                            let _ = tx.send(Msg::Use(Box::new(Source { text, pb })));
                            tracing::info!(schedule = %expr, "SIGHUP: playbook re-read");
                        }
                        Err(e) => tracing::error!("SIGHUP: {e}; keeping the previous playbook"),
                    }
                    crate::host::notify::notify("READY=1");
                }
            }
        }
        crate::host::notify::notify("STOPPING=1");
        // A renewal in progress stops between orders (it starts no new one
        // and writes what it obtained), within the limits of crate::limits;
        // one queued behind it never starts.
        stopping.store(true, Ordering::SeqCst);
        crate::host::procs::terminate_children();
        tracing::info!("stopping: waiting for a renewal in progress to finish");
        let _ = scheduler.shutdown().await;
        Ok(())
    });
    let _ = tx.send(Msg::Stop);
    let _ = worker.join();
    result
}
