//! `portico renew`: every ACME certificate that is due (or all, forced) is
//! obtained — several at once, bounded — then installed; the ones that
//! changed go live with one `nginx -t` and one reload. A failure keeps the
//! old certificate serving and backs off (state.json).

use thiserror::Error;

use crate::acme::state::{State, StateError};
use crate::engine::{self, Action, Change, Ctx, Task};
use crate::journal::Journal;
use crate::playbook::{CertSource, Playbook};
use crate::report::{Report, Status, TaskReport};

/// How many certificates are obtained at the same time.
pub const PARALLEL: usize = 4;

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

/// One certificate's way through a run.
struct Item {
    name: String,
    changes: Vec<Change>,
    outcome: Result<(), String>,
}

/// Renews and records the outcome in the state file.
pub fn renew(pb: &Playbook, ctx: &Ctx, now: i64, opts: Options) -> Result<Report, RenewError> {
    let (mut state, recovered) = State::load_or_recover(ctx.root, now, !opts.dry_run)?;
    let mut report = Report::default();
    if let Some(w) = recovered {
        tracing::warn!("{w}");
        report.warnings.push(w);
    }
    if !opts.force {
        refresh_ari(pb, ctx, &mut state, now);
    }
    let mut items = Vec::new();
    for c in pb
        .certificates
        .iter()
        .filter(|c| c.source == CertSource::Acme)
    {
        let name = format!("certificate {}", c.name);
        if !opts.force && !state.may_try(&c.name, now) {
            let s = &state.certificates[&c.name];
            report.push(TaskReport::skipped(
                name,
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
        task.ari = state
            .certificates
            .get(&c.name)
            .and_then(|s| Some((s.ari_window?, s.jitter.unwrap_or(0.5))));
        match task.check(ctx) {
            Ok(changes) => items.push(Item {
                name,
                changes,
                outcome: Ok(()),
            }),
            Err(e) => report.push(TaskReport::failed(name, Vec::new(), e.to_string())),
        }
    }

    // The network part, in parallel: each job only talks to the CA and
    // writes its challenge files.
    let jobs: Vec<(usize, &crate::acme::Job)> = items
        .iter()
        .enumerate()
        .flat_map(|(i, it)| {
            it.changes.iter().filter_map(move |c| match &c.action {
                Action::AcmeIssue(job) => Some((i, job.as_ref())),
                _ => None,
            })
        })
        .collect();
    let mut obtained = Vec::new();
    for chunk in jobs.chunks(PARALLEL) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(i, job)| (*i, *job, s.spawn(|| crate::acme::obtain(ctx.root, job))))
                .collect();
            for (i, job, h) in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(crate::acme::issue::AcmeError::Local {
                        path: "<renewal thread>".into(),
                        message: "panicked".into(),
                    })
                });
                obtained.push((i, job, r));
            }
        });
    }

    // Installing, one by one, journaled so a rejected result can be undone.
    let mut journal = Journal::default();
    let mut failed = Vec::new();
    for (i, job, result) in obtained {
        let installed = result.and_then(|issued| {
            if !opts.dry_run {
                journal.record(ctx.root, &Action::AcmeIssue(Box::new(job.clone())))?;
            }
            crate::acme::install(ctx.root, job, &issued)
        });
        if let Err(e) = installed {
            failed.push((i, e.to_string()));
        }
    }
    drop(jobs);
    for (i, e) in failed {
        items[i].outcome = Err(e);
    }
    for it in &mut items {
        if it.outcome.is_err() || opts.dry_run {
            continue;
        }
        for c in it
            .changes
            .iter()
            .filter(|c| !matches!(c.action, Action::AcmeIssue(_)))
        {
            if let Err(e) = journal
                .record(ctx.root, &c.action)
                .map_err(engine::TaskError::from)
                .and_then(|()| engine::execute(ctx, &c.action))
            {
                it.outcome = Err(e.to_string());
                break;
            }
        }
    }

    let changed = items
        .iter()
        .any(|it| it.outcome.is_ok() && !it.changes.is_empty());
    for it in items {
        let status = match (&it.outcome, it.changes.is_empty()) {
            (Err(e), _) => TaskReport::failed(it.name, summaries(&it.changes), e.clone()),
            (Ok(()), true) => TaskReport::new(it.name, Status::Unchanged, &[]),
            (Ok(()), false) => TaskReport::new(it.name, Status::Changed, &it.changes),
        };
        report.push(status);
    }
    // One reload for everything that changed; a config nginx rejects is undone.
    if changed && !opts.dry_run && ctx.live_host {
        let name = "handler: reload nginx".to_string();
        report.push(match crate::tasks::reload::reload_nginx(ctx) {
            Ok(true) => TaskReport::planned(name, vec!["nginx -t passed; reloaded".into()]),
            Ok(false) => {
                TaskReport::skipped(name, "nginx is not running; nothing to reload".into())
            }
            Err(e) => {
                let undone = journal
                    .roll_back(ctx.root)
                    .map(|n| format!("rolled back: {n} file changes restored byte for byte"))
                    .unwrap_or_else(|e| format!("ROLLBACK FAILED: {e}"));
                TaskReport::failed(name, Vec::new(), format!("{e}\n{undone}"))
            }
        });
    }

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
        // What was installed stays installed; the report says what is lost.
        if let Err(e) = state.save(ctx.root) {
            report.push(TaskReport::failed(
                format!("state {}", crate::acme::state::STATE_FILE),
                Vec::new(),
                format!(
                    "{e}; certificates installed in this run are in place and serving, but their \
                     back-off and renewal windows were not recorded"
                ),
            ));
        }
    }
    Ok(report)
}

/// Asks the CA for the renewal window (ARI) of every served ACME certificate
/// whose last answer has expired. Never fatal: without an answer the
/// lifetime rule decides, and the CA is asked again within the hour.
fn refresh_ari(pb: &Playbook, ctx: &Ctx, state: &mut State, now: i64) {
    let Some(acme) = &pb.acme else { return };
    let certs: Vec<(String, Vec<u8>)> = pb
        .certificates
        .iter()
        .filter(|c| c.source == CertSource::Acme && state.ari_due(&c.name, now))
        .filter_map(|c| {
            let pem = ctx.root.read(&crate::plan::cert_paths(c).cert).ok()??;
            Some((c.name.clone(), pem))
        })
        .collect();
    if certs.is_empty() {
        return;
    }
    match crate::acme::ari::fetch(ctx.root, acme, &certs, now) {
        Ok(advice) => {
            for (name, a) in advice {
                state.ari_checked(&name, &a);
            }
        }
        Err(e) => tracing::warn!("ACME renewal information not available: {e}"),
    }
}

fn summaries(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| c.summary.clone()).collect()
}
