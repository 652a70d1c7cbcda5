//! The gate between writing nginx's files and running them: `nginx -t`.
//! When nginx rejects the configuration, the engine restores every file this
//! run changed, byte for byte, and the running nginx never sees it.

use crate::host::Command;
use crate::task::{Change, Ctx, Scope, Task, TaskError, TaskId};

/// `nginx -t`; rolls the run's files back when it fails.
pub struct NginxTest {
    /// Every task that writes what nginx reads (files, links, certificates).
    pub reads: Vec<TaskId>,
}

impl Task for NginxTest {
    fn id(&self) -> TaskId {
        TaskId::NginxTest
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn rolls_back_on_failure(&self) -> bool {
        true
    }

    fn reads(&self) -> Vec<TaskId> {
        self.reads.clone()
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let out = ctx.runner.run(&Command::query(["nginx", "-t"]))?;
        if out.success() {
            return Ok(Vec::new());
        }
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.contains("test failed") && !l.trim().is_empty())
            .collect();
        Err(TaskError::NginxRejected(errors.join("\n")))
    }
}
