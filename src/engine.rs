//! The step engine: every task first checks (reads only, returns the changes
//! it would make), then applies exactly those changes. Handlers notified by a
//! change run once, at the end.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use thiserror::Error;

use crate::facts::Facts;
use crate::host::cmd::CmdError;
use crate::host::root::RootError;
use crate::host::systemd::{ServiceOp, SystemdError};
use crate::host::{Command, Root, Runner, Systemd};
use crate::journal::Journal;
use crate::report::{Report, Status, TaskReport};

/// Why a task could not check or apply.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error(transparent)]
    Fs(#[from] RootError),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("{0}")]
    Other(String),
}

/// The one kind of thing a change does to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a directory chain; new directories get `mode`.
    EnsureDir { path: PathBuf, mode: u32 },
    /// Atomically write a file with exactly `mode`.
    WriteFile {
        path: PathBuf,
        content: Vec<u8>,
        mode: u32,
    },
    /// Change the mode of an existing file.
    SetMode { path: PathBuf, mode: u32 },
    /// Change the owner of an existing file.
    SetOwner { path: PathBuf, uid: u32, gid: u32 },
    /// Point a symlink at `target`.
    Symlink { path: PathBuf, target: PathBuf },
    /// Run a mutating command.
    Run(Command),
    /// Write what a command prints to a file, atomically (`iptables-save`).
    Capture {
        cmd: Command,
        path: PathBuf,
        mode: u32,
    },
    /// Start, stop, reload, restart, enable or disable a systemd unit.
    Service { op: ServiceOp, unit: String },
    /// `nginx -t`, reload nginx, and wait until only new workers serve (what
    /// the end-of-run handler does, for a reload the run itself needs).
    ReloadNginx,
    /// Obtain a certificate from an ACME server and write it and its key.
    AcmeIssue(Box<crate::acme::Job>),
}

/// One change a task would make, with a line for the report and, for file
/// writes, a unified diff (key material redacted).
#[derive(Debug, Clone)]
pub struct Change {
    pub summary: String,
    pub action: Action,
    pub diff: Option<String>,
}

/// Something that runs once at the end when any change notified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Handler {
    /// `nginx -t`, then reload nginx.
    ReloadNginx,
    /// Make a running renewal daemon re-read its unit and playbook.
    ReloadPortico,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::ReloadNginx => "reload nginx",
            Handler::ReloadPortico => "reload portico",
        }
    }
}

/// Whether a task touches only files (done under any `--root`) or the
/// running host (packages, firewall, services: skipped under `--root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Files,
    Host,
}

/// What every task sees: the seams and the facts gathered before planning.
pub struct Ctx<'a> {
    pub root: &'a Root,
    pub runner: &'a dyn Runner,
    pub systemd: &'a dyn Systemd,
    pub facts: &'a Facts,
    /// False under `--root DIR`: the tree is not a running host, so packages,
    /// firewall, services and handlers are skipped.
    pub live_host: bool,
}

/// A unit of work. `check` must only read.
pub trait Task {
    /// Unique within a run; dependencies refer to it.
    fn name(&self) -> String;
    fn scope(&self) -> Scope;
    /// Names of the tasks that must have succeeded before this one runs.
    fn after(&self) -> Vec<String> {
        Vec::new()
    }
    /// Handlers to notify when this task changed something.
    fn notifies(&self) -> Vec<Handler> {
        Vec::new()
    }
    /// Reads the host and returns the changes needed; empty when all is right.
    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError>;
    /// When this task fails, every file change of the run is undone (the
    /// `nginx -t` gate: a configuration nginx rejects never stays on disk).
    fn rolls_back_on_failure(&self) -> bool {
        false
    }
    /// Tasks whose results its check reads (`nginx -t` reads the files the
    /// others write): under `--check`, when one of them would change
    /// something, there is nothing meaningful to check yet, and it is skipped.
    fn reads(&self) -> Vec<String> {
        Vec::new()
    }
    /// What the operator should know after this task checked, that fails
    /// nothing (rules that will not survive a reboot). Reads only.
    fn notes(&self, _ctx: &Ctx) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report what would change; touch nothing.
    Check,
    Apply,
}

