//! `/var/lib/portico/state.json`: what renewal remembers between runs —
//! failures and when to try again (exponential backoff: 1 minute doubling,
//! capped at 6 hours). A corrupt file never blocks renewal: it is moved
//! aside (kept for a look) and renewal starts afresh, forgetting only
//! back-off and ARI windows.

use crate::paths;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::acme::policy::Window;
use crate::host::root::RootError;
use crate::host::Root;

const FIRST_BACKOFF: i64 = 60;
const MAX_BACKOFF: i64 = 6 * 3600;

/// Why the renewal state could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    /// Reading, writing or moving the file failed.
    #[error(transparent)]
    Fs(#[from] RootError),
    /// The file is not the state as portico writes it (JSON, known fields).
    #[error("{path}:{line}:{column}: not a portico state file ({message})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Line of the first error (from 1).
        line: usize,
        /// Column of the first error (from 1).
        column: usize,
        /// The JSON parser's words.
        message: String,
    },
}

/// Renames a file portico cannot read as its own to `FILE.corrupt-NOW`,
/// kept for a look, so the next run starts afresh; returns the new name.
pub fn move_corrupt_aside(root: &Root, file: &str, now: i64) -> Result<PathBuf, RootError> {
    let aside = PathBuf::from(format!("{file}.corrupt-{now}"));
    root.rename(Path::new(file), &aside)?;
    Ok(aside)
}

/// What is remembered about one certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertState {
    /// Failures in a row since the last success.
    pub failures: u32,
    /// No attempt before this (Unix seconds).
    pub next_attempt: Option<i64>,
    /// What the last failed attempt said; cleared on success.
    pub last_error: Option<String>,
    /// When the certificate was last obtained (Unix seconds).
    pub last_success: Option<i64>,
    /// Drawn once: where inside an ARI window this certificate renews.
    pub jitter: Option<f64>,
    /// The CA's suggested renewal window for the current certificate (ARI).
    #[serde(default)]
    pub ari_window: Option<Window>,
    /// When to ask the CA about the window again (Unix seconds).
    #[serde(default)]
    pub ari_next_check: Option<i64>,
}

/// Everything renewal remembers, as stored in `paths::STATE_FILE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version; only 1 exists.
    pub version: u32,
    /// Each certificate's state, by `[[certificate]]` name.
    pub certificates: BTreeMap<String, CertState>,
}

/// The wait after `failures` failures in a row.
pub fn backoff(failures: u32) -> i64 {
    if failures == 0 {
        return 0;
    }
    let exp = (failures - 1).min(20);
    (FIRST_BACKOFF << exp).min(MAX_BACKOFF)
}

