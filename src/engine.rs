//! The step engine: every task first checks (reads only, returns the changes
//! it would make), then applies exactly those changes, journaled so a
//! failed gate puts every file back. Handlers notified by a change run once,
//! at the end. `apply` and `renew` are both runs of this engine.

use std::collections::{BTreeSet, HashMap};

use crate::acme::issue::{AcmeError, Issued};
use crate::host::systemd::ServiceOp;
use crate::journal::Journal;
use crate::report::{Progress, Report, Status, TaskReport};
use crate::task::{Action, Change, Ctx, Handler, Mode, Scope, Task, TaskError, TaskId};
use crate::tasks::reload::{reload_nginx, reload_portico, ReloadOutcome};

/// How a run goes, beyond the defaults.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Told about each task as it starts and ends (streamed output).
    pub progress: Option<&'a dyn Progress>,
    /// Obtain the certificates of consecutive tasks in one batch, this
    /// many orders at a time (see `batch`). 0: each in its task's turn.
    pub obtain_in_parallel: usize,
}

/// Runs `tasks` in order and then the notified handlers.
pub fn run(tasks: &[Box<dyn Task + '_>], ctx: &Ctx, mode: Mode) -> Report {
    run_with(tasks, ctx, mode, RunOptions::default())
}

/// Changes checked ahead of their task, with what the CA issued for each
/// of their [`Action::Obtain`]s, by task index.
type Prefetched = HashMap<usize, (Vec<Change>, Vec<Result<Issued, AcmeError>>)>;

/// [`run`] with options.
pub fn run_with(tasks: &[Box<dyn Task + '_>], ctx: &Ctx, mode: Mode, opts: RunOptions) -> Report {
    // The run's mode is what tasks see, whatever the context was made with.
    let ctx = &Ctx { mode, ..*ctx };
    // Later tasks already checked, with their certificates obtained in
    // one batch with an earlier task's (see `batch`).
    let mut prefetched: Prefetched = HashMap::new();
    // Tasks that succeeded so far: what a batch may look ahead past.
    let mut finished: BTreeSet<TaskId> = BTreeSet::new();
    let mut report = Out {
        report: Report::default(),
        progress: opts.progress,
    };
    // Tasks that failed, or were skipped because something they need failed.
    let mut broken: HashMap<TaskId, String> = HashMap::new();
    let mut notified: BTreeSet<Handler> = BTreeSet::new();
    let mut journal = Journal::default();
    let mut would_change: BTreeSet<TaskId> = BTreeSet::new();
    // Tasks that changed files (what a rollback undoes).
    let mut changed_files: BTreeSet<TaskId> = BTreeSet::new();
    // Units this run started after the last change that notifies them:
    // they read every file as they started.
    let mut started: BTreeSet<String> = BTreeSet::new();
    for (i, task) in tasks.iter().enumerate() {
        let id = task.id();
        if let Some(dep) = task.after().into_iter().find(|d| broken.contains_key(d)) {
            let reason = format!("needs \"{dep}\", which did not succeed");
            broken.insert(id.clone(), reason.clone());
            report.push(TaskReport::skipped(id, reason));
            continue;
        }
        if let Some(reason) = task.hold() {
            report.push(TaskReport::skipped(id, reason));
            continue;
        }
        if task.scope() == Scope::Host && !ctx.live_host {
            report.push(TaskReport::skipped(
                id,
                format!(
                    "host-level step; not run under --root {}",
                    ctx.root.base().display()
                ),
            ));
            continue;
        }
        if mode == Mode::Check {
            if let Some(dep) = task.reads().into_iter().find(|d| would_change.contains(d)) {
                report.push(TaskReport::skipped(
                    id,
                    format!("runs after \"{dep}\" is applied; nothing to check before that"),
                ));
                continue;
            }
        }
        if let Some(p) = opts.progress {
            p.started(&id.to_string());
        }
        let _t = crate::timing::step("task", &id.to_string());
        let (checked, mut obtained) = match prefetched.remove(&i) {
            Some((changes, issued)) => (Ok(changes), issued.into_iter().map(Some).collect()),
            None => {
                let checked = task.check(ctx);
                let mut obtained = Vec::new();
                if let Ok(changes) = &checked {
                    if mode == Mode::Apply && opts.obtain_in_parallel > 0 && only_obtains(changes) {
                        let (own, later) = batch(
                            tasks,
                            i,
                            changes,
                            ctx,
                            &finished,
                            opts.obtain_in_parallel,
                            &mut journal,
                        );
                        obtained = own.into_iter().map(Some).collect();
                        prefetched.extend(later);
                    }
                }
                (checked, obtained)
            }
        };
        let changes = match checked {
            Ok(c) => c,
            Err(e) => {
                let mut reason = e.to_string();
                if task.rolls_back_on_failure() {
                    reason.push_str(&roll_back(&mut journal, ctx));
                }
                broken.insert(id.clone(), reason.clone());
                report.push(TaskReport::failed(id, Vec::new(), reason));
                continue;
            }
        };
        report.report.warnings.extend(task.notes(ctx));
        if changes.is_empty() {
            finished.insert(id.clone());
            report.push(TaskReport::new(id, Status::Unchanged, &[]));
            continue;
        }
        if mode == Mode::Apply {
            let mut certificates = obtained.iter_mut();
            let applied = changes.iter().try_for_each(|c| {
                let ready = match c.action {
                    Action::Obtain(_) => certificates.next().and_then(Option::take),
                    _ => None,
                };
                apply(ctx, &mut journal, &c.action, ready)
            });
            if let Err(e) = applied {
                let mut reason = e.to_string();
                // A gate (`nginx -t` of a new generation) that says no puts
                // back every file the run changed.
                if task.rolls_back_on_failure() {
                    reason.push_str(&roll_back(&mut journal, ctx));
                }
                broken.insert(id.clone(), reason.clone());
                report.push(TaskReport::failed(id, summaries(&changes), reason));
                continue;
            }
        }
        // A start after every write that concerns the unit makes its
        // reload redundant; a later write makes it needed again.
        for h in task.notifies() {
            started.remove(h.unit());
        }
        started.extend(changes.iter().filter_map(|c| match &c.action {
            Action::Service {
                op: ServiceOp::Start | ServiceOp::Restart,
                unit,
            } => Some(unit.clone()),
            _ => None,
        }));
        notified.extend(task.notifies());
        if task.scope() == Scope::Files {
            changed_files.insert(id.clone());
        }
        would_change.insert(id.clone());
        finished.insert(id.clone());
        let mut line = TaskReport::new(id, Status::Changed, &changes);
        if mode == Mode::Apply {
            line.claims = changes.iter().flat_map(|c| c.claims.clone()).collect();
        }
        report.push(line);
    }
    // What is on disk is whole whatever failed (a generation is live or
    // not; a pair is live or not), so nginx is reloaded to serve what is
    // ready even when something else failed. The daemon is not told about
    // a playbook whose run failed.
    let hold = !broken.is_empty();
    let mut rolled_back_by_handler: Option<String> = None;
    for handler in notified {
        if let Some(p) = opts.progress {
            p.started(&format!("handler: {}", handler.name()));
        }
        if started.contains(handler.unit()) {
            report.push(TaskReport::skipped_named(
                format!("handler: {}", handler.name()),
                format!(
                    "{} {} started by this run and {} the new files then",
                    handler.unit(),
                    if mode == Mode::Check {
                        "would be"
                    } else {
                        "was"
                    },
                    if mode == Mode::Check { "reads" } else { "read" },
                ),
            ));
            continue;
        }
        let line = run_handler(handler, ctx, mode, hold, &mut journal);
        if line.status == Status::Failed
            && journal.rolled_back()
            && rolled_back_by_handler.is_none()
        {
            rolled_back_by_handler = Some(format!(
                "{} failed: {}",
                handler.name(),
                line.reason.as_deref().unwrap_or("?")
            ));
        }
        report.push(line);
    }
    let mut report = report.report;
    // A reload nginx refused rolled back every file of the run: what the
    // file tasks changed is no longer there.
    if let Some(why) = &rolled_back_by_handler {
        report.mark_rolled_back(&changed_files, why);
    }
    report.created_dirs = journal.created_dirs();
    report.rolled_back = journal.rolled_back();
    report
}

/// The report being built, and who hears about each line as it is added.
struct Out<'a> {
    report: Report,
    progress: Option<&'a dyn Progress>,
}

impl Out<'_> {
    fn push(&mut self, t: TaskReport) {
        if let Some(p) = self.progress {
            p.finished(&t);
        }
        self.report.push(t);
    }
}

