//! A step the playbook asks for that this build cannot do safely. It fails
//! with the reason, so everything that depends on it is skipped instead of
//! being done half-way (a site meant to be protected is never served open).

use crate::task::{Change, Ctx, Scope, Task, TaskError, TaskId};

/// A step refused at planning, failing with why and what to do.
pub struct RefusedTask {
    /// What it stands for in the report (`firewall`).
    pub name: &'static str,
    /// Why, and what to do.
    pub reason: &'static str,
}

impl Task for RefusedTask {
    fn id(&self) -> TaskId {
        TaskId::Step(self.name)
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn check(&self, _ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        Err(TaskError::Refused(self.reason))
    }
}
