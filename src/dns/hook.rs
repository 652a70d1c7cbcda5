//! The hook provider: programs you give as argv lists add and remove each
//! record, with certbot's manual-hook and acme.sh's dnsapi semantics. No
//! shell is involved; the values come in the environment.

use std::time::Duration;

use super::DnsError;
use crate::host::cmd::{CmdError, Command};
use crate::host::cmd_async;

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
    let cmd = Command::mutation(call.argv)
        .env("PORTICO_DOMAIN", call.domain)
        .env("PORTICO_TXT_NAME", call.txt_name)
        .env("PORTICO_TXT_VALUE", call.value)
        .timeout(call.timeout)
        // Its arguments come from the playbook and may hold a token.
        .private_args();
    let out = match cmd_async::run(&cmd).await {
        Ok(out) => out,
        Err(CmdError::TimedOut { after, .. }) => {
            return Err(fail(format!(
                "still running after {} s; killed with what it started (hook_timeout)",
                after.as_secs()
            )))
        }
        Err(CmdError::Spawn { source, .. }) => return Err(fail(format!("cannot start: {source}"))),
        Err(e) => return Err(fail(e.to_string())),
    };
    if out.success() {
        return Ok(());
    }
    let status = out.code.map_or("killed by a signal".to_string(), |c| {
        format!("exit status: {c}")
    });
    let tail: Vec<&str> = out.stderr.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(fail(format!(
        "{}{}",
        status,
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::untrusted::shown(&tail.join(" | ")))
        }
    )))
}
