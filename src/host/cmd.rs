//! The command seam: argv only (never a shell string), output captured.
//!
//! Every command says whether it changes the host, so check mode can prove
//! that nothing mutating ever reached the runner.

use std::collections::HashMap;
use std::process::Command as StdCommand;
use std::sync::Mutex;

use thiserror::Error;

/// A command to run: program, arguments, extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// What the command reads on its standard input (`nft -j -f -`).
    pub stdin: Option<String>,
    /// True when running it changes the host (install, firewall rule, reload).
    pub mutating: bool,
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

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `input` to the command's standard input.
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_string());
        self
    }

    /// The argv as one line, for reports and logs (never executed as such).
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// What a finished command said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: &str) -> Self {
        Output {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

#[derive(Debug, Error)]
pub enum CmdError {
    #[error("`{command}`: cannot run: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// Runs commands. Implementations: [`SystemRunner`] (real), [`FakeRunner`] (tests).
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
                command: cmd.display(),
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
        let spawn_err = |source| CmdError::Spawn {
            command: cmd.display(),
            source,
        };
        let (program, args) = cmd.argv.split_first().ok_or_else(|| {
            spawn_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty argv",
            ))
        })?;
        tracing::debug!(command = %cmd.display(), mutating = cmd.mutating, "run");
        let mut child = StdCommand::new(program)
            .args(args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            use std::io::Write;
            // A command that exits without reading says why on stderr.
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A runner for unit tests: answers from a table of captured outputs and
/// records every command it was asked to run.
#[derive(Debug, Default)]
pub struct FakeRunner {
    answers: HashMap<String, Output>,
    calls: Mutex<Vec<Command>>,
}

impl FakeRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `argv` (joined by spaces) with `out`.
    pub fn answer(mut self, argv: &str, out: Output) -> Self {
        self.answers.insert(argv.to_string(), out);
        self
    }

    pub fn calls(&self) -> Vec<Command> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub fn mutating_calls(&self) -> Vec<Command> {
        self.calls().into_iter().filter(|c| c.mutating).collect()
    }
}

impl Runner for FakeRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        self.calls.lock().expect("calls lock").push(cmd.clone());
        match self.answers.get(&cmd.display()) {
            Some(out) => Ok(out.clone()),
            None if cmd.mutating => Ok(Output::ok("")),
            None => Err(CmdError::Spawn {
                command: cmd.display(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not in the fake's table",
                ),
            }),
        }
    }
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
}
