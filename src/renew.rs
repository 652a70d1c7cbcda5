//! `portico renew`: an ordinary engine run over the playbook's ACME
//! certificates. What is due (or all, forced) is obtained, several at once;
//! what was obtained is written through the journal; the ones that changed
//! go live with one `nginx -t` and one reload, and a configuration nginx
//! rejects is put back. A failure keeps the old certificate serving and
//! backs off; what renewal remembers between runs is in state.json.

use thiserror::Error;

use crate::acme::state::{State, StateError};
use crate::engine::{self, RunOptions};
use crate::nothing_due::{self, Memo, Sighting};
use crate::playbook::Playbook;
use crate::report::{Report, Status, TaskReport};
use crate::task::{Ctx, Mode, Task, TaskId};
use crate::tasks::certificate::{Renewal, Witness};
use std::sync::Arc;

/// What stops a renewal run before it starts.
#[derive(Debug, Error)]
pub enum RenewError {
    /// The state file could not be read or moved aside.
    #[error(transparent)]
    State(#[from] StateError),
}

/// `portico renew`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Every certificate, due or not, backing off or not.
    pub force: bool,
    /// Talk to the CA, write and reload nothing.
    pub dry_run: bool,
    /// Say what is due, and contact no CA (no order, no renewal info).
    pub check: bool,
    /// The playbook is the one `apply` installed (what the daemon renews
    /// from): a site that waited for a certificate this run obtained is
    /// made live. Another playbook never changes nginx's configuration.
    pub installed_playbook: bool,
}

/// What a renewal run came to.
#[derive(Debug)]
pub struct Renewed {
    /// The run's report.
    pub report: Report,
    /// The certificates past their renewal time that this run did not
    /// try, backing off after failures: each with when it tries next.
    pub backing_off: Vec<String>,
    /// What each ACME certificate's task saw, where it had nothing to do
    /// (for the memo of a quiet run, crate::nothing_due).
    pub seen: Seen,
}

/// What a run that writes saw before it decided, for the memo of a quiet
/// run.
#[derive(Debug, Default)]
pub struct Seen {
    /// Per certificate, what its task saw when it had nothing to do.
    pub certificates: std::collections::HashMap<String, Sighting>,
    /// What every certificate shares, stamped before any task ran.
    pub shared: Option<nothing_due::Shared>,
}

impl Renewed {
    /// 1 when a certificate failed or is backing off past its renewal
    /// time, else 0: what a monitoring check wants to see.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.report.failed > 0 || !self.backing_off.is_empty())
    }
}

