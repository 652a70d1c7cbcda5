//! `/var/lib/portico/runs.json`: each command's last run (when it last
//! succeeded and failed, how long it took, what it changed), so the
//! metrics every command writes carry the runs of the others too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::host::root::RootError;
use crate::host::Root;
use crate::paths;

/// One command's last run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// When it last ended well (Unix seconds).
    pub last_success: Option<i64>,
    /// When it last ended otherwise (Unix seconds).
    pub last_failure: Option<i64>,
    /// How long the last run took.
    pub duration_seconds: f64,
    /// Tasks the last run changed.
    pub changed: u64,
    /// Tasks the last run failed.
    pub failed: u64,
}

/// Every command's last run, by command (`apply`, `renew`, `daemon`, `remove`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    /// Format version; only 1 exists.
    pub version: u32,
    /// The runs.
    pub commands: BTreeMap<String, Run>,
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// When it ended (Unix seconds).
    pub at: i64,
    /// How long it took.
    pub duration_seconds: f64,
    /// Tasks changed.
    pub changed: u64,
    /// Tasks failed.
    pub failed: u64,
    /// It did what it was for (its exit code was 0): no task failed, and
    /// for a renewal no certificate is held back by back-off.
    pub succeeded: bool,
}

impl Runs {
    /// The runs on record; none yet, or a file that does not read, is a
    /// fresh record (the metrics lose only the other commands' last runs).
    pub fn load(root: &Root) -> Runs {
        match root.read(Path::new(paths::RUNS_FILE)) {
            Ok(Some(bytes)) => match serde_json::from_slice::<Runs>(&bytes) {
                Ok(r) if r.version == 1 => return r,
                Ok(r) => tracing::warn!(
                    "{}: format version {} (this portico reads 1); starting a new record",
                    paths::RUNS_FILE,
                    r.version
                ),
                Err(e) => tracing::warn!("{}: {e}; starting a new record", paths::RUNS_FILE),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; starting a new record"),
        }
        Runs {
            version: 1,
            commands: BTreeMap::new(),
        }
    }

    /// Records how `command`'s run ended.
    pub fn record(&mut self, command: &str, o: Outcome) {
        let run = self.commands.entry(command.to_string()).or_default();
        if o.succeeded {
            run.last_success = Some(o.at);
        } else {
            run.last_failure = Some(o.at);
        }
        run.duration_seconds = o.duration_seconds;
        run.changed = o.changed;
        run.failed = o.failed;
    }

    /// Drops the renewals' runs (`renew`, `daemon`) from the record on
    /// disk: after `remove` nothing renews on this host.
    pub fn forget_renewals(root: &Root) {
        let mut runs = Runs::load(root);
        let before = runs.commands.len();
        runs.commands
            .retain(|command, _| command != "renew" && command != "daemon");
        if runs.commands.len() != before {
            if let Err(e) = runs.save(root) {
                tracing::warn!("{e}");
            }
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, root: &Root) -> Result<(), RootError> {
        root.create_dir_all(Path::new(paths::STATE_DIR), 0o755)?;
        let mut text = serde_json::to_string_pretty(self).expect("runs serialize");
        text.push('\n');
        root.write_atomic(Path::new(paths::RUNS_FILE), text.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_the_last_success() {
        let mut runs = Runs::default();
        let ok = Outcome {
            at: 100,
            duration_seconds: 1.5,
            changed: 2,
            failed: 0,
            succeeded: true,
        };
        runs.record("renew", ok);
        runs.record(
            "renew",
            Outcome {
                at: 200,
                failed: 1,
                changed: 0,
                succeeded: false,
                ..ok
            },
        );
        let r = &runs.commands["renew"];
        assert_eq!((r.last_success, r.last_failure), (Some(100), Some(200)));
        assert_eq!((r.changed, r.failed), (0, 1));
    }
}
