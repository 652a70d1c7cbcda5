//! `promtool check metrics` (Debian's prometheus package, which tests/run
//! installs): Prometheus' own lint of an exposition text.

use std::io::Write;
use std::process::{Command, Stdio};

/// What promtool says is wrong with `text`; `Ok` when it says nothing.
pub fn check_metrics(text: &str) -> Result<(), String> {
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool (Debian's prometheus package, which tests/run installs)");
    if out.status.success() && out.stdout.is_empty() && out.stderr.is_empty() {
        return Ok(());
    }
    Err(format!(
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
