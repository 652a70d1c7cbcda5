//! The hook provider: programs you give as argv lists add and remove each
//! record, with certbot's manual-hook and acme.sh's dnsapi semantics. No
//! shell is involved; the values come in the environment.

use std::process::Stdio;
use std::time::Duration;

use super::DnsError;

/// How much of a hook's stderr is kept for the error (its last lines are
/// shown).
const STDERR_KEPT: u64 = 64 * 1024;

/// What a hook call is about.
pub struct Call<'a> {
    /// `present` or `cleanup`.
    pub step: &'static str,
    /// The argv.
    pub argv: &'a [String],
    /// The name being validated (without `*.`).
    pub domain: &'a str,
    /// Where the TXT record goes (CNAMEs followed), without the final dot.
    pub txt_name: &'a str,
    /// The record's value.
    pub value: &'a str,
    /// Killed after this long.
    pub timeout: Duration,
}

/// Runs one hook call; a non-zero exit, a signal or the timeout is an error
/// with the end of what it wrote to stderr.
pub async fn run(call: &Call<'_>) -> Result<(), DnsError> {
    let program = call.argv.first().map(String::as_str).unwrap_or_default();
    let fail = |reason: String| DnsError::Hook {
        step: call.step,
        program: program.to_string(),
        record: call.txt_name.to_string(),
        reason,
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&call.argv[1..])
        .env("PORTICO_DOMAIN", call.domain)
        .env("PORTICO_TXT_NAME", call.txt_name)
        .env("PORTICO_TXT_VALUE", call.value)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout stops what it started
        // too (an nsupdate adding the record after cleanup ran).
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(nix::unistd::Pid::from_raw);
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let mut stderr = Vec::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        let _ = (&mut pipe).take(STDERR_KEPT).read_to_end(&mut stderr).await;
        // The rest is read and dropped, so a chatty hook never blocks.
        let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    };
    let waited = tokio::time::timeout(call.timeout, async {
        let (status, ()) = tokio::join!(child.wait(), read);
        status
    })
    .await;
    let status = match waited {
        Err(_) => {
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            return Err(fail(format!(
                "still running after {} s; killed with what it started (hook_timeout)",
                call.timeout.as_secs()
            )));
        }
        Ok(r) => r.map_err(|e| fail(e.to_string()))?,
    };
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(fail(format!(
        "{}{}",
        status,
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::acme::issue::server_text(&tail.join(" | ")))
        }
    )))
}
