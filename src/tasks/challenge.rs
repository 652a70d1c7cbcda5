//! Before asking an ACME server to validate: nginx must answer challenges
//! for every name on port 80. On a fresh VM it is still serving the distro's
//! default site (or not running at all): load the port-80 servers now.

use crate::host::systemd::ServiceOp;
use crate::host::Command;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

/// nginx answers ACME challenges for every name (reloaded or started if not).
pub struct ChallengeServed {
    /// The names the CA will look at.
    pub names: Vec<String>,
    /// nginx installed, its port-80 servers written.
    pub after: Vec<TaskId>,
}

impl Task for ChallengeServed {
    fn id(&self) -> TaskId {
        TaskId::ChallengeServed
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<TaskId> {
        self.after.clone()
    }

    fn rolls_back_on_failure(&self) -> bool {
        true // its nginx -t is the first gate of the run
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let missing: Vec<&String> = self
            .names
            .iter()
            .filter(|n| !crate::acme::probe::challenge_served(ctx.probe, n))
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let names = missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        // A running nginx is reloaded the way the end-of-run handler does it
        // (nginx -t first, then wait until only new workers answer: old ones
        // would give the CA the previous site's 404). A stopped one is tested
        // and started.
        if ctx.systemd.state("nginx.service")?.is_active() {
            return Ok(vec![Change {
                summary: format!("reload nginx so port 80 answers ACME challenges for {names}"),
                action: Action::ReloadNginx,
                diff: None,
                claims: Vec::new(),
            }]);
        }
        Ok(vec![
            Change {
                summary: "nginx -t before loading the port-80 servers".into(),
                action: Action::Run(Command::query(["nginx", "-t", "-q"])),
                diff: None,
                claims: Vec::new(),
            },
            Change {
                summary: format!("start nginx so port 80 answers ACME challenges for {names}"),
                action: Action::Service {
                    op: ServiceOp::Start,
                    unit: "nginx.service".into(),
                },
                diff: None,
                claims: Vec::new(),
            },
        ])
    }
}
