//! `portico renew`: every ACME certificate that is due (or all, forced) is
//! renewed; the ones that changed go live with one `nginx -t` and one reload;
//! a failure keeps the old certificate serving and backs off (state.json).

use thiserror::Error;

use crate::acme::state::{State, StateError};
use crate::engine::{self, Ctx, Failures, Mode, Task};
use crate::playbook::{CertSource, Playbook};
use crate::report::{Report, Status, TaskReport};

#[derive(Debug, Error)]
pub enum RenewError {
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub force: bool,
    pub dry_run: bool,
}

/// Renews and records the outcome in the state file.
pub fn renew(pb: &Playbook, ctx: &Ctx, now: i64, opts: Options) -> Result<Report, RenewError> {
    let mut state = State::load(ctx.root)?;
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let mut waiting = Vec::new();
    for c in pb
        .certificates
        .iter()
        .filter(|c| c.source == CertSource::Acme)
    {
        if !opts.force && !state.may_try(&c.name, now) {
            let s = &state.certificates[&c.name];
            waiting.push(TaskReport::skipped(
                format!("certificate {}", c.name),
                format!(
                    "backing off after {} failure(s) until {}; last error: {}",
                    s.failures,
                    s.next_attempt.unwrap_or(now),
                    s.last_error.as_deref().unwrap_or("?")
                ),
            ));
            continue;
        }
        let mut task = crate::plan::certificate_task(pb, c, now, opts.force);
        task.dry_run = opts.dry_run;
        tasks.push(Box::new(task));
    }
    let mut report = if opts.dry_run {
        // Orders are placed and validated; nothing is written or reloaded.
        let dry = Ctx {
            live_host: false,
            ..*ctx
        };
        let mut r = Report::default();
        for t in &tasks {
            let name = t.name();
            match t.check(ctx) {
                Ok(changes) if changes.is_empty() => {
                    r.push(TaskReport::new(name, Status::Unchanged, &[]))
                }
                Ok(changes) => {
                    let done = changes
                        .iter()
                        .try_for_each(|c| engine::execute(&dry, &c.action));
                    match done {
                        Ok(()) => r.push(TaskReport::new(name, Status::Changed, &changes)),
                        Err(e) => r.push(TaskReport::failed(name, Vec::new(), e.to_string())),
                    }
                }
                Err(e) => r.push(TaskReport::failed(name, Vec::new(), e.to_string())),
            }
        }
        r
    } else {
        engine::run_with(&tasks, ctx, Mode::Apply, Failures::Independent)
    };
    if !opts.dry_run {
        for t in &report.tasks {
            let Some(name) = t.name.strip_prefix("certificate ") else {
                continue;
            };
            match t.status {
                Status::Changed => state.succeeded(name, now),
                Status::Failed => state.failed(name, now, t.reason.as_deref().unwrap_or("failed")),
                _ => {}
            }
        }
        state.save(ctx.root)?;
    }
    for w in waiting {
        report.push(w);
    }
    Ok(report)
}
