//! The step engine: every task first checks (reads only, returns the changes
//! it would make), then applies exactly those changes, journaled so a
//! failed gate puts every file back. Handlers notified by a change run once,
//! at the end. `apply` and `renew` are both runs of this engine.

use std::collections::{BTreeSet, HashMap};

use crate::acme::issue::{AcmeError, Issued};
use crate::host::systemd::ServiceOp;
use crate::journal::Journal;
use crate::report::{ChangeLine, Progress, Report, Status, TaskReport};
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
    let mut run = Run::new(tasks, ctx, opts);
    for i in 0..tasks.len() {
        run.task(i);
    }
    run.handlers();
    run.finish()
}

/// One run's state: what each task's turn reads and adds to.
struct Run<'a, 't> {
    tasks: &'a [Box<dyn Task + 't>],
    ctx: &'a Ctx<'a>,
    opts: RunOptions<'a>,
    out: Out<'a>,
    /// Later tasks already checked, with their certificates obtained in
    /// one batch with an earlier task's (see [`batch`]).
    prefetched: Prefetched,
    /// Tasks that succeeded so far: what a batch may look ahead past.
    finished: BTreeSet<TaskId>,
    /// Tasks that failed, or were skipped because something they need
    /// failed, with why.
    broken: HashMap<TaskId, String>,
    /// Handlers a change notified.
    notified: BTreeSet<Handler>,
    /// Every file change, to roll back.
    journal: Journal,
    /// Tasks that changed (or in check mode would change) something.
    would_change: BTreeSet<TaskId>,
    /// Tasks that changed files (what a rollback undoes).
    changed_files: BTreeSet<TaskId>,
    /// Units this run started after the last change that notifies them:
    /// they read every file as they started.
    started: BTreeSet<String>,
    /// Why a handler's failure rolled back the run's files, if it did.
    rolled_back_by_handler: Option<String>,
    /// Check mode: directories an earlier task would create (a later one
    /// would find them made, and says nothing of them).
    planned_dirs: BTreeSet<std::path::PathBuf>,
}

/// What a task's check gave, with the certificates obtained for it.
type Checked = (
    Result<Vec<Change>, TaskError>,
    Vec<Option<Result<Issued, AcmeError>>>,
);

