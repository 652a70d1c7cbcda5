//! Stand-ins for the seams, for tests (the `testing` feature, which the
//! crate's own tests turn on; never in a release build): answers come from
//! tables of captured output, and what was asked is recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::clock::Clock;
use super::cmd::{CmdError, Command, Output, Runner};
use super::probe::Probe;
use super::procs::Processes;

/// A runner for unit tests: answers from a table of captured outputs and
/// records every command it was asked to run. A command with no answer,
/// mutating or not, fails: a test never passes while the code runs
/// something nobody expected.
#[derive(Debug, Default)]
pub struct FakeRunner {
    answers: HashMap<String, Output>,
    calls: Mutex<Vec<Command>>,
}

impl FakeRunner {
    /// An empty runner: every command fails until answered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `argv` (joined by spaces) with `out`.
    pub fn answer(mut self, argv: &str, out: Output) -> Self {
        self.answers.insert(argv.to_string(), out);
        self
    }

    /// Every command asked for so far, in order.
    pub fn calls(&self) -> Vec<Command> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// The commands asked for so far that change the host.
    pub fn mutating_calls(&self) -> Vec<Command> {
        self.calls().into_iter().filter(|c| c.mutating).collect()
    }
}

impl Runner for FakeRunner {
    fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        self.calls.lock().expect("calls lock").push(cmd.clone());
        // A command run with mounts (a candidate's `nginx -t`) is answered
        // as `[bind] ARGV` where its exact paths (temporary, hashed) are not
        // in the table.
        let generic = format!("[bind] {}", cmd.argv.join(" "));
        let answer = self.answers.get(&cmd.display()).or_else(|| {
            (!cmd.binds.is_empty())
                .then(|| self.answers.get(&generic))
                .flatten()
        });
        match answer {
            Some(out) => Ok(out.clone()),
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

/// A clock for tests: fixed wall time, and sleeps that only advance it.
#[derive(Debug, Default)]
pub struct FakeClock {
    /// Seconds since the epoch it reports.
    pub now: i64,
    elapsed: Mutex<Duration>,
}

impl FakeClock {
    /// A clock that says it is `now` (Unix seconds).
    pub fn at(now: i64) -> Self {
        FakeClock {
            now,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// How long all sleeps added up to.
    pub fn slept(&self) -> Duration {
        *self.elapsed.lock().expect("clock lock")
    }
}

impl Clock for FakeClock {
    fn unix_now(&self) -> i64 {
        self.now + self.slept().as_secs() as i64
    }

    fn monotonic(&self) -> Duration {
        self.slept()
    }

    fn sleep(&self, d: Duration) {
        *self.elapsed.lock().expect("clock lock") += d;
    }
}

/// A probe for tests: a canned response head per Host, nothing for others.
#[derive(Debug, Default)]
pub struct FakeProbe {
    /// Host → the response head nginx would give.
    pub heads: BTreeMap<String, String>,
    /// (port, server name) → the certificate (DER) nginx would present.
    pub served: BTreeMap<(u16, String), Vec<u8>>,
}

impl Probe for FakeProbe {
    fn head(&self, host: &str, _path: &str) -> Option<String> {
        self.heads.get(host).cloned()
    }

    fn served_certificate(&self, port: u16, server_name: &str) -> Option<Vec<u8>> {
        self.served.get(&(port, server_name.to_string())).cloned()
    }
}

/// A process table for tests: what each pid's children are and when they
/// started.
#[derive(Debug, Default)]
pub struct FakeProcesses {
    /// pid → its children.
    pub children: BTreeMap<u32, BTreeSet<u32>>,
    /// pid → start, in ticks since boot.
    pub started: BTreeMap<u32, u64>,
    /// Ticks since boot, now.
    pub ticks: Option<u64>,
    /// pid → its title.
    pub titles: BTreeMap<u32, String>,
    /// The pids asked to quit, in order.
    pub quit: Mutex<Vec<u32>>,
}

impl Processes for FakeProcesses {
    fn children(&self, pid: u32) -> BTreeSet<u32> {
        self.children.get(&pid).cloned().unwrap_or_default()
    }

    fn start_ticks(&self, pid: u32) -> Option<u64> {
        self.started.get(&pid).copied()
    }

    fn ticks_since_boot(&self) -> Option<u64> {
        self.ticks
    }

    fn title(&self, pid: u32) -> Option<String> {
        self.titles.get(&pid).cloned()
    }

    fn quit_gracefully(&self, pid: u32) -> bool {
        self.quit.lock().unwrap().push(pid);
        true
    }
}
