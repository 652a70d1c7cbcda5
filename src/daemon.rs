//! `portico daemon`: renews once at start, then on a schedule (daily at a
//! minute fixed per host, or the playbook's cron expression). SIGTERM stops
//! between steps (a renewal in progress finishes first); SIGHUP re-reads the
//! playbook, keeping the old one when the new one is bad. `READY=1` goes to
//! `NOTIFY_SOCKET` when systemd asked for it.

use std::path::PathBuf;
use std::sync::mpsc;

use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::playbook::{self, Playbook};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// What the renewal worker is asked to do.
pub enum Msg {
    Renew,
    Use(Box<Playbook>),
    Stop,
}

/// The cron expression (with seconds) for `schedule`: `daily` becomes a time
/// of day drawn from `seed` (the machine ID), so a fleet does not renew in
/// the same minute but each host always picks the same one.
pub fn cron_expression(schedule: &str, seed: &str) -> String {
    if schedule != "daily" {
        return schedule.to_string();
    }
    // FNV-1a: small, stable across builds and platforms.
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("0 {} {} * * *", h % 60, (h / 60) % 24)
}

/// Is `expr` a cron expression the scheduler accepts?
pub fn valid_cron(expr: &str) -> Result<(), String> {
    Job::new(expr, |_, _| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Sends `READY=1` (or any state) to systemd when it gave a socket.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("NOTIFY_SOCKET: {e}");
            return;
        }
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), PathBuf::from(&path))
    };
    if let Err(e) = sent {
        tracing::warn!("NOTIFY_SOCKET: {e}");
    }
}

/// Runs until SIGTERM/SIGINT. `renew` does one renewal with the playbook it
/// is given; it runs on a worker thread, never two at once.
pub fn run<F>(
    file: Option<PathBuf>,
    first: Playbook,
    seed: &str,
    mut renew: F,
) -> Result<(), DaemonError>
where
    F: FnMut(&Playbook) + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Msg>();
    let worker = std::thread::spawn(move || {
        let mut pb = first;
        for msg in rx {
            match msg {
                Msg::Renew => renew(&pb),
                Msg::Use(new) => pb = *new,
                Msg::Stop => break,
            }
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
        let schedule = |pb: &Playbook| cron_expression(&pb.renewal.schedule, seed);
        let add = |scheduler: &JobScheduler, expr: String, tx: mpsc::Sender<Msg>| {
            let job = Job::new(expr.as_str(), move |_, _| {
                let _ = tx.send(Msg::Renew);
            })
            .map_err(sched_err)?;
            Ok::<_, DaemonError>((scheduler.clone(), job))
        };
        let mut expr = {
            // The worker owns the playbook; the schedule is read once here.
            let pb = match &file {
                Some(f) => playbook::load_file(f).ok(),
                None => None,
            };
            pb.map(|p| schedule(&p))
                .unwrap_or_else(|| cron_expression("daily", seed))
        };
        let (s, job) = add(&scheduler, expr.clone(), tx.clone())?;
        let mut job_id = s.add(job).await.map_err(sched_err)?;
        scheduler.start().await.map_err(sched_err)?;
        tracing::info!(schedule = %expr, "renewal scheduled");
        let _ = tx.send(Msg::Renew);
        notify("READY=1");
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    let Some(f) = &file else {
                        tracing::info!("SIGHUP: no playbook file to re-read (embedded default)");
                        continue;
                    };
                    match playbook::load_file(f) {
                        Ok(pb) => {
                            let new_expr = schedule(&pb);
                            if new_expr != expr {
                                let _ = scheduler.remove(&job_id).await;
                                let (s, job) = add(&scheduler, new_expr.clone(), tx.clone())?;
                                job_id = s.add(job).await.map_err(sched_err)?;
                                expr = new_expr;
                            }
                            let _ = tx.send(Msg::Use(Box::new(pb)));
                            tracing::info!(schedule = %expr, "SIGHUP: playbook re-read");
                        }
                        Err(e) => tracing::error!("SIGHUP: {e}; keeping the previous playbook"),
                    }
                }
            }
        }
        notify("STOPPING=1");
        tracing::info!("stopping: waiting for a renewal in progress to finish");
        let _ = scheduler.shutdown().await;
        Ok(())
    });
    let _ = tx.send(Msg::Stop);
    let _ = worker.join();
    result
}