/// Nothing but certificates to obtain (and at least one).
fn only_obtains(changes: &[Change]) -> bool {
    !changes.is_empty()
        && changes
            .iter()
            .all(|c| matches!(c.action, Action::Obtain(_)))
}

/// Task `first` is about to obtain certificates: so may the tasks right
/// after it (certificates are planned one after another). Those are
/// checked now and every certificate of the batch is obtained at once,
/// `parallel` orders at a time over one connection. The batch ends at the
/// first task that does something else (it might depend on `first`) or
/// that needs a task not finished yet; tasks that change nothing, or that
/// are held, are looked past. Returns `first`'s certificates and the
/// later tasks' changes with theirs.
fn batch(
    tasks: &[Box<dyn Task + '_>],
    first: usize,
    first_changes: &[Change],
    ctx: &Ctx,
    finished: &BTreeSet<TaskId>,
    parallel: usize,
    journal: &mut Journal,
) -> (Vec<Result<Issued, AcmeError>>, Prefetched) {
    let mut members: Vec<(usize, Vec<Change>)> = vec![(first, first_changes.to_vec())];
    for (j, task) in tasks.iter().enumerate().skip(first + 1) {
        if task.hold().is_some() {
            continue;
        }
        if !task.after().iter().all(|d| finished.contains(d))
            || (task.scope() == Scope::Host && !ctx.live_host)
        {
            break;
        }
        let _t = crate::timing::step("check", &task.id().to_string());
        match task.check(ctx) {
            Ok(changes) if changes.is_empty() => continue,
            Ok(changes) if only_obtains(&changes) => members.push((j, changes)),
            _ => break, // checked again in its turn
        }
    }
    let jobs: Vec<(usize, &crate::acme::Job)> = members
        .iter()
        .flat_map(|(j, changes)| {
            changes.iter().filter_map(move |c| match &c.action {
                Action::Obtain(job) => Some((*j, &**job)),
                _ => None,
            })
        })
        .collect();
    let all: Vec<&crate::acme::Job> = jobs.iter().map(|(_, job)| *job).collect();
    // Each certificate is written (journaled) as soon as its order ends,
    // while the others go on: a stop or a kill later loses none of it.
    let mut write = |i: usize, r: Result<Issued, AcmeError>| -> Result<Issued, AcmeError> {
        let mut issued = r?;
        let job = all[i];
        for action in install_actions(job, &issued) {
            let done = journal
                .record(ctx.root, &action)
                .map_err(TaskError::from)
                .and_then(|()| execute(ctx, &action));
            if let Err(e) = done {
                return Err(AcmeError::Install(e.to_string()));
            }
        }
        issued.installed = !job.dry_run;
        Ok(issued)
    };
    let mut issued: HashMap<usize, Vec<Result<Issued, AcmeError>>> = HashMap::new();
    for ((j, _), r) in jobs.iter().zip(crate::acme::obtain_all_then(
        net(ctx),
        &all,
        parallel,
        &mut write,
    )) {
        issued.entry(*j).or_default().push(r);
    }
    let own = issued.remove(&first).unwrap_or_default();
    let later = members
        .into_iter()
        .skip(1)
        .map(|(j, changes)| (j, (changes, issued.remove(&j).unwrap_or_default())))
        .collect();
    (own, later)
}

/// Records and carries out one action; an [`Action::Obtain`] becomes the
/// journaled writes of what the CA issued (`ready`, when prefetched).
fn apply(
    ctx: &Ctx,
    journal: &mut Journal,
    action: &Action,
    ready: Option<Result<Issued, AcmeError>>,
) -> Result<(), TaskError> {
    let Action::Obtain(job) = action else {
        journal.record(ctx.root, action)?;
        return execute(ctx, action);
    };
    let issued = match ready {
        Some(r) => r?,
        None => crate::acme::obtain(net(ctx), job)?,
    };
    if issued.installed {
        return Ok(()); // written as its order ended (see `batch`)
    }
    for write in install_actions(job, &issued) {
        journal.record(ctx.root, &write)?;
        execute(ctx, &write)?;
    }
    Ok(())
}

/// What obtaining a certificate may touch, from the run's seams.
fn net<'a>(ctx: &Ctx<'a>) -> crate::acme::Net<'a> {
    crate::acme::Net {
        root: ctx.root,
        probe: ctx.probe,
        clock: ctx.clock,
        live: ctx.live_host,
    }
}

