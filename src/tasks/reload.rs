//! Reloading nginx safely: `nginx -t` first, then the reload, then waiting
//! until the master has started workers with the new configuration and
//! the old ones no longer take connections.
//!
//! A reload job finishes as soon as nginx's master got its signal; the new
//! configuration is read a moment later. Waiting for new workers makes
//! "reloaded" mean "serving the new configuration", and turns a config the
//! master rejects at reload time into an error instead of a silent no-op.
//! [`ReloadOutcome`] is how every caller (a run's handler, `portico service
//! reload`, `portico ca revoke`) says what came of it.

use crate::paths;
use std::path::Path;
use std::time::Duration;

use crate::host::systemd::ServiceOp;
use crate::host::Command;
use crate::report::TaskReport;
use crate::task::{Ctx, Handler, TaskError};

/// A reload nginx's master did not act on.
#[derive(Debug, thiserror::Error)]
#[error("nginx (master {master}) started no new workers within {secs} s of the reload; see /var/log/nginx/error.log")]
pub struct NoNewWorkers {
    /// The master's pid.
    pub master: u32,
    /// How long portico waited.
    pub secs: u64,
}

const NEW_WORKERS_TIMEOUT: Duration = Duration::from_secs(10);
const OLD_WORKERS_GRACE: Duration = Duration::from_secs(2);
/// /proc is cheap to read: a short poll is a short reload.
const POLL: Duration = Duration::from_millis(2);

/// The nginx master's pid, from nginx's own pid file.
fn master_pid(ctx: &Ctx) -> Option<u32> {
    ctx.root
        .read_to_string(Path::new(paths::NGINX_PID))
        .ok()
        .flatten()?
        .trim()
        .parse()
        .ok()
}

/// True once the master has a child started at or after `since`: a worker
/// forked for the configuration the reload signal made it read.
fn has_worker_since(ctx: &Ctx, master: u32, since: u64) -> bool {
    ctx.procs
        .children(master)
        .into_iter()
        .any(|c| ctx.procs.start_ticks(c).is_some_and(|t| t >= since))
}

/// An old worker that may still accept a connection: alive, and not yet
/// retitled `worker process is shutting down`, which nginx does as it
/// acts on its QUIT, right before it closes its listening sockets.
fn still_accepting(ctx: &Ctx, pid: u32) -> bool {
    ctx.procs
        .title(pid)
        .is_some_and(|t| t.contains("worker process") && !t.contains("shutting down"))
}

/// `nginx -t`, reload, and wait until only new workers accept connections.
/// Returns `Ok(false)` when nginx is not running (nothing to reload).
pub fn reload_nginx(ctx: &Ctx) -> Result<bool, TaskError> {
    if !ctx.systemd.state("nginx.service")?.is_active() {
        return Ok(false);
    }
    ctx.runner.run_ok(&Command::query(["nginx", "-t", "-q"]))?;
    // Only a process that is nginx's master: a stale pid file must not
    // lead to following, let alone signalling, someone else's children.
    let master = master_pid(ctx).filter(|m| {
        ctx.procs
            .title(*m)
            .is_some_and(|t| t.contains("nginx: master process"))
    });
    let before = master.map(|m| ctx.procs.children(m)).unwrap_or_default();
    let since = ctx.procs.ticks_since_boot();
    // The configuration passed `nginx -t` just now: the signal is all the
    // reload job would add (its `nginx -s reload` parses it all again).
    if let Err(e) = ctx.systemd.run(ServiceOp::Hup, "nginx.service") {
        tracing::debug!("SIGHUP through systemd failed ({e}); queueing a reload job");
        ctx.systemd.run(ServiceOp::Reload, "nginx.service")?;
    }
    tracing::debug!("nginx.service told to reload");
    let (Some(master), Some(since)) = (master, since) else {
        return Ok(true); // nothing to follow: trust the service manager
    };
    let waiting = crate::timing::step("nginx reload", "wait for new workers");
    let deadline = ctx.clock.monotonic() + NEW_WORKERS_TIMEOUT;
    while !has_worker_since(ctx, master, since) {
        if ctx.clock.monotonic() >= deadline {
            return Err(TaskError::Step(Box::new(NoNewWorkers {
                master,
                secs: NEW_WORKERS_TIMEOUT.as_secs(),
            })));
        }
        ctx.clock.sleep(POLL);
    }
    drop(waiting);
    tracing::debug!("new nginx workers are up");
    // Old workers take connections until they act on a QUIT, which the
    // master sends them only after sleeping 100 ms once it started the new
    // ones (ngx_master_process_cycle). Sent now, it is the same graceful
    // shutdown (requests in flight finish), without the sleep. Where it
    // cannot be sent (the daemon's sandbox has no CAP_KILL), the master's
    // comes in its time. Either way "reloaded" is only said once every new
    // connection gets the new configuration.
    let _t = crate::timing::step("nginx reload", "old workers stop accepting");
    let old: Vec<u32> = ctx
        .procs
        .children(master)
        .into_iter()
        // Started before the signal too: a pid is never a new worker's.
        .filter(|c| {
            before.contains(c)
                && ctx.procs.start_ticks(*c).is_some_and(|t| t < since)
                && still_accepting(ctx, *c)
        })
        .collect();
    for pid in old {
        if !ctx.procs.quit_gracefully(pid) {
            tracing::debug!("cannot send QUIT to old nginx worker {pid}; the master will");
        }
    }
    let drain = ctx.clock.monotonic() + OLD_WORKERS_GRACE;
    while ctx.clock.monotonic() < drain
        && ctx
            .procs
            .children(master)
            .iter()
            .any(|c| before.contains(c) && still_accepting(ctx, *c))
    {
        ctx.clock.sleep(POLL);
    }
    tracing::debug!("old nginx workers no longer accept connections");
    Ok(true)
}

