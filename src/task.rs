//! The task vocabulary: what a task is ([`Task`]), who it is ([`TaskId`]),
//! what it sees ([`Ctx`]), the changes it proposes ([`Change`], [`Action`])
//! and the handlers those notify ([`Handler`]). The engine runs tasks; the
//! tasks, the journal and the report speak this vocabulary, and none of
//! them depends on the engine.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use crate::facts::Facts;
use crate::host::cmd::CmdError;
use crate::host::root::RootError;
use crate::host::systemd::{ServiceOp, SystemdError};
use crate::host::{Clock, Command, Probe, Processes, Root, Runner, Systemd};
use crate::owned::{Owned, Thing};

/// Who a task is: unique within a run, what dependencies name, and (as
/// text) the task's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskId {
    /// Packages installed with the distro's tool (`packages nginx`).
    Packages(Vec<String>),
    /// The firewall's rules for the ports (`firewall ufw 80,443`).
    Firewall {
        /// `ufw`, `firewalld`, `iptables`, `nftables`.
        backend: &'static str,
        /// The ports opened.
        ports: Vec<u16>,
    },
    /// A private CA (`ca clients`).
    Ca(String),
    /// A certificate of the playbook (`certificate web`).
    Certificate(String),
    /// A file portico owns (`file /etc/nginx/...`).
    File(PathBuf),
    /// A symlink portico owns (`link /etc/nginx/sites-enabled/...`).
    Link(PathBuf),
    /// nginx answering ACME challenges for the names.
    ChallengeServed,
    /// `nginx -t`, the gate before anything goes live (`remove`).
    NginxTest,
    /// portico's nginx configuration: a new generation written, tested
    /// with `nginx -t` and made live in one rename (the gate of `apply`).
    NginxConfig,
    /// `nft -c -f /etc/nftables.conf`, the gate before firewall rules load.
    NftCheck,
    /// A systemd unit running and enabled (`service nginx.service`).
    Service(String),
    /// A directory portico makes (`directory /var/lib/portico/acme-challenge`).
    Dir(PathBuf),
    /// Removing something portico made that the playbook no longer asks for.
    Prune(Thing),
    /// `remove --purge`: deleting portico's keys, CAs, account and state.
    Purge,
    /// Keeping a copy of a file portico did not write before taking it over.
    Adopt(PathBuf),
    /// A step named by its kind alone (`firewall`, when the plan refuses it).
    Step(&'static str),
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskId::Packages(p) => write!(f, "packages {}", p.join(" ")),
            TaskId::Firewall { backend, ports } => {
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                write!(f, "firewall {backend} {}", ports.join(","))
            }
            TaskId::Ca(name) => write!(f, "ca {name}"),
            TaskId::Certificate(name) => write!(f, "certificate {name}"),
            TaskId::File(path) => write!(f, "file {}", path.display()),
            TaskId::Link(path) => write!(f, "link {}", path.display()),
            TaskId::ChallengeServed => f.write_str("acme challenges served"),
            TaskId::NginxTest => f.write_str("nginx -t"),
            TaskId::NginxConfig => f.write_str("nginx configuration"),
            TaskId::NftCheck => f.write_str("nft -c -f /etc/nftables.conf"),
            TaskId::Service(unit) => write!(f, "service {unit}"),
            TaskId::Dir(path) => write!(f, "directory {}", path.display()),
            TaskId::Prune(thing) => write!(f, "prune {thing}"),
            TaskId::Purge => f.write_str("purge portico's keys, CAs, ACME account and state"),
            TaskId::Adopt(path) => write!(f, "adopt {}", path.display()),
            TaskId::Step(what) => f.write_str(what),
        }
    }
}