/// The write that installs what a CA issued: the key and its chain as one
/// pair. None for a dry run.
fn install_actions(job: &crate::acme::Job, issued: &Issued) -> Vec<Action> {
    if job.dry_run {
        return Vec::new();
    }
    vec![Action::WritePair {
        name: job.name.clone(),
        cert: issued.chain_pem.as_bytes().to_vec(),
        key: issued.key_pem.as_bytes().to_vec(),
    }]
}

/// Undoes the run's file changes; returns a sentence for the report.
fn roll_back(journal: &mut Journal, ctx: &Ctx) -> String {
    if journal.is_empty() {
        return String::new();
    }
    match journal.roll_back(ctx.root, ctx.is_root) {
        Ok(n) => format!("\nrolled back: {n} file changes of this run restored byte for byte"),
        Err(e) => format!("\nROLLBACK FAILED: {e}; check the files this run changed"),
    }
}

fn summaries(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| c.summary.clone()).collect()
}

/// Carries out one action through the seams (an [`Action::Obtain`] is the
/// engine's business: see [`apply`]).
pub fn execute(ctx: &Ctx, action: &Action) -> Result<(), TaskError> {
    match action {
        Action::EnsureDir { path, mode } => ctx.root.create_dir_all(path, *mode)?,
        Action::WriteFile {
            path,
            content,
            mode,
        } => ctx.root.write_atomic(path, content, *mode)?,
        Action::SetMode { path, mode } => ctx.root.set_mode(path, *mode)?,
        Action::SetOwner { path, uid, gid } => ctx.root.set_owner(path, *uid, *gid)?,
        Action::Symlink { path, target } => ctx.root.symlink(path, target)?,
        Action::Remove { path } => ctx.root.remove(path)?,
        Action::Move { from, to } => ctx.root.move_file(from, to)?,
        Action::RemoveDir { path } => ctx.root.remove_empty_dir(path)?,
        Action::RemoveTree { path } => ctx.root.remove_tree(path)?,
        Action::Run(cmd) => {
            ctx.runner.run_ok(cmd)?;
        }
        Action::Capture { cmd, path, mode } => {
            let out = ctx.runner.run_ok(cmd)?;
            if let Some(dir) = path.parent() {
                ctx.root.create_dir_all(dir, 0o755)?;
            }
            ctx.root.write_atomic(path, out.stdout.as_bytes(), *mode)?;
        }
        Action::ReloadNginx => {
            reload_nginx(ctx)?;
        }
        Action::WriteTree { path, files, mode } => ctx.root.write_tree(path, files, *mode)?,
        Action::TestNginx { candidate } => {
            crate::tasks::generation::test(ctx, candidate.as_deref())?
        }
        Action::WritePair { name, cert, key } => {
            crate::tasks::pair::install(ctx.root, name, cert, key)?
        }
        Action::Service { op, unit } => ctx.systemd.run(*op, unit)?,
        Action::Obtain(job) => {
            let issued = crate::acme::obtain(net(ctx), job)?;
            for write in install_actions(job, &issued) {
                execute(ctx, &write)?;
            }
        }
    }
    Ok(())
}

