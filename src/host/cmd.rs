//! The command seam: argv only (never a shell string), output captured.
//!
//! Every command says whether it changes the host, so check mode can prove
//! that nothing mutating ever reached the runner.

use std::process::Command as StdCommand;

use thiserror::Error;

/// A command to run: program, arguments, extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The program, then its arguments.
    pub argv: Vec<String>,
    /// Variables set for it on top of portico's own environment.
    pub env: Vec<(String, String)>,
    /// What the command reads on its standard input (`nft -j -f -`).
    pub stdin: Option<String>,
    /// True when running it changes the host (install, firewall rule, reload).
    pub mutating: bool,
    /// Killed (with everything it started) when it runs longer than this.
    pub timeout: Option<std::time::Duration>,
    /// Its standard error goes straight to portico's own (the journal, for
    /// the daemon) instead of being captured.
    pub stderr_passed_on: bool,
    /// Variables removed from the environment it inherits.
    pub env_removed: Vec<String>,
    /// Its arguments come from a playbook and may hold secrets (a deploy
    /// hook's token): logs and timings name the program only.
    pub private_args: bool,
    /// It runs in a private mount namespace of its own where each
    /// `(source, target)` directory is bind-mounted over the target
    /// (`nginx -t` on a candidate configuration, at the paths nginx reads,
    /// while the host's files stay as they are).
    pub binds: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Command {
    /// A read-only query (`dpkg-query`, `nginx -V`, `ufw status`).
    pub fn query<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            stdin: None,
            mutating: false,
            timeout: None,
            stderr_passed_on: false,
            env_removed: Vec::new(),
            private_args: false,
            binds: Vec::new(),
        }
    }

    /// A command that changes the host.
    pub fn mutation<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            mutating: true,
            ..Command::query(argv)
        }
    }

    /// Sets `key` to `value` in the command's environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `input` to the command's standard input.
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_string());
        self
    }

    /// Kills it, and every process it started, after `limit`.
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Passes its standard error on to portico's own.
    pub fn stderr_passed_on(mut self) -> Self {
        self.stderr_passed_on = true;
        self
    }

    /// Removes `key` from the environment it inherits.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_removed.push(key.into());
        self
    }

    /// Marks its arguments as possibly secret (see [`Command::private_args`]).
    pub fn private_args(mut self) -> Self {
        self.private_args = true;
        self
    }

    /// Runs it with `source` mounted over `target` in a private mount
    /// namespace (see [`Command::binds`]).
    pub fn bind(mut self, source: &std::path::Path, target: &std::path::Path) -> Self {
        self.binds
            .push((source.to_path_buf(), target.to_path_buf()));
        self
    }

    /// The argv as one line, for reports and logs (never executed as such),
    /// after the mounts it runs with.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for (source, target) in &self.binds {
            s.push_str(&format!(
                "[{} over {}] ",
                source.display(),
                target.display()
            ));
        }
        s.push_str(&self.argv.join(" "));
        s
    }

    /// What logs and timings show: the argv, or the program alone when its
    /// arguments may be secret.
    pub fn shown(&self) -> String {
        match (self.private_args, self.argv.first()) {
            (true, Some(program)) => format!(
                "{program} ({} argument{} hidden)",
                self.argv.len() - 1,
                if self.argv.len() == 2 { "" } else { "s" }
            ),
            _ => self.display(),
        }
    }
}

impl Command {
    /// An error naming the command as logs do: the program alone when its
    /// arguments may be secret.
    pub(super) fn spawn_error(&self, source: std::io::Error) -> CmdError {
        CmdError::Spawn {
            command: self.shown(),
            source,
        }
    }

    /// What every runner does as a command starts: its program and
    /// arguments, logged, a failpoint before one that changes the host, and
    /// its timing (kept until it ends).
    pub(super) fn starting(
        &self,
    ) -> Result<(std::borrow::Cow<'_, str>, &[String], crate::timing::Step), CmdError> {
        let (program, args) = self.argv.split_first().ok_or_else(|| {
            self.spawn_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty argv",
            ))
        })?;
        tracing::debug!(command = %self.shown(), mutating = self.mutating, "run");
        if self.mutating {
            super::failpoint::hit("cmd", &self.shown());
        }
        Ok((
            resolve(program),
            args,
            crate::timing::step("cmd", &self.shown()),
        ))
    }
}

