//! A systemd unit that must be running and enabled at boot.

use crate::engine::{Action, Change, Ctx, Scope, Task, TaskError};
use crate::host::systemd::ServiceOp;

pub struct ServiceTask {
    pub unit: String,
    /// False where systemd is not running: there is no boot to enable for.
    pub enable: bool,
    pub after: Vec<String>,
}

impl Task for ServiceTask {
    fn name(&self) -> String {
        format!("service {}", self.unit)
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<String> {
        self.after.clone()
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let state = ctx.systemd.state(&self.unit)?;
        let mut ops = Vec::new();
        if self.enable && !state.is_enabled() {
            ops.push(ServiceOp::Enable);
        }
        if !state.is_active() {
            ops.push(ServiceOp::Start);
        }
        Ok(ops
            .into_iter()
            .map(|op| Change {
                summary: format!("{} {}", op.name(), self.unit),
                action: Action::Service {
                    op,
                    unit: self.unit.clone(),
                },
                diff: None,
            })
            .collect())
    }
}
