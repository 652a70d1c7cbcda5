//! Restarting a running renewal daemon whose sandbox must now include a
//! directory it did not when it started. systemd fixes a unit's mounts at
//! start: a `ReadWritePaths=-DIR` missing then is left out, and DIR created
//! later stays read-only inside (node_exporter installed after portico,
//! say). A reload (SIGHUP) re-reads the playbook, never the mounts.

use crate::host::systemd::ServiceOp;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

/// The daemon's unit.
const UNIT: &str = "portico.service";

/// Restarts portico.service if it runs and `dir` exists; a stopped one
/// gets its sandbox whole when it starts.
pub struct DaemonRestartTask {
    /// The directory the daemon must be able to write.
    pub dir: std::path::PathBuf,
    /// Why, for the report.
    pub why: String,
}

impl Task for DaemonRestartTask {
    fn id(&self) -> TaskId {
        TaskId::Step("renewal daemon's sandbox")
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        // No directory yet: nothing a restart would add.
        if !ctx.root.meta(&self.dir)?.is_some_and(|m| m.is_dir) {
            return Ok(Vec::new());
        }
        if !ctx.systemd.state(UNIT)?.is_active() {
            return Ok(Vec::new());
        }
        Ok(vec![Change::new(
            format!("restart {UNIT}: {}", self.why),
            Action::Service {
                op: ServiceOp::Restart,
                unit: UNIT.into(),
            },
        )])
    }
}