/// Where a bare program name is looked for after `PATH`: the system
/// directories a normal user's PATH leaves out on Debian (nginx, iptables
/// and sshd live there), so that `facts` and `validate` find them as any
/// user, as they do as root.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// `program` as it will be started: as given when it names a path or is
/// on `PATH`, else its path in one of [`SBIN`] when it is there.
fn resolve(program: &str) -> std::borrow::Cow<'_, str> {
    if program.contains('/') {
        return program.into();
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if on_path {
        return program.into();
    }
    SBIN.iter()
        .map(|d| format!("{d}/{program}"))
        .find(|p| std::path::Path::new(p).is_file())
        .map_or(program.into(), Into::into)
}

/// What a finished command said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Everything it wrote on standard output.
    pub stdout: String,
    /// Everything it wrote on standard error.
    pub stderr: String,
}

impl Output {
    /// A command that exited 0 having printed `stdout` (for test answers).
    pub fn ok(stdout: &str) -> Self {
        Output {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// Exited 0?
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a command could not be run, or failed.
#[derive(Debug, Error)]
pub enum CmdError {
    /// It could not be started (not installed, empty argv) or waited for.
    #[error("`{command}`: cannot run: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// It ran past its timeout, and was killed with what it started (only
    /// from [`super::cmd_async::run`]; the blocking runner says so in the
    /// output).
    #[error("`{command}`: still running after {} s; killed with what it started", after.as_secs())]
    TimedOut {
        /// The command line.
        command: String,
        /// Its timeout.
        after: std::time::Duration,
    },
    /// It ran and did not exit 0 (only from `run_ok`).
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// `exit N`, or `killed by a signal`.
        status: String,
        /// The last lines of its standard error (standard output when that is empty).
        stderr: String,
    },
}

impl CmdError {
    /// The command could not get the private mount namespace it asked for
    /// (no CAP_SYS_ADMIN, or a sandbox that forbids namespaces).
    pub fn namespaces_refused(&self) -> bool {
        matches!(self, CmdError::Spawn { source, .. }
            if matches!(source.raw_os_error(), Some(nix::libc::EPERM) | Some(nix::libc::EACCES) | Some(nix::libc::ENOSYS) | Some(nix::libc::EINVAL)))
    }
}

/// Runs commands. Implementations: [`SystemRunner`] (real), `fake::FakeRunner` (tests).
pub trait Runner: Send + Sync {
    /// Runs the command and returns its output, whatever its exit code.
    /// `Err` only when it could not be started at all.
    fn run(&self, cmd: &Command) -> Result<Output, CmdError>;

    /// Runs the command and fails unless it exits 0.
    fn run_ok(&self, cmd: &Command) -> Result<Output, CmdError> {
        let out = self.run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(CmdError::Failed {
                command: cmd.shown(),
                status: out
                    .code
                    .map_or("killed by a signal".into(), |c| format!("exit {c}")),
                stderr: last_lines(if out.stderr.trim().is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                }),
            })
        }
    }
}

/// The last few lines of a tool's error output: where the reason usually is.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Runs real processes.
#[derive(Debug, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        let spawn_err = |source| cmd.spawn_error(source);
        let (program, args, _t) = cmd.starting()?;
        let mut command = StdCommand::new(program.as_ref());
        if !cmd.binds.is_empty() {
            private_mounts(&mut command, &cmd.binds).map_err(spawn_err)?;
        }
        if cmd.timeout.is_some() {
            // Its own process group: a timeout kills what it started too.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        for key in &cmd.env_removed {
            command.env_remove(key);
        }
        let mut child = command
            .args(args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(if cmd.stderr_passed_on {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::piped()
            })
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            use std::io::Write;
            // A command that exits without reading says why on stderr.
            let _ = pipe.write_all(input.as_bytes());
        }
        let Some(limit) = cmd.timeout else {
            let out = child.wait_with_output().map_err(spawn_err)?;
            return Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        };
        wait_with_timeout(child, limit).map_err(spawn_err)
    }
}

