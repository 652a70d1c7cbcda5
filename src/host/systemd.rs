//! The systemd seam. portico drives services through this trait only:
//! [`super::dbus::DbusSystemd`] where systemd runs, [`DirectNginx`] where it
//! does not (containers, chroots), with a warning.

use serde::Serialize;
use thiserror::Error;

use super::cmd::{CmdError, Command, Runner};

/// Why a service could not be driven or asked about.
#[derive(Debug, Error)]
pub enum SystemdError {
    /// A command driving it directly (no systemd) could not run or failed.
    #[error("{unit}: {op}: {source}")]
    Command {
        /// The unit.
        unit: String,
        /// What was asked (`reload`, `status`, ...).
        op: &'static str,
        /// What the command did.
        source: CmdError,
    },
    /// systemd could not be reached or refused the call.
    #[error("{unit}: {op}: D-Bus: {message}")]
    Bus {
        /// The unit; empty when connecting.
        unit: String,
        /// What was asked (`reload`, `connect`, ...).
        op: &'static str,
        /// The D-Bus error.
        message: String,
    },
    /// The job ran but did not end in "done", or no result came in time.
    #[error("{unit}: {op} job finished with result {result:?} (see `journalctl -u {unit}`)")]
    Job {
        /// The unit.
        unit: String,
        /// What was asked (`start`, `reload`, ...).
        op: &'static str,
        /// systemd's job result (`failed`, `timeout`, ...) or why there is none.
        result: String,
    },
    /// Without systemd: a unit other than nginx, or enabling at boot.
    #[error("{unit}: {op} is not possible without systemd ({why})")]
    Unsupported {
        /// The unit.
        unit: String,
        /// What was asked.
        op: &'static str,
        /// Why it cannot be done.
        why: &'static str,
    },
}

/// What portico asks of a service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceOp {
    /// Start it now.
    Start,
    /// Stop it now.
    Stop,
    /// Have it re-read its configuration without stopping.
    Reload,
    /// Stop it, then start it again.
    Restart,
    /// SIGHUP to its main process, through the service manager: what the
    /// reload job of nginx.service runs (`nginx -s reload`), without
    /// starting an nginx that parses the whole configuration again just
    /// to send the signal. For a configuration `nginx -t` has passed.
    Hup,
    /// Start it at boot.
    Enable,
    /// No longer start it at boot.
    Disable,
}

impl ServiceOp {
    /// As `systemctl` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ServiceOp::Start => "start",
            ServiceOp::Stop => "stop",
            ServiceOp::Reload => "reload",
            ServiceOp::Restart => "restart",
            ServiceOp::Hup => "kill -HUP",
            ServiceOp::Enable => "enable",
            ServiceOp::Disable => "disable",
        }
    }
}

/// A unit's `ActiveState` and `UnitFileState`, as systemd names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    /// active, reloading, inactive, failed, activating, deactivating
    pub active: String,
    /// enabled, disabled, static, masked, ... ("" when unknown)
    pub file: String,
}

impl UnitState {
    /// Running, or on its way there (active, reloading, activating)?
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "reloading" | "activating")
    }

    /// Enabled, or with nothing to enable (static, alias)?
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.file.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias"
        )
    }
}

/// A service manager: runs service operations and reports a unit's state.
pub trait Systemd {
    /// Runs `op` on `unit` and waits until systemd reports it finished.
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError>;
    /// The unit's state now.
    fn state(&self, unit: &str) -> Result<UnitState, SystemdError>;
}

/// No systemd on this host: nginx is driven directly (`nginx`, `nginx -s
/// reload`, `nginx -s quit`); enabling at boot is not possible.
pub struct DirectNginx {
    /// Runs `nginx` and `pgrep`.
    pub runner: Box<dyn Runner>,
}

impl Systemd for DirectNginx {
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError> {
        if unit != "nginx.service" && unit != "nginx" {
            return Err(SystemdError::Unsupported {
                unit: unit.into(),
                op: op.name(),
                why: "only nginx can be driven directly",
            });
        }
        tracing::warn!("systemd is not running: driving nginx directly");
        let argvs: &[&[&str]] = match op {
            ServiceOp::Start => &[&["nginx"]],
            ServiceOp::Stop => &[&["nginx", "-s", "quit"]],
            ServiceOp::Reload | ServiceOp::Hup => &[&["nginx", "-s", "reload"]],
            ServiceOp::Restart => &[&["nginx", "-s", "quit"], &["nginx"]],
            ServiceOp::Enable | ServiceOp::Disable => {
                return Err(SystemdError::Unsupported {
                    unit: unit.into(),
                    op: op.name(),
                    why: "starting at boot needs an init system",
                })
            }
        };
        for argv in argvs {
            self.runner
                .run_ok(&Command::mutation(argv.iter().copied()))
                .map_err(|source| SystemdError::Command {
                    unit: unit.into(),
                    op: op.name(),
                    source,
                })?;
        }
        Ok(())
    }

    fn state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let out = self
            .runner
            .run(&Command::query(["pgrep", "-x", "nginx"]))
            .map_err(|source| SystemdError::Command {
                unit: unit.into(),
                op: "status",
                source,
            })?;
        Ok(UnitState {
            active: if out.success() { "active" } else { "inactive" }.into(),
            file: String::new(),
        })
    }
}
