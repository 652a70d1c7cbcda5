//! `portico service`: drive a unit through systemd's D-Bus API (nginx
//! directly where systemd is not running); `nginx -t` before nginx reloads
//! or restarts.

use clap::Args;

use super::{CliError, Session};
use crate::host::systemd::{ServiceOp, SystemdError};
use crate::host::Command;
use crate::tasks::reload::{reload_nginx, ReloadOutcome};

/// What to do with the unit.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceAction {
    /// Start it.
    Start,
    /// Stop it.
    Stop,
    /// Reload it (nginx: `nginx -t` first, then wait for the new workers).
    Reload,
    /// Restart it (nginx: `nginx -t` first).
    Restart,
    /// Start it at boot.
    Enable,
    /// Do not start it at boot.
    Disable,
    /// Show whether it runs and starts at boot.
    Status,
}

/// `portico service`'s arguments.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// What to do.
    pub action: ServiceAction,
    /// The unit (default nginx.service; ".service" is added when missing).
    #[arg(default_value = "nginx.service")]
    pub unit: String,
    /// Print the status as JSON ({unit, active, file}).
    #[arg(long)]
    pub json: bool,
}

/// Runs the operation; status prints the unit's state.
pub(super) fn run(a: ServiceArgs) -> Result<i32, CliError> {
    let unit = if a.unit.contains('.') {
        a.unit.clone()
    } else {
        format!("{}.service", a.unit)
    };
    let session = Session::open("/".into(), false)?;
    let ctx = session.ctx();
    let op = match a.action {
        ServiceAction::Status => {
            let state = ctx.systemd.state(&unit)?;
            if a.json {
                let v =
                    serde_json::json!({"unit": unit, "active": state.active, "file": state.file});
                outln!("{v}");
            } else {
                outln!(
                    "{unit}: {} ({})",
                    state.active,
                    if state.file.is_empty() {
                        "unknown"
                    } else {
                        &state.file
                    }
                );
            }
            return Ok(0);
        }
        ServiceAction::Start => ServiceOp::Start,
        ServiceAction::Stop => ServiceOp::Stop,
        ServiceAction::Reload => ServiceOp::Reload,
        ServiceAction::Restart => ServiceOp::Restart,
        ServiceAction::Enable => ServiceOp::Enable,
        ServiceAction::Disable => ServiceOp::Disable,
    };
    if !ctx.is_root {
        return Err(CliError::ServiceNeedsRoot(op.name()));
    }
    if unit == "nginx.service" && matches!(op, ServiceOp::Reload | ServiceOp::Restart) {
        // A config nginx rejects is never loaded: the running nginx keeps serving.
        let test = ctx
            .runner
            .run(&Command::query(["nginx", "-t"]))
            .map_err(|e| SystemdError::Command {
                unit: unit.clone(),
                op: op.name(),
                source: e,
            })?;
        if !test.success() {
            eprintln!(
                "nginx -t failed; not running {}:\n{}",
                op.name(),
                test.stderr.trim_end()
            );
            return Ok(1);
        }
        if op == ServiceOp::Reload {
            let (line, code) = ReloadOutcome::from(reload_nginx(&ctx)).line(&unit);
            if code == 0 {
                outln!("{line}");
            } else {
                eprintln!("{line}");
            }
            return Ok(code);
        }
    }
    match ctx.systemd.run(op, &unit) {
        Ok(()) => {
            outln!("{unit}: {} done", op.name());
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
