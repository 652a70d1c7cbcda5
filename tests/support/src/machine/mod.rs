//! A freshly booted Debian machine for end-to-end tests: a copy of a cached
//! debootstrap rootfs booted by `systemd-nspawn --boot --private-network`,
//! with systemd as its PID 1, D-Bus, and an offline apt repository.
//! Commands run inside through `nsenter`; the machine is stopped by
//! signalling the nspawn process this harness started, and its copy removed.

// Not every test binary that includes the harness uses pebble or BIND.
#[allow(dead_code)]
pub mod bind;
#[allow(dead_code)]
pub mod pebble;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CACHE: &str = "/var/cache/portico-tests";

/// Builds the pristine rootfs once (a lock keeps parallel tests from racing).
fn ensure_base() -> PathBuf {
    assert!(
        nix::unistd::geteuid().is_root(),
        "booted-machine tests need root (debootstrap, systemd-nspawn, nsenter): run sudo tests/run"
    );
    for tool in [
        "debootstrap",
        "systemd-nspawn",
        "dpkg-scanpackages",
        "nsenter",
        "flock",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(found, "{tool} is missing: tests/run installs debootstrap, systemd-container, dpkg-dev and util-linux");
    }
    std::fs::create_dir_all(CACHE).unwrap();
    let out = Command::new("flock")
        .arg(format!("{CACHE}/lock"))
        .arg(crate::fixtures::repo("tests/machine/build-base.sh"))
        .arg(CACHE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the base rootfs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(CACHE).join("base")
}

pub struct Machine {
    nspawn: Child,
    leader: i32,
    dir: tempfile::TempDir,
}

impl Machine {
    /// Boots a fresh copy of the base with the freshly built portico in
    /// /usr/local/bin. A boot that hangs (seen once in CI, with systemd stuck
    /// before initializing the machine ID while other machines booted) is
    /// torn down and tried once more on a new copy; its console is printed.
    pub fn boot() -> Machine {
        match Self::try_boot() {
            Ok(m) => m,
            Err(console) => {
                eprintln!("machine did not come up; booting a fresh copy. Its console:\n{console}");
                Self::try_boot()
                    .unwrap_or_else(|console| panic!("machine did not come up twice:\n{console}"))
            }
        }
    }

    fn try_boot() -> Result<Machine, String> {
        let base = ensure_base();
        let work = PathBuf::from(CACHE).join("machines");
        std::fs::create_dir_all(&work).unwrap();
        let dir = tempfile::tempdir_in(&work).unwrap();
        let root = dir.path().join("root");
        let cp = Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&root)
            .status()
            .unwrap();
        assert!(cp.success(), "copying the base rootfs");
        std::fs::copy(crate::bin::exe(), root.join("usr/local/bin/portico")).unwrap();
        // Every copy its own identity: systemd makes a random machine ID when
        // neither /etc/machine-id nor D-Bus's copy has one.
        let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
        let mut m = Machine {
            nspawn: Self::spawn(dir.path()),
            leader: 0,
            dir,
        };
        m.leader = m.wait_for_leader();
        match m.wait_until_running() {
            Ok(()) => Ok(m),
            Err(state) => Err(format!("state {state:?}\n{}", m.console())),
        }
    }

    /// systemd-nspawn booting the root under `dir`, its console to a file.
    fn spawn(dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("console.log"))
            .unwrap();
        Command::new("systemd-nspawn")
            .args([
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--boot",
                "-D",
            ])
            .arg(dir.join("root"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn")
    }

    /// Powers the machine off cleanly and boots the same root again: what
    /// was only in memory (firewall rules, running services) is gone, what
    /// is enabled comes back.
    // Not every test binary that includes the harness reboots.
    #[allow(dead_code)]
    pub fn reboot(&mut self) {
        self.shut_down();
        self.nspawn = Self::spawn(self.dir.path());
        self.leader = self.wait_for_leader();
        if let Err(state) = self.wait_until_running() {
            panic!(
                "the machine did not come back up ({state:?}):\n{}",
                self.console()
            );
        }
    }

    /// SIGTERM asks nspawn to shut the machine down cleanly; waits for it.
    fn shut_down(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.nspawn.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }

    /// The container's PID 1, as seen from the host. nspawn's first child is
    /// an intermediate process that sets up the namespaces and exits; the
    /// machine's init is the descendant that is PID 1 in its own namespace
    /// and runs systemd.
    fn wait_for_leader(&mut self) -> i32 {
        let pid = self.nspawn.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                panic!("systemd-nspawn exited ({status}):\n{}", self.console());
            }
            if let Some(init) = descendants(pid).into_iter().find(|p| is_container_init(*p)) {
                return init;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no container init after 60 s:\n{}", self.console());
    }

    fn wait_until_running(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.run(&["systemctl", "is-system-running"]);
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if last == "running" || last == "degraded" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last)
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// The machine's init as the host sees it: `nsenter -t` this PID runs
    /// inside (tests/ansible.rs gives it to Ansible's connection).
    // Not every test binary that includes the harness needs it.
    #[allow(dead_code)]
    pub fn leader(&self) -> i32 {
        self.leader
    }

    /// The machine's root directory, seen from the host.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs argv inside the machine, with a clean environment.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.run_env(&[], argv)
    }

    /// [`Machine::run`] with `env` on top.
    pub fn run_env(&self, env: &[(&str, &str)], argv: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.leader.to_string(), "-a", "env", "-i"]);
        cmd.args([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
        ]);
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(argv);
        cmd.output().expect("nsenter")
    }

    /// Runs argv inside and returns its stdout; panics with its output when it fails.
    pub fn ok(&self, argv: &[&str]) -> String {
        crate::stdout_of_success(argv, self.run(argv))
    }

    /// `request` made inside the machine.
    pub fn https(&self, request: &crate::https::Request) -> crate::https::Answer {
        let argv = request.argv();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.run(&argv);
        crate::https::Answer::parse(out.status.code().unwrap_or(-1), &out.stdout)
    }

    /// Writes a file inside the machine.
    pub fn write(&self, path: &str, content: &str) {
        let p = self.root().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Every descendant of `pid` (children, grandchildren, ...).
fn descendants(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid as i32];
    while let Some(p) = todo.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<i32>().ok())
        {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// PID 1 of a nested PID namespace, running systemd.
fn is_container_init(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let nested_one = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|ids| {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            ids.len() >= 2 && ids.last() == Some(&"1")
        });
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    nested_one && comm.trim() == "systemd"
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.shut_down();
    }
}