/// systemd re-reads unit files (as `systemctl daemon-reload`: enabling does
/// it), then the daemon gets SIGHUP through its ExecReload. `Ok(false)` when
/// it is not running.
pub fn reload_portico(ctx: &Ctx) -> Result<bool, TaskError> {
    if !ctx.systemd.state("portico.service")?.is_active() {
        return Ok(false);
    }
    ctx.systemd.run(ServiceOp::Enable, "portico.service")?;
    ctx.systemd.run(ServiceOp::Reload, "portico.service")?;
    Ok(true)
}

/// What a reload came to.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Reloaded and serving the new configuration.
    Reloaded,
    /// Not running: nothing to reload (it reads the files when it starts).
    NotRunning,
    /// The reload failed.
    Failed(TaskError),
}

impl From<Result<bool, TaskError>> for ReloadOutcome {
    fn from(r: Result<bool, TaskError>) -> Self {
        match r {
            Ok(true) => ReloadOutcome::Reloaded,
            Ok(false) => ReloadOutcome::NotRunning,
            Err(e) => ReloadOutcome::Failed(e),
        }
    }
}

impl ReloadOutcome {
    /// The report's entry for a handler; `undone` says what was rolled back.
    pub fn report(self, name: String, handler: Handler, undone: &str) -> TaskReport {
        match (self, handler) {
            (ReloadOutcome::Reloaded, Handler::ReloadNginx) => {
                TaskReport::planned(name, vec!["nginx -t passed; reloaded".into()])
            }
            (ReloadOutcome::Reloaded, Handler::ReloadPortico) => TaskReport::planned(
                name,
                vec!["daemon-reload; SIGHUP to portico.service".into()],
            ),
            (ReloadOutcome::NotRunning, Handler::ReloadNginx) => {
                TaskReport::skipped_named(name, "nginx is not running; nothing to reload".into())
            }
            (ReloadOutcome::NotRunning, Handler::ReloadPortico) => {
                TaskReport::skipped_named(name, "portico.service is not running".into())
            }
            (ReloadOutcome::Failed(e), _) => {
                TaskReport::failed_named(name, Vec::new(), format!("{e}{undone}"))
            }
        }
    }

    /// One line for a command that reloaded `unit`, and its exit code.
    pub fn line(&self, unit: &str) -> (String, i32) {
        match self {
            ReloadOutcome::Reloaded => (format!("{unit}: reloaded (new workers running)"), 0),
            ReloadOutcome::NotRunning => (
                format!("{unit}: not running; nothing to reload (use `portico service start`)"),
                1,
            ),
            ReloadOutcome::Failed(e) => (format!("error: {e}"), 1),
        }
    }
}
