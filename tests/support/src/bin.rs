//! The portico binary the tests drive, and one way to run it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The binary under test: `PORTICO_BIN` when set (an older build, to show
/// what a test finds there), else the one cargo built beside the test.
pub fn exe() -> PathBuf {
    if let Some(bin) = std::env::var_os("PORTICO_BIN") {
        return PathBuf::from(bin);
    }
    // target/debug/deps/TEST-HASH -> target/debug/portico
    let test = std::env::current_exe().expect("the test's own path");
    let dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test runs from target/PROFILE/deps");
    let bin = dir.join("portico");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build` (cargo test does, for the crate's own tests)",
        bin.display()
    );
    bin
}

/// `portico ARGS`, with what a test adds: an environment, a stdin.
#[derive(Debug, Default)]
pub struct Portico {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
}

impl Portico {
    /// `portico ARGS`.
    pub fn new(args: &[&str]) -> Self {
        Portico {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Self::default()
        }
    }

    /// With `key=value` in its environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// With `input` on its standard input.
    pub fn stdin(mut self, input: &[u8]) -> Self {
        self.stdin = Some(input.to_vec());
        self
    }

    /// Runs it to the end.
    pub fn run(&self) -> Output {
        let mut child = Command::new(exe())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portico binary runs");
        if let (Some(input), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            pipe.write_all(input).expect("portico reads its stdin");
        }
        child.wait_with_output().expect("portico ends")
    }
}

/// `portico ARGS`, run to the end.
pub fn portico(args: &[&str]) -> Output {
    Portico::new(args).run()
}
