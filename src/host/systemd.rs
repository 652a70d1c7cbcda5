//! The systemd seam. portico drives services through this trait only:
//! [`super::dbus::DbusSystemd`] where systemd runs, [`DirectNginx`] where it
//! does not (containers, chroots), with a warning.

use serde::Serialize;
use thiserror::Error;

use super::cmd::{CmdError, Command, Runner};

#[derive(Debug, Error)]
pub enum SystemdError {
    #[error("{unit}: {op}: {source}")]
    Command {
        unit: String,
        op: &'static str,
        source: CmdError,
    },
    #[error("{unit}: {op}: D-Bus: {message}")]
    Bus {
        unit: String,
        op: &'static str,
        message: String,
    },
    #[error("{unit}: {op} job finished with result {result:?} (see `journalctl -u {unit}`)")]
    Job {
        unit: String,
        op: &'static str,
        result: String,
    },
    #[error("{unit}: {op} is not possible without systemd ({why})")]
    Unsupported {
        unit: String,
        op: &'static str,
        why: &'static str,
    },
}

/// What portico asks of a service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceOp {
    Start,
    Stop,
    Reload,
    Restart,
    Enable,
    Disable,
}

impl ServiceOp {
    pub fn name(self) -> &'static str {
        match self {
            ServiceOp::Start => "start",
            ServiceOp::Stop => "stop",
            ServiceOp::Reload => "reload",
            ServiceOp::Restart => "restart",
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
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "reloading" | "activating")
    }

    pub fn is_enabled(&self) -> bool {
        matches!(
            self.file.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias"
        )
    }
}

pub trait Systemd {
    /// Runs `op` on `unit` and waits until systemd reports it finished.
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError>;
    fn state(&self, unit: &str) -> Result<UnitState, SystemdError>;
}

/// No systemd on this host: nginx is driven directly (`nginx`, `nginx -s
/// reload`, `nginx -s quit`); enabling at boot is not possible.
pub struct DirectNginx<'a> {
    pub runner: &'a dyn Runner,
}

impl Systemd for DirectNginx<'_> {
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
            ServiceOp::Reload => &[&["nginx", "-s", "reload"]],
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