/// Renews and records the outcome in the state file.
pub fn renew(pb: &Arc<Playbook>, ctx: &Ctx, opts: Options) -> Result<Renewed, RenewError> {
    // The run's time limit counts from here (crate::limits).
    let _ = crate::acme::run_started();
    let now = ctx.clock.unix_now();
    let (mut state, recovered) =
        State::load_or_recover(ctx.root, now, !opts.dry_run && !opts.check)?;
    state.clamp_to(now);
    if !opts.force && !opts.check {
        refresh_ari(pb, ctx, &mut state, now);
    }
    let (tasks, backing_off, witnesses) = certificate_tasks(pb, &state, now, opts);
    let shared = (!witnesses.is_empty())
        .then(|| nothing_due::shared(ctx.root))
        .flatten();
    let certificates = crate::hooks::Snapshot::take(pb, ctx.root);
    let mut report = engine::run_with(
        &tasks,
        ctx,
        if opts.check { Mode::Check } else { Mode::Apply },
        RunOptions {
            obtain_in_parallel: crate::acme::PARALLEL,
            progress: None,
        },
    );
    if let Some(w) = recovered {
        tracing::warn!("{w}");
        report.warnings.insert(0, w);
    }
    if opts.dry_run || opts.check {
        return Ok(Renewed {
            report,
            backing_off,
            seen: Seen::default(),
        });
    }
    record_outcomes(&mut state, &report, now);
    note_queue(pb, ctx, &mut report);
    // A certificate that arrived for a site that was waiting for it (a
    // first apply before DNS pointed here): the site goes live now, with
    // the same configuration task apply runs, not at the next apply.
    let obtained: Vec<&str> = report
        .tasks
        .iter()
        .filter(|t| t.status == Status::Changed)
        .filter_map(|t| match &t.id {
            Some(TaskId::Certificate(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if opts.installed_playbook && waiting(pb, ctx, &obtained) {
        complete_waiting_sites(pb, ctx, &mut report);
    }
    // What was installed stays installed; the report says what is lost.
    if let Err(e) = state.save(ctx.root) {
        report.push(TaskReport::failed_named(
            format!("state {}", crate::paths::STATE_FILE),
            Vec::new(),
            format!(
                "{e}; certificates installed in this run are in place and serving, but their \
                 back-off and renewal windows were not recorded"
            ),
        ));
    }
    // After the state is saved: a hook may take long or be interrupted.
    crate::hooks::run_deploy_hooks(pb, ctx, &mut report, &certificates);
    let seen = Seen {
        certificates: witnesses
            .into_iter()
            .filter_map(|(name, w)| Some((name, w.seen()?)))
            .collect(),
        shared,
    };
    Ok(Renewed {
        report,
        backing_off,
        seen,
    })
}

/// The certificates this run left waiting for their account, in the
/// report: skipped, not failed (the daemon orders them as the hour frees
/// slots; a hold by the CA stays a failure), with when the next may go.
fn note_queue(pb: &Playbook, ctx: &Ctx, report: &mut Report) {
    report.queue = queue_report(pb, ctx, report);
    report.mark_skipped(|r| r.starts_with(crate::acme::issue::QUEUED));
    if let Some(q) = &report.queue {
        report.warnings.push(format!(
            "{} certificate(s) wait for the ACME account (order limit or rate limit); the next \
             order may go at {} (the daemon wakes for it)",
            q.certificates, q.next_order_at
        ));
    }
}

/// Each certificate's witness (what its task saw), by name.
type Witnesses = Vec<(String, Arc<Witness>)>;

/// A task per ACME certificate, held while it backs off after failures
/// (unless forced); a line for each one held; and, in a run that writes,
/// each one's witness.
fn certificate_tasks(
    pb: &Playbook,
    state: &State,
    now: i64,
    opts: Options,
) -> (Vec<Box<dyn Task>>, Vec<String>, Witnesses) {
    let mut backing_off = Vec::new();
    let mut witnesses = Vec::new();
    let names = crate::plan::CertificateShared::of(pb);
    let tasks = pb
        .certificates
        .iter()
        .filter(|c| c.source.is_acme())
        .map(|c| {
            let hold = (!opts.force && !state.may_try(&c.name, now)).then(|| {
                let s = &state.certificates[&c.name];
                backing_off.push(format!(
                    "certificate {}: backing off after {} failure(s); next attempt at {} or later",
                    c.name,
                    s.failures,
                    crate::when::rfc3339(s.next_attempt.unwrap_or(now))
                ));
                format!(
                    "backing off after {} failure(s) in a row; next attempt at {} or later; last error: {}",
                    s.failures,
                    crate::when::rfc3339(state.next_attempt(&c.name, now).unwrap_or(now)),
                    s.last_error.as_deref().unwrap_or("?")
                )
            });
            let mut renewal = renewal(state, &c.name, opts, hold);
            // Only a run that writes leaves a memo.
            if !opts.dry_run && !opts.check {
                let w = Arc::new(Witness::default());
                witnesses.push((c.name.clone(), Arc::clone(&w)));
                renewal.witness = Some(w);
            }
            Box::new(crate::plan::certificate_task(pb, &names, c, now, renewal)) as Box<dyn Task>
        })
        .collect();
    (tasks, backing_off, witnesses)
}

/// What a renewal run asks of certificate `name`: the CA's window (ARI)
/// and its place in it from the state, spread over the lifetime without.
fn renewal(state: &State, name: &str, opts: Options, hold: Option<String>) -> Renewal {
    Renewal {
        force: opts.force,
        dry_run: opts.dry_run,
        hold,
        ari: state
            .certificates
            .get(name)
            .and_then(|s| Some((s.ari_window?, s.jitter.unwrap_or(0.5)))),
        spread: true,
        witness: None,
    }
}

/// What this host's renewal looks like after a run, for the next to skip
/// the work ([`crate::nothing_due`]): `None` unless every ACME certificate
/// is quiet (its pair live and laid out right, not due, not backing off,
/// the CA asked about it recently where it offers ARI). What each task
/// saw is used as it is; only a certificate whose task changed something
/// is read again.
pub fn quiet(pb: &Playbook, ctx: &Ctx, seen: &Seen, key: String, now: i64) -> Option<Memo> {
    // Stamped before they are read: a change while this run decides moves
    // a stamp, and the next run is the full one.
    let state_stamp = ctx
        .root
        .stamp(std::path::Path::new(crate::paths::STATE_FILE))
        .ok()?;
    // What every certificate shares, as it was before the tasks decided.
    let (shared, dirs) = seen.shared.clone()?;
    if nothing_due::shared(ctx.root)? != (shared, dirs.clone()) {
        return None;
    }
    let certs = nothing_due::cert_dir(ctx.root).ok()??;
    let state = State::load(ctx.root).ok()?;
    let mut until = i64::MAX;
    let mut certificates = Vec::new();
    let names = std::cell::OnceCell::new();
    for c in pb.certificates.iter().filter(|c| c.source.is_acme()) {
        let s = state.certificates.get(&c.name);
        if s.is_some_and(|s| s.failures > 0 || s.next_attempt.is_some()) {
            return None;
        }
        // The next question to the CA may move the renewal moment.
        until = until.min(s.and_then(|s| s.ari_next_check)?);
        // What its task saw; one that had something to do is read again.
        let sighting = match seen.certificates.get(&c.name) {
            Some(seen) => seen.clone(),
            None => {
                let names = names.get_or_init(|| crate::plan::CertificateShared::of(pb));
                read_again(pb, names, ctx, &state, c, now)?
            }
        };
        // The link the task decided on is still the link, read after the
        // live links' directory was stamped (the next run checks that
        // stamp, not each link).
        let link = nothing_due::live_link(&certs, &c.name).ok()?;
        if link.as_deref() != Some(sighting.quiet.link.as_str()) {
            return None;
        }
        until = until.min(sighting.due_at);
        certificates.push(sighting.quiet);
    }
    (until > now).then_some(Memo {
        version: nothing_due::VERSION,
        key,
        written_at: now,
        until,
        state: state_stamp,
        shared,
        dirs,
        certificates,
    })
}

/// What a certificate whose task had something to do (now done) looks
/// like, as its task would see it in the next run.
fn read_again(
    pb: &Playbook,
    names: &crate::plan::CertificateShared,
    ctx: &Ctx,
    state: &State,
    c: &crate::playbook::Certificate,
    now: i64,
) -> Option<Sighting> {
    let mut renewal = renewal(state, &c.name, Options::default(), None);
    let witness = Arc::new(Witness::default());
    renewal.witness = Some(Arc::clone(&witness));
    let task = crate::plan::certificate_task(pb, names, c, now, renewal);
    task.check(ctx).ok()?.is_empty().then_some(())?;
    witness.seen()
}

/// Each certificate's outcome in the state: a success resets it, a
/// failure counts towards the back-off.
fn record_outcomes(state: &mut State, report: &Report, now: i64) {
    for t in &report.tasks {
        let Some(TaskId::Certificate(name)) = &t.id else {
            continue;
        };
        match t.status {
            // A new certificate: its old ARI window goes with the old one.
            Status::Changed if t.changes.iter().any(|c| c.action == "obtain") => {
                state.succeeded(name, now)
            }
            // Laid out again (modes, copies, a pair from plain files): the
            // same certificate, its window and back-off as they were.
            Status::Changed => {}
            // Not ordered (stopping, no time left, queued behind the
            // account's order limit, or the account is rate-limited): no
            // back-off of its own; still due for the next run.
            Status::Failed
                if t.reason
                    .as_deref()
                    .is_some_and(crate::acme::issue::not_its_own_failure) => {}
            Status::Failed => state.failed(name, now, t.reason.as_deref().unwrap_or("failed")),
            _ => {}
        }
    }
}

/// The certificates this run left waiting for their account, and when
/// the account may order next (from the ledger the run just wrote).
fn queue_report(pb: &Playbook, ctx: &Ctx, report: &Report) -> Option<crate::report::QueueReport> {
    use crate::acme::issue::{HELD, QUEUED};
    let waiting = report
        .tasks
        .iter()
        .filter(|t| matches!(t.status, Status::Failed | Status::Skipped))
        .filter(|t| {
            t.reason
                .as_deref()
                .is_some_and(|r| r.starts_with(QUEUED) || r.starts_with(HELD))
        })
        .count();
    let acme = pb.acme.as_ref().filter(|_| waiting > 0)?;
    let now = ctx.clock.unix_now();
    let (mut ledger, _) = crate::acme::ledger::Ledger::load(ctx.root, now).ok()?;
    let directory = crate::acme::issue::directory_url(&acme.directory);
    let next = ledger
        .account(&directory)
        .next_chance(now, crate::acme::ledger::limit(acme))
        .max(now + 1);
    Some(crate::report::QueueReport {
        certificates: waiting,
        next_order_at: crate::when::rfc3339(next),
        next_order_at_unix: next,
    })
}

/// Does a site of a certificate in `obtained` wait for it: is its HTTPS
/// server missing from the live generation? (Read from the live
/// directory's listing alone: a renewal of what is served costs nothing.)
fn waiting(pb: &Playbook, ctx: &Ctx, obtained: &[&str]) -> bool {
    if obtained.is_empty() {
        return false;
    }
    let live = ctx
        .root
        .list_dir(std::path::Path::new(crate::paths::NGINX_LIVE))
        .unwrap_or_default();
    pb.sites
        .iter()
        .filter(|s| obtained.contains(&s.certificate.as_str()))
        .any(|s| {
            let file = format!(
                "{}.https.conf",
                crate::playbook::names::site_file_stem(&s.id())
            );
            !live.contains(&file)
        })
}

/// Runs the playbook's nginx configuration task (facts asked of the host:
/// rendering depends on the installed nginx) and appends what it did. A
/// configuration unchanged is not written again.
fn complete_waiting_sites(pb: &Arc<Playbook>, ctx: &Ctx, report: &mut Report) {
    let live = std::path::Path::new(crate::paths::NGINX_LIVE);
    if ctx.root.read_link(live).ok().flatten().is_none() {
        return; // never applied here: nothing of apply's to complete
    }
    let facts = crate::facts::gather(ctx.root, ctx.runner);
    let task: Vec<Box<dyn Task>> = vec![crate::plan::nginx_configuration(pb, &facts)];
    let sub = Ctx {
        facts: &facts,
        ..*ctx
    };
    let more = engine::run(&task, &sub, Mode::Apply);
    for t in more.tasks {
        if t.status == Status::Changed && t.id == Some(TaskId::NginxConfig) {
            tracing::info!("the nginx configuration changed: sites that waited for their certificate are served now");
        }
        report.push(t);
    }
    report.rolled_back |= more.rolled_back;
}

/// Asks the CA for the renewal window (ARI) of every served ACME certificate
/// whose last answer has expired. Never fatal: without an answer the
/// lifetime rule decides, and the CA is asked again within the hour.
fn refresh_ari(pb: &Playbook, ctx: &Ctx, state: &mut State, now: i64) {
    let Some(acme) = &pb.acme else { return };
    // Read only once the CA answered: a CA that is down costs no read of
    // thousands of certificates.
    let certs: Vec<(String, std::path::PathBuf)> = pb
        .certificates
        .iter()
        .filter(|c| c.source.is_acme() && state.ari_due(&c.name, now))
        .map(|c| {
            let path = crate::tasks::certificate::CertPaths::of(c).cert;
            (c.name.clone(), path)
        })
        .collect();
    // Nothing issued yet: nothing to ask about, and no account to make.
    if !certs.iter().any(|(_, path)| ctx.root.exists(path)) {
        return;
    }
    match crate::acme::ari::fetch(ctx.root, acme, &certs, now) {
        Ok(advice) => {
            for (name, a) in advice {
                state.ari_checked(&name, &a);
            }
        }
        Err(e) => {
            tracing::warn!("ACME renewal information not available: {e}");
            // Asked again within the hour, not at every run meanwhile.
            let again = now + crate::acme::ari::MIN_RECHECK;
            for (name, _) in &certs {
                state.ari_unanswered(name, again);
            }
        }
    }
}
