//! What a run did: one entry per task, a summary, text or JSON.

use serde::Serialize;

use crate::engine::Change;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Changed,
    Unchanged,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub name: String,
    pub status: Status,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub diffs: Vec<String>,
}

impl TaskReport {
    pub fn new(name: String, status: Status, changes: &[Change]) -> Self {
        TaskReport {
            name,
            status,
            changes: changes.iter().map(|c| c.summary.clone()).collect(),
            reason: None,
            diffs: changes.iter().filter_map(|c| c.diff.clone()).collect(),
        }
    }

    /// A handler or step that changed (or would change) the host.
    pub fn planned(name: String, changes: Vec<String>) -> Self {
        TaskReport {
            name,
            status: Status::Changed,
            changes,
            reason: None,
            diffs: Vec::new(),
        }
    }

    pub fn skipped(name: String, reason: String) -> Self {
        TaskReport {
            name,
            status: Status::Skipped,
            changes: Vec::new(),
            reason: Some(reason),
            diffs: Vec::new(),
        }
    }

    pub fn failed(name: String, changes: Vec<String>, reason: String) -> Self {
        TaskReport {
            name,
            status: Status::Failed,
            changes,
            reason: Some(reason),
            diffs: Vec::new(),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub changed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub tasks: Vec<TaskReport>,
    /// Things the operator should know that failed nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    pub fn push(&mut self, t: TaskReport) {
        match t.status {
            Status::Changed => self.changed += 1,
            Status::Unchanged => self.unchanged += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
        }
        self.tasks.push(t);
    }

    /// Human text: a line per task, its changes and diffs indented, a summary.
    pub fn render_text(&self, with_diffs: bool, check: bool) -> String {
        let mut out = String::new();
        for t in &self.tasks {
            let tag = match (t.status, check) {
                (Status::Changed, true) => "would change",
                (Status::Changed, false) => "changed",
                (Status::Unchanged, _) => "ok",
                (Status::Failed, _) => "FAILED",
                (Status::Skipped, _) => "skipped",
            };
            out.push_str(&format!("{tag:>12}  {}\n", t.name));
            for c in &t.changes {
                out.push_str(&format!("{:>12}    - {c}\n", ""));
            }
            if let Some(r) = &t.reason {
                for line in r.lines() {
                    out.push_str(&format!("{:>12}    {line}\n", ""));
                }
            }
            if with_diffs {
                for d in &t.diffs {
                    out.push_str(d);
                    if !d.ends_with('\n') {
                        out.push('\n');
                    }
                }
            }
        }
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