/// Why a task could not check or apply: what failed, and where.
#[derive(Debug, Error)]
pub enum TaskError {
    /// A file under the root.
    #[error(transparent)]
    Fs(#[from] RootError),
    /// A command.
    #[error(transparent)]
    Cmd(#[from] CmdError),
    /// The service manager.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// Making a key or certificate.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A private CA.
    #[error(transparent)]
    Ca(#[from] crate::tls::ca::CaError),
    /// An ACME server or what portico keeps for it.
    #[error(transparent)]
    Acme(#[from] crate::acme::issue::AcmeError),
    /// A certificate or key portico validates but did not make.
    #[error("{}{problem}", path.display())]
    CertFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: crate::facts::cert::CertProblem,
    },
    /// A target portico would write is a symlink.
    #[error("{0}: is a symbolic link; portico refuses to write through it")]
    SymlinkTarget(PathBuf),
    /// What one step's own code found wrong (a firewall backend's, the
    /// daemon unit's, a reload's): its error type lives with it.
    #[error(transparent)]
    Step(Box<dyn std::error::Error + Send + Sync>),
    /// `nginx -t` said no; its own lines.
    #[error("nginx rejected the configuration:\n{0}")]
    NginxRejected(String),
    /// No known package manager.
    #[error("unknown distribution: no package manager to install with (see `portico facts`)")]
    NoPackageManager,
    /// An ACME certificate in a playbook without `[acme]`.
    #[error("an ACME certificate needs an [acme] section")]
    NoAcmeSection,
    /// A step the plan refuses, with why and what to do.
    #[error("{0}")]
    Refused(&'static str),
}

/// The one kind of thing a change does to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a directory chain; new directories get `mode`.
    EnsureDir {
        /// The directory.
        path: PathBuf,
        /// Mode of directories created.
        mode: u32,
    },
    /// Atomically write a file with exactly `mode`.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Its bytes.
        content: Vec<u8>,
        /// Its mode.
        mode: u32,
    },
    /// Change the mode of an existing file or directory.
    SetMode {
        /// The file.
        path: PathBuf,
        /// The new mode.
        mode: u32,
    },
    /// Change the owner of an existing file.
    SetOwner {
        /// The file.
        path: PathBuf,
        /// New owner.
        uid: u32,
        /// New group.
        gid: u32,
    },
    /// Remove a file or symlink (absent is fine).
    Remove {
        /// The file or link.
        path: PathBuf,
    },
    /// Move a file (into the archive).
    Move {
        /// Where it is.
        from: PathBuf,
        /// Where it goes.
        to: PathBuf,
    },
    /// Remove a directory if it is empty (one that is not stays).
    RemoveDir {
        /// The directory.
        path: PathBuf,
    },
    /// Delete a directory and everything in it, for good (`remove
    /// --purge`); the journal cannot undo this, so it runs last.
    RemoveTree {
        /// The directory.
        path: PathBuf,
    },
    /// Point a symlink at `target`.
    Symlink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// Run a mutating command.
    Run(Command),
    /// Write what a command prints to a file, atomically (`iptables-save`).
    Capture {
        /// The command (reads only).
        cmd: Command,
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Start, stop, reload, restart, enable or disable a systemd unit.
    Service {
        /// What to do.
        op: ServiceOp,
        /// The unit.
        unit: String,
    },
    /// `nginx -t`, reload nginx, and wait until only new workers serve (what
    /// the end-of-run handler does, for a reload the run itself needs).
    ReloadNginx,
    /// Write a whole directory at once (a configuration generation): made
    /// under a temporary name and renamed into place.
    WriteTree {
        /// The directory.
        path: PathBuf,
        /// Its files.
        files: Vec<crate::host::root::TreeFile>,
        /// Its mode.
        mode: u32,
    },
    /// `nginx -t` with `candidate` mounted where the live generation is
    /// (in a private mount namespace): the configuration as it would be,
    /// tested before it is made live. `None`: the configuration as it is.
    TestNginx {
        /// The generation directory to test in place of the live one.
        candidate: Option<PathBuf>,
    },
    /// Write a certificate and its key as one pair and make it live (see
    /// [`crate::tasks::pair`]): never one without the other.
    WritePair {
        /// The certificate's name.
        name: String,
        /// The full chain, leaf first (PEM).
        cert: Vec<u8>,
        /// The private key (PEM).
        key: Vec<u8>,
    },
    /// Obtain a certificate from an ACME server. Network only: the engine
    /// turns what it returns into journaled [`Action::WriteFile`]s.
    Obtain(Box<crate::acme::Job>),
}

impl Action {
    /// Its kind, as the JSON report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::EnsureDir { .. } => "mkdir",
            Action::WriteFile { .. } => "write",
            Action::SetMode { .. } => "chmod",
            Action::SetOwner { .. } => "chown",
            Action::Remove { .. } => "remove",
            Action::Move { .. } => "move",
            Action::RemoveDir { .. } => "rmdir",
            Action::RemoveTree { .. } => "remove-tree",
            Action::Symlink { .. } => "symlink",
            Action::Run(_) => "run",
            Action::Capture { .. } => "capture",
            Action::Service { .. } => "service",
            Action::ReloadNginx => "reload",
            Action::WriteTree { .. } => "write-tree",
            Action::TestNginx { .. } => "test-nginx",
            Action::WritePair { .. } => "write-pair",
            Action::Obtain(_) => "obtain",
        }
    }

    /// The path it changes, when it changes one.
    pub fn path(&self) -> Option<String> {
        let p = match self {
            Action::EnsureDir { path, .. }
            | Action::WriteFile { path, .. }
            | Action::SetMode { path, .. }
            | Action::SetOwner { path, .. }
            | Action::Remove { path }
            | Action::RemoveDir { path }
            | Action::RemoveTree { path }
            | Action::Symlink { path, .. }
            | Action::Capture { path, .. }
            | Action::WriteTree { path, .. } => path.clone(),
            Action::Move { from, .. } => from.clone(),
            Action::WritePair { name, .. } => crate::paths::live_link(name),
            _ => return None,
        };
        Some(p.display().to_string())
    }
}

/// One change a task would make, with a line for the report and, for file
/// writes, a unified diff (key material redacted).
#[derive(Debug, Clone)]
pub struct Change {
    /// The report's line for it.
    pub summary: String,
    /// What it does.
    pub action: Action,
    /// A unified diff, for file writes.
    pub diff: Option<String>,
    /// What portico owns once this change is made, when that cannot be
    /// seen afterwards (a firewall port: open before portico came, or
    /// opened by it?).
    pub claims: Vec<Thing>,
}

impl Change {
    /// A change with no diff and no claim.
    pub fn new(summary: String, action: Action) -> Change {
        Change {
            summary,
            action,
            diff: None,
            claims: Vec::new(),
        }
    }