/// Runs `tasks` in order and then the notified handlers.
pub fn run(tasks: &[Box<dyn Task + '_>], ctx: &Ctx, mode: Mode) -> Report {
    let mut report = Report::default();
    // Tasks that failed, or were skipped because something they need failed.
    let mut broken: HashMap<String, String> = HashMap::new();
    let mut notified: BTreeSet<Handler> = BTreeSet::new();
    let mut journal = Journal::default();
    let mut would_change: BTreeSet<String> = BTreeSet::new();
    for task in tasks {
        let name = task.name();
        if let Some(dep) = task.after().into_iter().find(|d| broken.contains_key(d)) {
            let reason = format!("needs {dep:?}, which did not succeed");
            broken.insert(name.clone(), reason.clone());
            report.push(TaskReport::skipped(name, reason));
            continue;
        }
        if task.scope() == Scope::Host && !ctx.live_host {
            report.push(TaskReport::skipped(
                name,
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
                    name,
                    format!("runs after {dep:?} is applied; nothing to check before that"),
                ));
                continue;
            }
        }
        let changes = match task.check(ctx) {
            Ok(c) => c,
            Err(e) => {
                let mut reason = e.to_string();
                if task.rolls_back_on_failure() {
                    reason.push_str(&roll_back(&mut journal, ctx));
                }
                broken.insert(name.clone(), reason.clone());
                report.push(TaskReport::failed(name, Vec::new(), reason));
                continue;
            }
        };
        report.warnings.extend(task.notes(ctx));
        if changes.is_empty() {
            report.push(TaskReport::new(name, Status::Unchanged, &[]));
            continue;
        }
        if mode == Mode::Apply {
            let applied = changes.iter().try_for_each(|c| {
                journal.record(ctx.root, &c.action)?;
                execute(ctx, &c.action)
            });
            if let Err(e) = applied {
                broken.insert(name.clone(), e.to_string());
                report.push(TaskReport::failed(name, summaries(&changes), e.to_string()));
                continue;
            }
        }
        notified.extend(task.notifies());
        would_change.insert(name.clone());
        report.push(TaskReport::new(name, Status::Changed, &changes));
    }
    // A half-applied run must not go live: a failure holds the handlers.
    let hold = !broken.is_empty();
    for handler in notified {
        report.push(run_handler(handler, ctx, mode, hold, &mut journal));
    }
    report
}

/// systemd re-reads unit files (as `systemctl daemon-reload`: enabling does
/// it), then the daemon gets SIGHUP through its ExecReload.
fn reload_portico(ctx: &Ctx) -> Result<bool, TaskError> {
    if !ctx.systemd.state("portico.service")?.is_active() {
        return Ok(false);
    }
    ctx.systemd.run(ServiceOp::Enable, "portico.service")?;
    ctx.systemd.run(ServiceOp::Reload, "portico.service")?;
    Ok(true)
}

/// Undoes the run's file changes; returns a sentence for the report.
fn roll_back(journal: &mut Journal, ctx: &Ctx) -> String {
    if journal.is_empty() {
        return String::new();
    }
    match journal.roll_back(ctx.root) {
        Ok(n) => format!("\nrolled back: {n} file changes of this run restored byte for byte"),
        Err(e) => format!("\nROLLBACK FAILED: {e}; check the files this run changed"),
    }
}

fn summaries(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| c.summary.clone()).collect()
}

/// Carries out one action through the seams.
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
            crate::tasks::reload::reload_nginx(ctx)?;
        }
        Action::Service { op, unit } => ctx.systemd.run(*op, unit)?,
        Action::AcmeIssue(job) => {
            crate::acme::run(ctx.root, job).map_err(|e| TaskError::Other(e.to_string()))?
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
    if !ctx.live_host {
        return TaskReport::skipped(name, "host-level step; not run under --root".into());
    }
    if something_failed {
        // A half-applied run must not be made live.
        return TaskReport::skipped(name, "a task failed; not reloading".into());
    }
    if mode == Mode::Check {
        // Say what apply would do: a stopped service is not reloaded (the
        // service task starts it, and it reads the new files then).
        let unit = match handler {
            Handler::ReloadNginx => "nginx.service",
            Handler::ReloadPortico => "portico.service",
        };
        return match ctx.systemd.state(unit) {
            Ok(s) if !s.is_active() => TaskReport::skipped(
                name,
                format!("{unit} is not running; it reads the new files when it starts"),
            ),
            _ => TaskReport::planned(name, vec![format!("would {}", handler.name())]),
        };
    }
    match handler {
        Handler::ReloadNginx => match crate::tasks::reload::reload_nginx(ctx) {
            Ok(true) => TaskReport::planned(name, vec!["nginx -t passed; reloaded".into()]),
            Ok(false) => {
                TaskReport::skipped(name, "nginx is not running; nothing to reload".into())
            }
            Err(e) => {
                let reason = format!("{e}{}", roll_back(journal, ctx));
                TaskReport::failed(name, Vec::new(), reason)
            }
        },
        Handler::ReloadPortico => match reload_portico(ctx) {
            Ok(true) => TaskReport::planned(
                name,
                vec!["daemon-reload; SIGHUP to portico.service".into()],
            ),
            Ok(false) => TaskReport::skipped(name, "portico.service is not running".into()),
            Err(e) => TaskReport::failed(name, Vec::new(), e.to_string()),
        },
    }
}
