//! A command run from async code (a DNS hook during an order): the same
//! [`Command`] as the blocking runner takes, waited for without blocking
//! the other orders.

use std::process::Stdio;

use super::cmd::{CmdError, Command, Output};

/// How much of its standard error is kept (the rest is read and dropped,
/// so a chatty program never blocks on a full pipe).
const STDERR_KEPT: u64 = 64 * 1024;

/// Runs `cmd` in its own process group, its standard output discarded.
/// Past its timeout the whole group is killed and the result is
/// [`CmdError::TimedOut`]; otherwise its exit and its standard error.
pub async fn run(cmd: &Command) -> Result<Output, CmdError> {
    use tokio::io::AsyncReadExt;
    let spawn_err = |source| cmd.spawn_error(source);
    let (program, args, _t) = cmd.starting()?;
    let mut child = tokio::process::Command::new(program.as_ref())
        .args(args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout stops what it started
        // too (an nsupdate adding a record after cleanup ran).
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(nix::unistd::Pid::from_raw);
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let mut stderr = Vec::new();
    let read = async {
        let _ = (&mut pipe).take(STDERR_KEPT).read_to_end(&mut stderr).await;
        let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    };
    let waited = async {
        let (status, ()) = tokio::join!(child.wait(), read);
        status
    };
    let status = match cmd.timeout {
        None => waited.await,
        Some(limit) => match tokio::time::timeout(limit, waited).await {
            Ok(status) => status,
            Err(_) => {
                if let Some(group) = group {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                return Err(CmdError::TimedOut {
                    command: cmd.shown(),
                    after: limit,
                });
            }
        },
    }
    .map_err(spawn_err)?;
    Ok(Output {
        code: status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