fn run_handler(
    handler: Handler,
    ctx: &Ctx,
    mode: Mode,
    something_failed: bool,
    journal: &mut Journal,
) -> TaskReport {
    let name = format!("handler: {}", handler.name());
    let _t = crate::timing::step("handler", handler.name());
    if !ctx.live_host {
        return TaskReport::skipped_named(name, "host-level step; not run under --root".into());
    }
    if something_failed && handler == Handler::ReloadPortico {
        return TaskReport::skipped_named(name, "a task failed; not reloading".into());
    }
    if journal.rolled_back() && handler == Handler::ReloadNginx {
        return TaskReport::skipped_named(
            name,
            "this run's changes were rolled back; nothing new to load".into(),
        );
    }
    let unit = handler.unit();
    if mode == Mode::Check {
        // Say what apply would do: a stopped service is not reloaded (the
        // service task starts it, and it reads the new files then).
        return match ctx.systemd.state(unit) {
            Ok(s) if !s.is_active() => TaskReport::skipped_named(
                name,
                format!("{unit} is not running; it reads the new files when it starts"),
            ),
            _ => TaskReport::planned(name, vec![format!("would {}", handler.name())]),
        };
    }
    let outcome = ReloadOutcome::from(match handler {
        Handler::ReloadNginx => reload_nginx(ctx),
        Handler::ReloadPortico => reload_portico(ctx),
    });
    // A configuration the reload rejected is put back.
    let undone = match (&outcome, handler) {
        (ReloadOutcome::Failed(_), Handler::ReloadNginx) => roll_back(journal, ctx),
        _ => String::new(),
    };
    outcome.report(name, handler, &undone)
}