/// Makes `command` start in a private mount namespace with `binds`
/// mounted. Needs CAP_SYS_ADMIN (root outside a sandbox that forbids
/// namespaces): without it the spawn fails with EPERM, which callers tell
/// apart ([`CmdError::namespaces_refused`]).
fn private_mounts(
    command: &mut StdCommand,
    binds: &[(std::path::PathBuf, std::path::PathBuf)],
) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &std::path::Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))
    };
    // Made before the fork: the child may only call what is safe after it.
    let binds: Vec<(CString, CString)> = binds
        .iter()
        .map(|(s, t)| Ok((cstr(s)?, cstr(t)?)))
        .collect::<std::io::Result<_>>()?;
    let root = cstr(std::path::Path::new("/"))?;
    // SAFETY: between fork and exec the closure only makes system calls
    // (unshare, mount) on memory prepared before the fork.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            // Nothing below may reach the host's mount table.
            mount(
                None::<&std::ffi::CStr>,
                root.as_c_str(),
                None::<&std::ffi::CStr>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&std::ffi::CStr>,
            )?;
            for (source, target) in &binds {
                mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_BIND,
                    None::<&std::ffi::CStr>,
                )?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Waits for `child` up to `limit`, reading its output meanwhile; past
/// the limit its process group is killed and the output says so.
fn wait_with_timeout(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::io::Result<Output> {
    use std::io::Read;
    // Each pipe is read on its own thread, which reports through a channel:
    // a process the command left running in the background (or one that
    // escaped its group) can hold a pipe open for ever, and then its thread
    // is left behind rather than waited for.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        rx
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let code = match status {
        Some(s) => s.code(),
        None => {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            None
        }
    };
    // The command is gone; what it wrote is in the pipes already. A moment
    // for them to drain, not for whatever it left running to finish.
    let grace = std::time::Duration::from_secs(1);
    let stdout = out.recv_timeout(grace).unwrap_or_default();
    let mut stderr = err
        .recv_timeout(std::time::Duration::from_millis(200))
        .unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\nkilled after the timeout of {limit:?}"));
    }
    Ok(Output {
        code,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_argv_without_a_shell() {
        // A shell would expand `$HOME` and run `; false`; argv passes them verbatim.
        let out = SystemRunner
            .run_ok(&Command::query(["echo", "$HOME; false"]))
            .unwrap();
        assert_eq!(out.stdout, "$HOME; false\n");
    }

    #[test]
    fn a_failing_command_names_itself_and_its_error() {
        let err = SystemRunner
            .run_ok(&Command::query(["ls", "/nonexistent-portico"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`ls /nonexistent-portico` failed (exit 2)"),
            "{err}"
        );
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn a_timeout_kills_the_command_and_what_it_started() {
        let started = std::time::Instant::now();
        // The shell starts a child sleeping too: the whole group goes.
        let out = SystemRunner
            .run(
                &Command::query(["sh", "-c", "echo before; sleep 30 & sleep 30"])
                    .timeout(std::time::Duration::from_millis(300)),
            )
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(out.code, None);
        assert_eq!(out.stdout, "before\n");
        assert!(
            out.stderr.ends_with("killed after the timeout of 300ms"),
            "{}",
            out.stderr
        );
        let fast = SystemRunner
            .run(&Command::query(["true"]).timeout(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(fast.success());
    }

    #[test]
    fn a_command_that_leaves_something_running_does_not_hold_portico() {
        let started = std::time::Instant::now();
        let out = SystemRunner
            .run(
                &Command::query(["sh", "-c", "echo done; sleep 30 &"])
                    .timeout(std::time::Duration::from_secs(20)),
            )
            .unwrap();
        assert!(out.success());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