    /// The same, with the diff a report shows for it, when the run shows
    /// diffs (see [`Ctx::diffs`]).
    pub fn with_diff(mut self, ctx: &Ctx, diff: impl FnOnce() -> String) -> Change {
        if ctx.diffs {
            self.diff = Some(diff());
        }
        self
    }

    /// The same, claiming what portico owns once it is made.
    pub fn claiming(mut self, claims: Vec<Thing>) -> Change {
        self.claims = claims;
        self
    }
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
    /// As the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Handler::ReloadNginx => "reload nginx",
            Handler::ReloadPortico => "reload portico",
        }
    }

    /// The unit it reloads.
    pub fn unit(self) -> &'static str {
        match self {
            Handler::ReloadNginx => "nginx.service",
            Handler::ReloadPortico => "portico.service",
        }
    }
}

/// Whether a task touches only files (done under any `--root`) or the
/// running host (packages, firewall, services: skipped under `--root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Files under the root.
    Files,
    /// The running host.
    Host,
}

/// Check or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report what would change; touch nothing.
    Check,
    /// Make the changes.
    Apply,
}

/// What every task sees: the seams and the facts gathered before planning.
pub struct Ctx<'a> {
    /// The filesystem.
    pub root: &'a Root,
    /// Commands.
    pub runner: &'a dyn Runner,
    /// The service manager.
    pub systemd: &'a dyn Systemd,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// The process table.
    pub procs: &'a dyn Processes,
    /// nginx on loopback, asked over HTTP.
    pub probe: &'a dyn Probe,
    /// What the host is.
    pub facts: &'a Facts,
    /// False under `--root DIR`: the tree is not a running host, so packages,
    /// firewall, services and handlers are skipped.
    pub live_host: bool,
    /// Whether portico runs as root (only root can give files back to root).
    pub is_root: bool,
    /// Whether this run only checks: a task whose result depends on what
    /// earlier tasks would make (a site served once its certificate is
    /// there) assumes they made it.
    pub mode: Mode,
    /// Whether the run's report shows diffs (`--diff`). A diff compares
    /// whole files: at thousands of sites, megabytes of text no other
    /// output reads.
    pub diffs: bool,
}

/// A unit of work. `check` must only read.
pub trait Task {
    /// Unique within a run; dependencies refer to it.
    fn id(&self) -> TaskId;
    /// Files only, or the running host.
    fn scope(&self) -> Scope;
    /// The tasks that must have succeeded before this one runs.
    fn after(&self) -> Vec<TaskId> {
        Vec::new()
    }
    /// Handlers to notify when this task changed something.
    fn notifies(&self) -> Vec<Handler> {
        Vec::new()
    }
    /// Why this task is not even checked in this run (a certificate backing
    /// off after failures), if it is not.
    fn hold(&self) -> Option<String> {
        None
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
    fn reads(&self) -> Vec<TaskId> {
        Vec::new()
    }
    /// What the operator should know after this task checked, that fails
    /// nothing (rules that will not survive a reboot). Reads only.
    fn notes(&self, _ctx: &Ctx) -> Vec<String> {
        Vec::new()
    }
    /// What this task makes and portico owns from then on: recorded in the
    /// manifest, and removed when a later playbook no longer asks for it.
    fn owns(&self) -> Vec<Owned> {
        Vec::new()
    }
}

/// A task that runs only after others: the plan's order, kept apart from
/// what the task does (its own [`Task::after`] still counts).
pub struct After<T> {
    /// The task.
    pub task: T,
    /// What must have succeeded first.
    pub after: Vec<TaskId>,
}

impl<T: Task> After<T> {
    /// `task`, once every one of `after` succeeded.
    pub fn new(task: T, after: Vec<TaskId>) -> Box<After<T>> {
        Box::new(After { task, after })
    }
}

impl<T: Task> Task for After<T> {
    fn id(&self) -> TaskId {
        self.task.id()
    }
    fn scope(&self) -> Scope {
        self.task.scope()
    }
    fn after(&self) -> Vec<TaskId> {
        let mut all = self.task.after();
        all.extend(self.after.iter().cloned());
        all
    }
    fn notifies(&self) -> Vec<Handler> {
        self.task.notifies()
    }
    fn hold(&self) -> Option<String> {
        self.task.hold()
    }
    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        self.task.check(ctx)
    }
    fn rolls_back_on_failure(&self) -> bool {
        self.task.rolls_back_on_failure()
    }
    fn reads(&self) -> Vec<TaskId> {
        self.task.reads()
    }
    fn notes(&self, ctx: &Ctx) -> Vec<String> {
        self.task.notes(ctx)
    }
    fn owns(&self) -> Vec<Owned> {
        self.task.owns()
    }
}
