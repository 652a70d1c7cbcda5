//! Before asking an ACME server to validate: nginx must answer challenges
//! for every name on port 80. On a fresh VM it is still serving the distro's
//! default site (or not running at all); a name the live generation has no
//! site for yet gets a challenge-only server in a generation of its own:
//! the live one plus that server, tested and made live whole, so the
//! configuration never mixes the new playbook's files with the old ones.

use crate::host::systemd::ServiceOp;
use crate::nginx::generation::port80_names;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};
use crate::tasks::generation::{current, switch_changes};

/// nginx answers ACME challenges for every name (reloaded or started if not).
pub struct ChallengeServed {
    /// The names the CA will look at.
    pub names: Vec<String>,
    /// Where the challenge answers are written.
    pub webroot: String,
}

impl Task for ChallengeServed {
    fn id(&self) -> TaskId {
        TaskId::ChallengeServed
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn rolls_back_on_failure(&self) -> bool {
        true // its nginx -t is the first gate of the run
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let missing: Vec<String> = self
            .names
            .iter()
            .filter(|n| !crate::acme::probe::challenge_served(ctx.probe, n))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let live = current(ctx.root)?.map(|(_, g)| g).unwrap_or_default();
        // Names a site of the live generation serves on port 80 answer
        // once nginx has loaded it; the others get the challenge server.
        let served = port80_names(&live);
        let new: Vec<String> = missing
            .iter()
            .filter(|n| !served.contains(*n))
            .cloned()
            .collect();
        let with = if new.is_empty() {
            live
        } else {
            live.with_challenges(&new, &self.webroot)
        };
        let mut changes = switch_changes(ctx, &with, "challenges for names no site serves yet")?;
        let names = missing.join(", ");
        // A running nginx is reloaded the way the end-of-run handler does it
        // (nginx -t first, then wait until only new workers answer: old ones
        // would give the CA the previous site's 404). A stopped one is tested
        // and started.
        if ctx.systemd.state("nginx.service")?.is_active() {
            changes.push(Change::new(
                format!("reload nginx so port 80 answers ACME challenges for {names}"),
                Action::ReloadNginx,
            ));
            return Ok(changes);
        }
        // Tested just now, as the candidate it was made live as; else
        // (nothing to switch) tested before the start.
        if !changes
            .iter()
            .any(|c| matches!(c.action, Action::TestNginx { .. }))
        {
            changes.push(Change::new(
                "nginx -t before starting nginx".into(),
                Action::TestNginx { candidate: None },
            ));
        }
        changes.push(Change::new(
            format!("start nginx so port 80 answers ACME challenges for {names}"),
            Action::Service {
                op: ServiceOp::Start,
                unit: "nginx.service".into(),
            },
        ));
        Ok(changes)
    }
}