impl State {
    /// Loads the state; no file yet is a fresh state, a corrupt one an error.
    pub fn load(root: &Root) -> Result<State, StateError> {
        let path = Path::new(paths::STATE_FILE);
        let Some(text) = root.read_to_string(path)? else {
            return Ok(State {
                version: 1,
                ..State::default()
            });
        };
        serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Loads the state; a corrupt file is renamed to `state.json.corrupt-NOW`
    /// (left in place when `move_aside` is false: a dry run writes nothing)
    /// and a fresh state returned with a warning saying so.
    pub fn load_or_recover(
        root: &Root,
        now: i64,
        move_aside: bool,
    ) -> Result<(State, Option<String>), StateError> {
        match State::load(root) {
            Ok(s) => Ok((s, None)),
            Err(e @ StateError::Corrupt { .. }) => {
                if !move_aside {
                    return Ok((
                        State {
                            version: 1,
                            ..State::default()
                        },
                        Some(format!("{e}; going on without it (dry run: left in place)")),
                    ));
                }
                let aside = move_corrupt_aside(root, paths::STATE_FILE, now)?;
                Ok((
                    State {
                        version: 1,
                        ..State::default()
                    },
                    Some(format!(
                        "{e}; moved it to {} and started afresh (back-off and ARI windows are \
                         forgotten, certificates are unaffected)",
                        aside.display()
                    )),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the state atomically (0600).
    pub fn save(&self, root: &Root) -> Result<(), StateError> {
        let path = Path::new(paths::STATE_FILE);
        // 0755 like every writer of the state directory: the default ACME
        // webroot is inside it, and nginx must reach it (the file is 0600).
        root.create_dir_all(Path::new(paths::STATE_DIR), 0o755)?;
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        root.write_atomic(path, &json, 0o600)?;
        Ok(())
    }

    /// `name`'s state, created empty the first time.
    pub fn cert(&mut self, name: &str) -> &mut CertState {
        self.certificates.entry(name.to_string()).or_default()
    }

    /// When `name` may be tried next, as seen at `now`: never later than
    /// `now` plus the longest back-off, so a failure recorded while the clock
    /// was far ahead (a year, say) does not hold the certificate for that
    /// long once the clock is put right.
    pub fn next_attempt(&self, name: &str, now: i64) -> Option<i64> {
        self.certificates
            .get(name)
            .and_then(|c| c.next_attempt)
            .map(|t| t.min(now.saturating_add(MAX_BACKOFF)))
    }

    /// May `name` be tried at `now`?
    pub fn may_try(&self, name: &str, now: i64) -> bool {
        self.next_attempt(name, now).is_none_or(|t| now >= t)
    }

    /// Brings back every time recorded beyond what `now` allows (a failure
    /// while the clock was far ahead): a back-off ends within the longest
    /// back-off of now, an ARI check within a day. Saved with the state.
    pub fn clamp_to(&mut self, now: i64) {
        for c in self.certificates.values_mut() {
            if let Some(t) = c.next_attempt.as_mut() {
                *t = (*t).min(now.saturating_add(MAX_BACKOFF));
            }
            if let Some(t) = c.ari_next_check.as_mut() {
                *t = (*t).min(now.saturating_add(86_400));
            }
        }
    }

    /// Records a failed attempt at `now`: one more failure, the next attempt backed off.
    pub fn failed(&mut self, name: &str, now: i64, error: &str) {
        let c = self.cert(name);
        c.failures += 1;
        c.next_attempt = Some(now + backoff(c.failures));
        c.last_error = Some(error.to_string());
    }

    /// Records a success at `now`: failures, back-off and the old ARI window are forgotten.
    pub fn succeeded(&mut self, name: &str, now: i64) {
        let c = self.cert(name);
        c.failures = 0;
        c.next_attempt = None;
        c.last_error = None;
        c.last_success = Some(now);
        // The window was about the certificate just replaced.
        c.ari_window = None;
        c.ari_next_check = None;
    }

    /// Does `name`'s ARI window need asking for at `now`? (A next check
    /// recorded under a clock far ahead counts from `now` at most a day.)
    pub fn ari_due(&self, name: &str, now: i64) -> bool {
        self.certificates
            .get(name)
            .and_then(|c| c.ari_next_check)
            .map(|t| t.min(now.saturating_add(86_400)))
            .is_none_or(|t| now >= t)
    }

    /// The CA did not answer about `name`: ask again at `next_check`,
    /// keeping the window it gave before (if any).
    pub fn ari_unanswered(&mut self, name: &str, next_check: i64) {
        self.cert(name).ari_next_check = Some(next_check);
    }

    /// Records the CA's advice; draws the certificate's place in its window once.
    pub fn ari_checked(&mut self, name: &str, advice: &crate::acme::ari::Advice) {
        let c = self.cert(name);
        c.ari_window = advice.window;
        c.ari_next_check = Some(advice.next_check);
        if c.jitter.is_none() {
            let mut b = [0u8; 8];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
            c.jitter = Some((u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_back_off_recorded_under_a_clock_a_year_ahead_ends_within_six_hours() {
        let mut s = State::default();
        let year = 365 * 86_400;
        let now = 1_800_000_000;
        s.failed("web", now + year, "CA down");
        assert!(!s.may_try("web", now));
        assert_eq!(s.next_attempt("web", now), Some(now + 6 * 3600));
        // What renewal does when it loads the state: the cap is kept.
        s.clamp_to(now);
        assert!(!s.may_try("web", now + 6 * 3600 - 1));
        assert!(s.may_try("web", now + 6 * 3600));
    }

    #[test]
    fn backoff_doubles_from_a_minute_up_to_six_hours() {
        let waits: Vec<i64> = (0..12).map(backoff).collect();
        assert_eq!(&waits[..6], &[0, 60, 120, 240, 480, 960]);
        assert_eq!(backoff(9), 60 * 256);
        assert_eq!(backoff(10), 6 * 3600);
        assert_eq!(backoff(1000), 6 * 3600);
    }

    #[test]
    fn failures_delay_the_next_attempt_and_success_clears_them() {
        let mut s = State::default();
        assert!(s.may_try("web", 0));
        s.failed("web", 1000, "connection refused");
        assert!(!s.may_try("web", 1059));
        assert!(s.may_try("web", 1060));
        s.failed("web", 1060, "connection refused");
        assert_eq!(s.certificates["web"].next_attempt, Some(1180));
        s.succeeded("web", 1200);
        assert_eq!(s.certificates["web"].failures, 0);
        assert!(s.may_try("web", 1200));
    }

    #[test]
    fn a_corrupt_state_file_is_moved_aside_and_renewal_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("var/lib/portico")).unwrap();
        let file = dir.path().join("var/lib/portico/state.json");
        std::fs::write(&file, "{\"version\": 1, \"certificates\": ").unwrap();
        let (state, warning) = State::load_or_recover(&root, 1234, true).unwrap();
        assert_eq!(state.version, 1);
        assert!(state.certificates.is_empty());
        let w = warning.unwrap();
        assert!(w.contains("state.json.corrupt-1234"), "{w}");
        assert!(!file.exists());
        let aside = dir.path().join("var/lib/portico/state.json.corrupt-1234");
        assert!(std::fs::read_to_string(aside)
            .unwrap()
            .contains("certificates"));
        // A good file loads with no warning.
        state.save(&root).unwrap();
        assert!(State::load_or_recover(&root, 1, true).unwrap().1.is_none());
    }

    #[test]
    fn a_corrupt_state_file_is_named_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("var/lib/portico")).unwrap();
        let file = dir.path().join("var/lib/portico/state.json");
        std::fs::write(
            &file,
            "{\"version\": 1,\n \"certificates\": {\"web\": {\"failures\": \"x\"}}}",
        )
        .unwrap();
        let err = State::load(&root).unwrap_err().to_string();
        assert!(err.starts_with("/var/lib/portico/state.json:2:"), "{err}");
        assert!(
            std::fs::read_to_string(&file).unwrap().contains("\"x\""),
            "the file was changed"
        );
        // A missing file is a fresh start, not an error.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(State::load(&root).unwrap().version, 1);
    }
}