impl<'a, 't> Run<'a, 't> {
    fn new(tasks: &'a [Box<dyn Task + 't>], ctx: &'a Ctx<'a>, opts: RunOptions<'a>) -> Self {
        Run {
            tasks,
            ctx,
            opts,
            out: Out {
                report: Report {
                    mode: match ctx.mode {
                        Mode::Check => "check",
                        Mode::Apply => "apply",
                    },
                    // A report per task, and a few for the handlers: not
                    // grown by doubling past 10,000 of them.
                    tasks: Vec::with_capacity(tasks.len() + 4),
                    ..Report::default()
                },
                progress: opts.progress,
            },
            prefetched: HashMap::new(),
            finished: BTreeSet::new(),
            broken: HashMap::new(),
            notified: BTreeSet::new(),
            journal: Journal::default(),
            would_change: BTreeSet::new(),
            changed_files: BTreeSet::new(),
            started: BTreeSet::new(),
            rolled_back_by_handler: None,
            planned_dirs: BTreeSet::new(),
        }
    }

    /// Task `i`'s turn: skipped, or checked, applied and recorded.
    fn task(&mut self, i: usize) {
        let task = &self.tasks[i];
        let id = task.id();
        if let Some(reason) = self.skip_reason(task.as_ref()) {
            self.out.push(TaskReport::skipped(id, reason));
            return;
        }
        if let Some(p) = self.opts.progress {
            p.started(&id.to_string());
        }
        let _t = crate::timing::step("task", &id.to_string());
        let (checked, obtained) = self.check(i);
        let changes = match checked {
            Ok(c) => self.not_planned_yet(c),
            Err(e) => return self.failed(task.as_ref(), Vec::new(), e),
        };
        self.out.report.warnings.extend(task.notes(self.ctx));
        if changes.is_empty() {
            self.finished.insert(id.clone());
            self.out.push(TaskReport::new(id, Status::Unchanged, &[]));
            return;
        }
        if self.ctx.mode == Mode::Apply {
            if let Err(e) = self.apply(&changes, obtained) {
                return self.failed(task.as_ref(), summaries(&changes), e);
            }
        }
        self.changed(task.as_ref(), &changes);
    }

    /// Why `task` does not run in this run, if it does not: something it
    /// needs failed (then it counts as failed too), it is held, it is a
    /// host step under `--root`, or in check mode it reads what an earlier
    /// task would change.
    fn skip_reason(&mut self, task: &dyn Task) -> Option<String> {
        let id = task.id();
        if let Some(dep) = task
            .after()
            .into_iter()
            .find(|d| self.broken.contains_key(d))
        {
            let reason = format!("needs \"{dep}\", which did not succeed");
            self.broken.insert(id, reason.clone());
            return Some(reason);
        }
        if let Some(reason) = task.hold() {
            return Some(reason);
        }
        if task.scope() == Scope::Host && !self.ctx.live_host {
            return Some(format!(
                "host-level step; not run under --root {}",
                self.ctx.root.base().display()
            ));
        }
        if self.ctx.mode == Mode::Check {
            if let Some(dep) = task
                .reads()
                .into_iter()
                .find(|d| self.would_change.contains(d))
            {
                return Some(format!(
                    "runs after \"{dep}\" is applied; nothing to check before that"
                ));
            }
        }
        None
    }

    /// In check mode, `changes` without the directories an earlier task
    /// would already have created.
    fn not_planned_yet(&mut self, changes: Vec<Change>) -> Vec<Change> {
        if self.ctx.mode != Mode::Check {
            return changes;
        }
        changes
            .into_iter()
            .filter(|c| match &c.action {
                Action::EnsureDir { path, .. } => self.planned_dirs.insert(path.clone()),
                _ => true,
            })
            .collect()
    }

    /// Task `i`'s changes: checked before (in an earlier task's batch), or
    /// checked now, starting a batch when all it does is obtain
    /// certificates.
    fn check(&mut self, i: usize) -> Checked {
        if let Some((changes, issued)) = self.prefetched.remove(&i) {
            return (Ok(changes), issued.into_iter().map(Some).collect());
        }
        let checked = self.tasks[i].check(self.ctx);
        let batching = self.ctx.mode == Mode::Apply && self.opts.obtain_in_parallel > 0;
        let changes = match &checked {
            Ok(changes) if batching && only_obtains(changes) => changes,
            _ => return (checked, Vec::new()),
        };
        let (own, later) = batch(
            self.tasks,
            i,
            changes,
            self.ctx,
            &self.finished,
            self.opts.obtain_in_parallel,
            &mut self.journal,
        );
        self.prefetched.extend(later);
        (checked, own.into_iter().map(Some).collect())
    }

    /// Applies `changes` in order, each certificate order taking what was
    /// obtained for it ahead.
    fn apply(
        &mut self,
        changes: &[Change],
        mut obtained: Vec<Option<Result<Issued, AcmeError>>>,
    ) -> Result<(), TaskError> {
        let mut certificates = obtained.iter_mut();
        changes.iter().try_for_each(|c| {
            let ready = match c.action {
                Action::Obtain(_) => certificates.next().and_then(Option::take),
                _ => None,
            };
            apply(self.ctx, &mut self.journal, &c.action, ready)
        })
    }

    /// `task` failed: a gate (`nginx -t` of a new generation) that says no
    /// puts back every file the run changed.
    fn failed(&mut self, task: &dyn Task, summaries: Vec<ChangeLine>, e: TaskError) {
        let mut reason = e.to_string();
        if task.rolls_back_on_failure() {
            reason.push_str(&roll_back(&mut self.journal, self.ctx));
        }
        self.broken.insert(task.id(), reason.clone());
        self.out
            .push(TaskReport::failed(task.id(), summaries, reason));
    }

    /// `task` made (or in check mode would make) `changes`.
    fn changed(&mut self, task: &dyn Task, changes: &[Change]) {
        let id = task.id();
        // A start after every write that concerns the unit makes its
        // reload redundant; a later write makes it needed again.
        for h in task.notifies() {
            self.started.remove(h.unit());
        }
        self.started
            .extend(changes.iter().filter_map(|c| match &c.action {
                Action::Service {
                    op: ServiceOp::Start | ServiceOp::Restart,
                    unit,
                } => Some(unit.clone()),
                _ => None,
            }));
        self.notified.extend(task.notifies());
        if task.scope() == Scope::Files {
            self.changed_files.insert(id.clone());
        }
        self.would_change.insert(id.clone());
        self.finished.insert(id.clone());
        let mut line = TaskReport::new(id, Status::Changed, changes);
        if self.ctx.mode == Mode::Apply {
            line.claims = changes.iter().flat_map(|c| c.claims.clone()).collect();
        }
        self.out.push(line);
    }

    /// The notified handlers, once each. What is on disk is whole whatever
    /// failed (a generation is live or not; a pair is live or not), so
    /// nginx is reloaded to serve what is ready even when something else
    /// failed. The daemon is not told about a playbook whose run failed.
    fn handlers(&mut self) {
        let hold = !self.broken.is_empty();
        for handler in std::mem::take(&mut self.notified) {
            let name = format!("handler: {}", handler.name());
            if let Some(p) = self.opts.progress {
                p.started(&name);
            }
            if self.started.contains(handler.unit()) {
                let (be, read) = match self.ctx.mode {
                    Mode::Check => ("would be", "reads"),
                    _ => ("was", "read"),
                };
                let why = format!(
                    "{} {be} started by this run and {read} the new files then",
                    handler.unit()
                );
                self.out.push(TaskReport::skipped_named(name, why));
                continue;
            }
            let line = run_handler(handler, self.ctx, hold, &mut self.journal);
            if line.status == Status::Failed
                && self.journal.rolled_back()
                && self.rolled_back_by_handler.is_none()
            {
                self.rolled_back_by_handler = Some(format!(
                    "{} failed: {}",
                    handler.name(),
                    line.reason.as_deref().unwrap_or("?")
                ));
            }
            self.out.push(line);
        }
    }

    /// The report. A reload nginx refused rolled back every file of the
    /// run: what the file tasks changed is no longer there.
    fn finish(self) -> Report {
        let mut report = self.out.report;
        if let Some(why) = &self.rolled_back_by_handler {
            report.mark_rolled_back(&self.changed_files, why);
        }
        report.created_dirs = self.journal.created_dirs();
        report.rolled_back = self.journal.rolled_back();
        report
    }
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
    // Obtained here only when no batch did (see `batch`).
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

fn summaries(changes: &[Change]) -> Vec<ChangeLine> {
    changes.iter().map(ChangeLine::from).collect()
}

/// Carries out one action through the seams. An [`Action::Obtain`] is
/// [`apply`]'s alone, which journals what the CA issued: it never comes
/// here.
fn execute(ctx: &Ctx, action: &Action) -> Result<(), TaskError> {
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
        Action::Obtain(_) => return Err(TaskError::Refused(
            "a certificate order is obtained through the journal (engine::apply), never directly",
        )),
    }
    Ok(())
}

fn run_handler(
    handler: Handler,
    ctx: &Ctx,
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
    if ctx.mode == Mode::Check {
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
