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

/// A playbook's text (what a renewal is given) and the little the daemon
/// itself reads from it. The parsed playbook is not kept: at 10,000 sites
/// it is ten times the text, and the daemon would hold it between runs.
#[derive(Debug, Clone)]
pub struct Source {
    /// The text.
    pub text: String,
    /// `[renewal] schedule`.
    pub schedule: playbook::Schedule,
    /// `[acme]`: whose account certificates may wait for.
    pub acme: Option<playbook::model::Acme>,
}

impl Source {
    /// What the daemon keeps of `pb`, parsed from `text`.
    pub fn new(text: String, pb: Playbook) -> Source {
        Source {
            text,
            schedule: pb.renewal.schedule,
            acme: pb.acme,
        }
    }
}

/// What one renewal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The line `STATUS=` shows.
    pub line: String,
    /// Renew again at this time (Unix seconds), before the schedule's next
    /// run: certificates wait for their account's next order.
    pub wake_at: Option<i64>,
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
fn status_line(schedule: &playbook::Schedule, seed: &str, last: &str) -> String {
    use crate::host::Clock;
    let now = crate::host::clock::SystemClock::default().unix_now();
    let next = schedule
        .next_after(seed, now)
        .map_or("unknown".to_string(), crate::when::rfc3339);
    // One line: a newline would end the STATUS= field and start another.
    let last = last.replace(['\n', '\r'], " ");
    format!("STATUS={last}; next renewal run {next}")
}

/// What the daemon renews with.
pub trait Renewer {
    /// One renewal with `source`: what it came to.
    fn renew(&mut self, source: &Source) -> Outcome;
    /// When certificates of `source` may wait for their ACME account (its
    /// hour's orders are sent, or the CA holds it: an apply queued them),
    /// read without renewing; `None` when nothing can be waiting.
    fn account_free_at(&mut self, source: &Source) -> Option<i64>;
}

/// Runs until SIGTERM/SIGINT. `renew` does one renewal with the playbook it
/// is given and returns a line saying what it came to; it runs on a worker
/// thread, never two at once.
pub fn run<R>(file: Option<PathBuf>, first: Source, seed: &str, renew: R) -> Result<(), DaemonError>
where
    R: Renewer + Send + 'static,
{
    let (queue, rx) = Queue::new();
    let expr = first.schedule.cron_expression(seed);
    let worker = Worker {
        identity: file.as_deref().and_then(crate::host::file_identity),
        file: file.clone(),
        current: first,
        seed: seed.to_string(),
        last: "no renewal run yet".to_string(),
        queue: queue.clone(),
    };
    let worker = std::thread::spawn(move || worker.serve(rx, renew));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Signals)?;
    let result = rt.block_on(serve(file.as_deref(), expr, seed, &queue));
    let _ = queue.tx.send(Msg::Stop);
    let _ = worker.join();
    result
}

/// The way to the worker.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Msg>,
    /// A renewal is queued: at most one waits behind the one running, so a
    /// schedule firing more often than renewals finish does not pile them
    /// up (nor a stop behind them).
    pending: Arc<AtomicBool>,
    /// The daemon stops: a renewal queued behind the running one is not
    /// started.
    stopping: Arc<AtomicBool>,
    /// Counts the wishes to renew at a given time: a sleeper that finds
    /// a later wish made since does nothing.
    wakes: Arc<std::sync::atomic::AtomicU64>,
}

impl Queue {
    /// A way to a worker, and the worker's end of it.
    fn new() -> (Queue, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel::<Msg>();
        let queue = Queue {
            tx,
            pending: Arc::new(AtomicBool::new(false)),
            stopping: Arc::new(AtomicBool::new(false)),
            wakes: Arc::default(),
        };
        (queue, rx)
    }

    /// Asks for a renewal, unless one is already waiting.
    fn request(&self) {
        if !self.pending.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(Msg::Renew);
        }
    }
}

/// The renewal worker: the playbook in use and the last outcome.
struct Worker {
    current: Source,
    /// The playbook file, if one was given.
    file: Option<PathBuf>,
    /// The file as it was when read: before each run it is read again if
    /// it changed (an apply installs the playbook it applied; the daemon
    /// then renews what that playbook has, SIGHUP or not).
    identity: Option<(u64, u64, i64, u64)>,
    seed: String,
    last: String,
    queue: Queue,
}

