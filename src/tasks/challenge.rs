//! Before asking an ACME server to validate: nginx must answer challenges
//! for every name on port 80. On a fresh VM it is still serving the distro's
//! default site (or not running at all): load the port-80 servers now.

use crate::engine::{Action, Change, Ctx, Scope, Task, TaskError};
use crate::host::systemd::ServiceOp;
use crate::host::Command;

pub struct ChallengeServed {
    pub names: Vec<String>,
    pub after: Vec<String>,
}

impl Task for ChallengeServed {
    fn name(&self) -> String {
        "acme challenges served".into()
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<String> {
        self.after.clone()
    }

    fn rolls_back_on_failure(&self) -> bool {
        true // its nginx -t is the first gate of the run
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let missing: Vec<&String> = self
            .names
            .iter()
            .filter(|n| !crate::acme::probe::challenge_served(n))
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let op = if ctx.systemd.state("nginx.service")?.is_active() {
            ServiceOp::Reload
        } else {
            ServiceOp::Start
        };
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Ok(vec![
            Change {
                summary: "nginx -t before loading the port-80 servers".into(),
                action: Action::Run(Command::query(["nginx", "-t", "-q"])),
                diff: None,
            },
            Change {
                summary: format!(
                    "{} nginx so port 80 answers ACME challenges for {}",
                    op.name(),
                    names.join(", ")
                ),
                action: Action::Service {
                    op,
                    unit: "nginx.service".into(),
                },
                diff: None,
            },
        ])
    }
}
