//! What a run did: one entry per task, a summary, text or JSON.

use serde::Serialize;

use crate::task::{Change, TaskId};

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It changed the host (in check mode: it would).
    Changed,
    /// The host was already as wanted.
    Unchanged,
    /// It failed; `reason` says why.
    Failed,
    /// It did not run; `reason` says why.
    Skipped,
}

/// One change in a report: what kind, to which path, and the sentence
/// the text report shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeLine {
    /// `write`, `mkdir`, `remove`, `service`, `run`, ... (see
    /// [`crate::task::Action::kind`]); `note` for a handler's line.
    pub action: &'static str,
    /// The path it changes; null when it changes none.
    pub path: Option<String>,
    /// What it does, as the text report says it.
    pub reason: String,
}

impl ChangeLine {
    /// A line that names no path (a handler's, a hook's).
    pub fn note(reason: String) -> Self {
        ChangeLine {
            action: "note",
            path: None,
            reason,
        }
    }
}

impl From<&Change> for ChangeLine {
    fn from(c: &Change) -> Self {
        ChangeLine {
            action: c.action.kind(),
            path: c.action.path(),
            reason: c.summary.clone(),
        }
    }
}

/// One line of a report: a task or handler and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task's line (its id as text, or `handler: ...`).
    pub name: String,
    /// The task it is about (handlers have none).
    #[serde(skip)]
    pub id: Option<TaskId>,
    /// How it ended.
    pub status: Status,
    /// The changes it made (or would make).
    pub changes: Vec<ChangeLine>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unified diffs of the files it wrote (with `--diff`; in JSON only
    /// then).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<String>,
    /// What its applied changes made portico the owner of.
    #[serde(skip)]
    pub claims: Vec<crate::owned::Thing>,
}

impl TaskReport {
    /// What a task did: its changes (with their diffs), or nothing.
    pub fn new(id: TaskId, status: Status, changes: &[Change]) -> Self {
        TaskReport {
            name: id.to_string(),
            id: Some(id),
            status,
            changes: changes.iter().map(ChangeLine::from).collect(),
            reason: None,
            diffs: changes.iter().filter_map(|c| c.diff.clone()).collect(),
            claims: Vec::new(),
        }
    }

    /// A handler or step that changed (or would change) the host.
    pub fn planned(name: String, changes: Vec<String>) -> Self {
        TaskReport {
            name,
            id: None,
            status: Status::Changed,
            changes: changes.into_iter().map(ChangeLine::note).collect(),
            reason: None,
            diffs: Vec::new(),
            claims: Vec::new(),
        }
    }

    /// A task that did not run, and why.
    pub fn skipped(id: TaskId, reason: String) -> Self {
        TaskReport {
            id: Some(id.clone()),
            ..Self::skipped_named(id.to_string(), reason)
        }
    }

    /// A handler or step that did not run, and why.
    pub fn skipped_named(name: String, reason: String) -> Self {
        TaskReport {
            name,
            id: None,
            status: Status::Skipped,
            changes: Vec::new(),
            reason: Some(reason),
            diffs: Vec::new(),
            claims: Vec::new(),
        }
    }

    /// A task that failed: what it had done, and why.
    pub fn failed(id: TaskId, changes: Vec<ChangeLine>, reason: String) -> Self {
        TaskReport {
            id: Some(id.clone()),
            ..Self::failed_named(id.to_string(), changes, reason)
        }
    }

    /// A handler or step that failed.
    pub fn failed_named(name: String, changes: Vec<ChangeLine>, reason: String) -> Self {
        TaskReport {
            name,
            id: None,
            status: Status::Failed,
            changes,
            reason: Some(reason),
            diffs: Vec::new(),
            claims: Vec::new(),
        }
    }
}

/// Told about each task as a run goes (the text report streams this way).
pub trait Progress {
    /// A task (by its report line's name) is about to be checked or applied.
    fn started(&self, _name: &str) {}
    /// A task or handler finished.
    fn finished(&self, _task: &TaskReport) {}
}

