//! Reloading nginx safely: `nginx -t` first, then the reload, then waiting
//! until the master has started workers with the new configuration.
//!
//! A reload job finishes as soon as nginx's master got its signal; the new
//! configuration is read a moment later. Waiting for new workers makes
//! "reloaded" mean "serving the new configuration", and turns a config the
//! master rejects at reload time into an error instead of a silent no-op.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::engine::{Ctx, TaskError};
use crate::host::systemd::ServiceOp;
use crate::host::Command;

const PID_FILE: &str = "/run/nginx.pid";
const NEW_WORKERS_TIMEOUT: Duration = Duration::from_secs(10);
const OLD_WORKERS_GRACE: Duration = Duration::from_secs(2);

/// The nginx master's pid, from nginx's own pid file.
fn master_pid(ctx: &Ctx) -> Option<u32> {
    ctx.root
        .read_to_string(Path::new(PID_FILE))
        .ok()
        .flatten()?
        .trim()
        .parse()
        .ok()
}

/// The master's child processes (its workers and cache helpers).
pub fn children(pid: u32) -> BTreeSet<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Clock ticks since boot, the unit of a process's start time in /proc.
fn ticks_since_boot() -> Option<u64> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((uptime * hz as f64) as u64)
}

/// Field 22 of /proc/PID/stat: when the process started, in ticks since boot.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True once the master has a child started at or after `since`: a worker
/// forked for the configuration the reload signal made it read.
fn has_worker_since(master: u32, since: u64) -> bool {
    children(master)
        .into_iter()
        .any(|c| start_ticks(c).is_some_and(|t| t >= since))
}

/// `nginx -t`, reload, and wait for the new workers. Returns `Ok(false)` when
/// nginx is not running (nothing to reload).
pub fn reload_nginx(ctx: &Ctx) -> Result<bool, TaskError> {
    if !ctx.systemd.state("nginx.service")?.is_active() {
        return Ok(false);
    }
    ctx.runner.run_ok(&Command::query(["nginx", "-t", "-q"]))?;
    let master = master_pid(ctx);
    let before = master.map(children).unwrap_or_default();
    let since = ticks_since_boot();
    ctx.systemd.run(ServiceOp::Reload, "nginx.service")?;
    tracing::debug!("nginx.service reload job done");
    let (Some(master), Some(since)) = (master, since) else {
        return Ok(true); // nothing to follow: trust the service manager
    };
    let deadline = Instant::now() + NEW_WORKERS_TIMEOUT;
    while !has_worker_since(master, since) {
        if Instant::now() >= deadline {
            return Err(TaskError::Other(format!(
                "nginx (master {master}) started no new workers within {} s of the reload; \
                 see /var/log/nginx/error.log",
                NEW_WORKERS_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::debug!("new nginx workers are up");
    // Old workers may accept a last connection until they act on their QUIT;
    // give idle ones a moment to leave. Busy ones drain in the background.
    let drain = Instant::now() + OLD_WORKERS_GRACE;
    while Instant::now() < drain && children(master).iter().any(|c| before.contains(c)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::debug!("old nginx workers are gone");
    Ok(true)
}
