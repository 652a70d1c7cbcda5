//! A systemd unit that must be running and enabled at boot.

use crate::host::systemd::ServiceOp;
use crate::owned::{Owned, Thing};
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

/// A unit that must run, and start at boot.
pub struct ServiceTask {
    /// The unit.
    pub unit: String,
    /// False where systemd is not running: there is no boot to enable for.
    pub enable: bool,
    /// The playbook object it belongs to when it is portico's own unit
    /// (the renewal daemon); `None` for a unit portico only starts (nginx).
    pub owner: Option<String>,
}

impl Task for ServiceTask {
    fn id(&self) -> TaskId {
        TaskId::Service(self.unit.clone())
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn owns(&self) -> Vec<Owned> {
        self.owner
            .iter()
            .map(|o| {
                Owned::thing(
                    Thing::Unit {
                        unit: self.unit.clone(),
                    },
                    o,
                )
            })
            .collect()
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
            .map(|op| {
                Change::new(
                    format!("{} {}", op.name(), self.unit),
                    Action::Service {
                        op,
                        unit: self.unit.clone(),
                    },
                )
            })
            .collect())
    }
}
