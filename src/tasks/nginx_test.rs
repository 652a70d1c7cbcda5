//! The gate between writing nginx's files and running them: `nginx -t`.
//! When nginx rejects the configuration, the engine restores every file this
//! run changed, byte for byte, and the running nginx never sees it.

use crate::engine::{Change, Ctx, Scope, Task, TaskError};
use crate::host::Command;

pub struct NginxTest {
    pub after: Vec<String>,
    /// Every task that writes what nginx reads (files, links, certificates).
    pub reads: Vec<String>,
}

impl Task for NginxTest {
    fn name(&self) -> String {
        "nginx -t".into()
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<String> {
        self.after.clone()
    }

    fn rolls_back_on_failure(&self) -> bool {
        true
    }

    fn reads(&self) -> Vec<String> {
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
        Err(TaskError::Other(format!(
            "nginx rejected the configuration:\n{}",
            errors.join("\n")
        )))
    }
}