impl Worker {
    fn serve<R: Renewer>(mut self, rx: mpsc::Receiver<Msg>, mut renew: R) {
        for msg in rx {
            match msg {
                Msg::Renew if self.queue.stopping.load(Ordering::SeqCst) => {}
                Msg::Renew => self.renew(&mut renew),
                Msg::Use(new) => {
                    self.current = *new;
                    // An apply that queued certificates behind the account's
                    // limit sends SIGHUP: renew when the account frees.
                    if let Some(at) = renew.account_free_at(&self.current) {
                        use crate::host::Clock;
                        self.wake_at(at, crate::host::clock::SystemClock::default().unix_now());
                    }
                }
                Msg::Stop => break,
            }
            // What a playbook's parse or a report's took is free again.
            crate::host::give_back_freed_memory();
            self.notify(&self.last);
        }
    }

    fn renew<R: Renewer>(&mut self, renew: &mut R) {
        use crate::host::Clock;
        self.queue.pending.store(false, Ordering::SeqCst);
        self.reread_if_changed();
        self.notify("renewing");
        let outcome = renew.renew(&self.current);
        let now = crate::host::clock::SystemClock::default().unix_now();
        self.last = format!("last run {}: {}", crate::when::rfc3339(now), outcome.line);
        if let Some(at) = outcome.wake_at {
            self.wake_at(at, now);
        }
    }

    /// Asks for a renewal at `at` (certificates wait for their account's
    /// next order), between the schedule's runs. Only the latest such
    /// wish stands; a stop cancels it.
    fn wake_at(&self, at: i64, now: i64) {
        let wait = std::time::Duration::from_secs((at - now).clamp(1, 86_400) as u64);
        tracing::info!(
            "certificates wait for the ACME account: renewing again at {}",
            crate::when::rfc3339(now + wait.as_secs() as i64)
        );
        let generation = self.queue.wakes.fetch_add(1, Ordering::SeqCst) + 1;
        let queue = self.queue.clone();
        std::thread::spawn(move || {
            std::thread::sleep(wait);
            if queue.wakes.load(Ordering::SeqCst) == generation
                && !queue.stopping.load(Ordering::SeqCst)
            {
                queue.request();
            }
        });
    }

    /// The playbook file again, when it changed since it was read (a bad
    /// one is reported and the one read before kept).
    fn reread_if_changed(&mut self) {
        let Some(f) = &self.file else {
            return;
        };
        let now_id = crate::host::file_identity(f);
        if now_id == self.identity {
            return;
        }
        match playbook::load_file_text(f) {
            Ok((text, pb)) => {
                tracing::info!("{} changed on disk: re-read", f.display());
                self.current = Source::new(text, pb);
                self.identity = now_id;
            }
            Err(e) => tracing::error!("{e}; renewing with the playbook read before"),
        }
    }

    fn notify(&self, last: &str) {
        crate::host::notify::notify(&status_line(&self.current.schedule, &self.seed, last));
    }
}

/// The scheduler's one job, re-made when the playbook's schedule changes.
struct Schedule<'a> {
    scheduler: JobScheduler,
    job: uuid::Uuid,
    expr: String,
    seed: &'a str,
    queue: &'a Queue,
}

fn sched_err(e: tokio_cron_scheduler::JobSchedulerError) -> DaemonError {
    DaemonError::Scheduler(e.to_string())
}

impl<'a> Schedule<'a> {
    /// Starts the scheduler with the cron expression of the playbook the
    /// daemon started with.
    async fn start(expr: String, seed: &'a str, queue: &'a Queue) -> Result<Self, DaemonError> {
        let scheduler = JobScheduler::new().await.map_err(sched_err)?;
        let job = Self::add(&scheduler, &expr, queue).await?;
        scheduler.start().await.map_err(sched_err)?;
        tracing::info!(schedule = %expr, "renewal scheduled");
        Ok(Schedule {
            scheduler,
            job,
            expr,
            seed,
            queue,
        })
    }

    async fn add(
        scheduler: &JobScheduler,
        expr: &str,
        queue: &Queue,
    ) -> Result<uuid::Uuid, DaemonError> {
        let queue = queue.clone();
        let job = Job::new(expr, move |_, _| queue.request()).map_err(sched_err)?;
        scheduler.add(job).await.map_err(sched_err)
    }

