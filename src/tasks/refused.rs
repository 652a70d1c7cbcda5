//! A step the playbook asks for that this build cannot do safely. It fails
//! with the reason, so everything that depends on it is skipped instead of
//! being done half-way (a site meant to be protected is never served open).

use crate::engine::{Change, Ctx, Scope, Task, TaskError};

pub struct RefusedTask {
    pub name: String,
    pub reason: String,
}

impl Task for RefusedTask {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn check(&self, _ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        Err(TaskError::Other(self.reason.clone()))
    }
}