/// The version of the JSON reports' shape (`"schema": 1`): a field is
/// added without changing it; one renamed or removed changes it.
pub const SCHEMA: u32 = 1;

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The JSON's shape ([`SCHEMA`]).
    pub schema: u32,
    /// `check` (nothing was touched) or `apply`.
    pub mode: &'static str,
    /// The playbook the run used (a path, or the embedded default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    /// How many changed the host (or would, in check mode).
    pub changed: usize,
    /// How many found it as wanted.
    pub unchanged: usize,
    /// How many failed.
    pub failed: usize,
    /// How many did not run.
    pub skipped: usize,
    /// Every task and handler, in the order run.
    pub tasks: Vec<TaskReport>,
    /// Things the operator should know that failed nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Renewal: the certificates past their renewal time this run did not
    /// try, backing off after failures (also among the warnings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backing_off: Vec<String>,
    /// Renewal: certificates waiting for their account's order budget or
    /// rate-limit hold, and when the next order may go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueReport>,
    /// Directories the run created and kept.
    #[serde(skip)]
    pub created_dirs: Vec<std::path::PathBuf>,
    /// A gate failed and the run's file changes were put back: what its
    /// file tasks report as changed is not on disk.
    pub rolled_back: bool,
}

/// The certificates a renewal left waiting for their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueReport {
    /// How many.
    pub certificates: usize,
    /// When the next order may go (RFC 3339).
    pub next_order_at: String,
    /// The same, Unix seconds (what the daemon wakes for).
    pub next_order_at_unix: i64,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            schema: SCHEMA,
            mode: "apply",
            playbook: None,
            changed: 0,
            unchanged: 0,
            failed: 0,
            skipped: 0,
            tasks: Vec::new(),
            warnings: Vec::new(),
            backing_off: Vec::new(),
            queue: None,
            created_dirs: Vec::new(),
            rolled_back: false,
        }
    }
}

impl Report {
    /// Adds a task's line and counts its status.
    pub fn push(&mut self, t: TaskReport) {
        match t.status {
            Status::Changed => self.changed += 1,
            Status::Unchanged => self.unchanged += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
        }
        self.tasks.push(t);
    }

    /// Marks the failed tasks whose reason `waits` says only wait skipped,
    /// not failed (their reason stays).
    pub fn mark_skipped(&mut self, waits: impl Fn(&str) -> bool) {
        for t in &mut self.tasks {
            if t.status == Status::Failed && t.reason.as_deref().is_some_and(&waits) {
                t.status = Status::Skipped;
                self.failed -= 1;
                self.skipped += 1;
            }
        }
    }

    /// Marks the changed tasks named in `undone` failed with `why`: their
    /// changes were rolled back after they were reported (a reload nginx
    /// refused). A renewal that was thrown away is not a success.
    pub fn mark_rolled_back(
        &mut self,
        undone: &std::collections::BTreeSet<crate::task::TaskId>,
        why: &str,
    ) {
        for t in &mut self.tasks {
            let hit =
                t.status == Status::Changed && t.id.as_ref().is_some_and(|id| undone.contains(id));
            if hit {
                t.status = Status::Failed;
                t.reason = Some(format!("rolled back: {why}"));
                self.changed -= 1;
                self.failed += 1;
            }
        }
    }

    /// Human text: a line per task, its changes and diffs indented, a summary.
    pub fn render_text(&self, with_diffs: bool, check: bool) -> String {
        let mut out = String::new();
        if let Some(p) = &self.playbook {
            out.push_str(&format!("playbook: {p}\n"));
        }
        for t in &self.tasks {
            out.push_str(&t.render_text(with_diffs, check));
        }
        out.push_str(&self.render_summary(check));
        out
    }

    /// The warnings and the counts, as the end of the text report.
    pub fn render_summary(&self, check: bool) -> String {
        let mut out = String::new();
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&format!(
            "{} changed, {} unchanged, {} failed, {} skipped{}\n",
            self.changed,
            self.unchanged,
            self.failed,
            self.skipped,
            if check {
                " (check mode: nothing was touched)"
            } else {
                ""
            }
        ));
        out
    }
}

impl TaskReport {
    /// Its lines in the text report: status and name, then its changes,
    /// reason and (with `with_diffs`) diffs, indented.
    pub fn render_text(&self, with_diffs: bool, check: bool) -> String {
        let mut out = String::new();
        let tag = match (self.status, check) {
            (Status::Changed, true) => "would change",
            (Status::Changed, false) => "changed",
            (Status::Unchanged, _) => "unchanged",
            (Status::Failed, _) => "FAILED",
            (Status::Skipped, _) => "skipped",
        };
        out.push_str(&format!("{tag:>12}  {}\n", self.name));
        for c in &self.changes {
            out.push_str(&format!("{:>12}    - {}\n", "", c.reason));
        }
        if let Some(r) = &self.reason {
            for line in r.lines() {
                out.push_str(&format!("{:>12}    {line}\n", ""));
            }
        }
        if with_diffs {
            for d in &self.diffs {
                out.push_str(d);
                if !d.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out
    }
}
