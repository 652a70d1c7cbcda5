//! `nginx -t` as the renewal daemon will run it, checked at apply: under
//! the daemon unit's own sandbox (`systemd-run` with the unit's
//! file-system, capability and system-call properties). A configuration
//! that opens a log outside what the sandbox may write passes a plain
//! `nginx -t` and fails the daemon's, and every renewal would then be
//! rolled back at its reload, 60 days from now; this says so today.

use crate::host::Command;
use crate::task::{Change, Ctx, Scope, Task, TaskError, TaskId};

/// The unit's `[Service]` lines that shape what a process in it can see
/// and do (not how it is started or stopped), as `systemd-run -p` takes them.
pub fn sandbox_properties(unit: &str) -> Vec<String> {
    const NOT_SANDBOX: &[&str] = &[
        "Type",
        "ExecStart",
        "ExecReload",
        "Restart",
        "RestartSec",
        "KillMode",
        "TimeoutStopSec",
        "RuntimeDirectory",
        "RuntimeDirectoryMode",
        "RuntimeDirectoryPreserve",
        "WatchdogSec",
        "NotifyAccess",
    ];
    let mut in_service = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            if !NOT_SANDBOX.contains(&key.trim()) {
                out.push(line.to_string());
            }
        }
    }
    out
}

/// The check, after the daemon's unit is in place.
pub struct DaemonSandboxCheck {
    /// The unit's text, as installed (rendered or packaged).
    pub unit: String,
    /// The unit in place and running.
    pub after: Vec<TaskId>,
}

impl Task for DaemonSandboxCheck {
    fn id(&self) -> TaskId {
        TaskId::Step("nginx -t in the renewal daemon's sandbox")
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<TaskId> {
        self.after.clone()
    }

    fn check(&self, _ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        Ok(Vec::new())
    }

    fn notes(&self, ctx: &Ctx) -> Vec<String> {
        if !ctx.live_host || !ctx.facts.systemd || !ctx.facts.nginx.installed {
            return Vec::new();
        }
        let mut argv = vec![
            "systemd-run".to_string(),
            "--pipe".into(),
            "--wait".into(),
            "--quiet".into(),
            "--collect".into(),
        ];
        for p in sandbox_properties(&self.unit) {
            argv.push("-p".into());
            argv.push(p);
        }
        argv.extend(["nginx", "-t", "-q"].map(String::from));
        match ctx.runner.run(&Command::query(argv)) {
            Ok(out) if out.success() => Vec::new(),
            Ok(out) => vec![format!(
                "the renewal daemon's nginx -t fails inside its sandbox (its unit's ProtectSystem, \
                 ReadWritePaths, capabilities), though a plain nginx -t passes: every renewal would \
                 be rolled back at its reload. Keep nginx's logs and temporary files under \
                 /var/log/nginx and /var/lib/nginx. nginx said: {}",
                out.stderr.trim()
            )],
            Err(e) => {
                tracing::debug!("cannot check nginx -t in the daemon's sandbox: {e}");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_is_the_units_own_lines_without_how_it_starts() {
        let p = sandbox_properties(crate::tasks::daemon_unit::SHIPPED);
        assert!(p.iter().any(|l| l == "ProtectSystem=strict"), "{p:?}");
        assert!(p.iter().any(|l| l.starts_with("ReadWritePaths=")), "{p:?}");
        assert!(
            p.iter().any(|l| l.starts_with("CapabilityBoundingSet=")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .filter(|l| l.starts_with("SystemCallFilter="))
                .count()
                == 2,
            "{p:?}"
        );
        assert!(
            !p.iter()
                .any(|l| l.starts_with("ExecStart") || l.starts_with("Type=")),
            "{p:?}"
        );
    }
}
