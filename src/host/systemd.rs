//! The systemd seam. portico drives services through this trait only; the
//! implementation here drives nginx directly for hosts where systemd is not
//! PID 1 (containers, chroots), with a warning.

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
    #[error("{unit}: {op} is not possible without systemd ({why})")]
    Unsupported {
        unit: String,
        op: &'static str,
        why: &'static str,
    },
}

/// What portico asks of a service manager.
pub trait Systemd {
    /// Reloads a unit's configuration (nginx: new workers, same master).
    fn reload(&self, unit: &str) -> Result<(), SystemdError>;
    /// True when the unit is running.
    fn is_active(&self, unit: &str) -> Result<bool, SystemdError>;
}

/// No systemd on this host: nginx is signalled directly (`nginx -s reload`).
pub struct DirectNginx<'a> {
    pub runner: &'a dyn Runner,
}

impl DirectNginx<'_> {
    fn only_nginx(&self, unit: &str, op: &'static str) -> Result<(), SystemdError> {
        if unit == "nginx.service" || unit == "nginx" {
            Ok(())
        } else {
            Err(SystemdError::Unsupported {
                unit: unit.into(),
                op,
                why: "only nginx can be driven directly",
            })
        }
    }
}

impl Systemd for DirectNginx<'_> {
    fn reload(&self, unit: &str) -> Result<(), SystemdError> {
        self.only_nginx(unit, "reload")?;
        tracing::warn!("systemd is not running: signalling nginx directly");
        self.runner
            .run_ok(&Command::mutation(["nginx", "-s", "reload"]))
            .map(|_| ())
            .map_err(|source| SystemdError::Command {
                unit: unit.into(),
                op: "reload",
                source,
            })
    }

    fn is_active(&self, unit: &str) -> Result<bool, SystemdError> {
        self.only_nginx(unit, "is-active")?;
        // `nginx -s` needs the pid file of a running master; probing it with
        // signal 0 would need the pid, so ask pgrep instead.
        let out = self
            .runner
            .run(&Command::query(["pgrep", "-x", "nginx"]))
            .map_err(|source| SystemdError::Command {
                unit: unit.into(),
                op: "is-active",
                source,
            })?;
        Ok(out.success())
    }
}