    /// SIGHUP: the playbook file read again; a new schedule replaces the
    /// job, and the worker uses the new playbook from its next run.
    async fn reload(&mut self, file: Option<&std::path::Path>) -> Result<(), DaemonError> {
        let Some(f) = file else {
            tracing::info!("SIGHUP: no playbook file to re-read (embedded default)");
            return Ok(());
        };
        let (text, pb) = match playbook::load_file_text(f) {
            Ok(read) => read,
            Err(e) => {
                tracing::error!("SIGHUP: {e}; keeping the previous playbook");
                return Ok(());
            }
        };
        let expr = pb.renewal.schedule.cron_expression(self.seed);
        if expr != self.expr {
            let _ = self.scheduler.remove(&self.job).await;
            self.job = Self::add(&self.scheduler, &expr, self.queue).await?;
            self.expr = expr;
        }
        let _ = self
            .queue
            .tx
            .send(Msg::Use(Box::new(Source::new(text, pb))));
        tracing::info!(schedule = %self.expr, "SIGHUP: playbook re-read");
        Ok(())
    }
}

/// Renews at once, then on schedule, until SIGTERM or SIGINT.
async fn serve(
    file: Option<&std::path::Path>,
    expr: String,
    seed: &str,
    queue: &Queue,
) -> Result<(), DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut schedule = Schedule::start(expr, seed, queue).await?;
    queue.request();
    crate::host::notify::notify("READY=1");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                crate::host::notify::reloading();
                schedule.reload(file).await?;
                crate::host::notify::notify("READY=1");
            }
        }
    }
    crate::host::notify::notify("STOPPING=1");
    // A renewal in progress stops between orders (it starts no new one
    // and writes what it obtained), within the limits of crate::limits;
    // one queued behind it never starts.
    queue.stopping.store(true, Ordering::SeqCst);
    crate::host::procs::terminate_children();
    tracing::info!("stopping: waiting for a renewal in progress to finish");
    let _ = schedule.scheduler.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose renewals say `wake_at`, with the way to it.
    fn worker(wake_at: Option<i64>) -> (Worker, mpsc::Receiver<Msg>, Fake) {
        let (queue, rx) = Queue::new();
        let pb = playbook::parse("t", "version = 1\n").unwrap();
        let w = Worker {
            current: Source::new(String::new(), pb),
            file: None,
            identity: None,
            seed: "seed".into(),
            last: String::new(),
            queue,
        };
        (w, rx, Fake { wake_at, runs: 0 })
    }

    struct Fake {
        wake_at: Option<i64>,
        runs: usize,
    }

    impl Renewer for Fake {
        fn renew(&mut self, _: &Source) -> Outcome {
            self.runs += 1;
            Outcome {
                line: "ok".into(),
                wake_at: self.wake_at,
            }
        }
        fn account_free_at(&mut self, _: &Source) -> Option<i64> {
            self.wake_at
        }
    }

    fn now() -> i64 {
        use crate::host::Clock;
        crate::host::clock::SystemClock::default().unix_now()
    }

    #[test]
    fn certificates_waiting_for_the_account_bring_a_renewal_when_it_frees() {
        let (mut w, rx, mut fake) = worker(Some(now() + 1));
        w.renew(&mut fake);
        assert_eq!(fake.runs, 1);
        let msg = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(msg, Ok(Msg::Renew)), "no renewal was asked for");
        // Nothing waiting: no wake.
        let (mut w, rx, mut fake) = worker(None);
        w.renew(&mut fake);
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(1500))
            .is_err());
    }

    #[test]
    fn only_the_latest_wake_stands_and_a_stop_cancels_it() {
        let (w, rx, _) = worker(None);
        w.wake_at(now() + 1, now());
        w.wake_at(now() + 2, now());
        let first = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(first, Ok(Msg::Renew)));
        w.queue.pending.store(false, Ordering::SeqCst);
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(1500))
                .is_err(),
            "the earlier wish fired too"
        );
        w.wake_at(now() + 1, now());
        w.queue.stopping.store(true, Ordering::SeqCst);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(2)).is_err());
    }
}
