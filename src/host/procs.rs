//! The `/proc` seam: which processes a master has started and when, for
//! knowing that a reloaded nginx serves the new configuration.

use std::collections::BTreeSet;

/// What portico asks of the process table.
pub trait Processes: Send + Sync {
    /// The children of `pid` (nginx's workers, for its master).
    fn children(&self, pid: u32) -> BTreeSet<u32>;
    /// When `pid` started, in clock ticks since boot.
    fn start_ticks(&self, pid: u32) -> Option<u64>;
    /// Clock ticks since boot, now.
    fn ticks_since_boot(&self) -> Option<u64>;
    /// Its command line as it shows it (nginx retitles its processes:
    /// `nginx: worker process is shutting down`); `None` once it is gone.
    fn title(&self, pid: u32) -> Option<String>;
    /// Asks it to finish what it is doing and exit (SIGQUIT: nginx's
    /// graceful shutdown). False when the signal could not be sent.
    fn quit_gracefully(&self, pid: u32) -> bool;
}

/// Passes a stop on to this process's children (a renewal run): SIGTERM,
/// which they take as "stop between steps".
pub fn terminate_children() {
    let me = std::process::id();
    for child in SystemProcesses.children(me) {
        if let Ok(pid) = i32::try_from(child) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// Field 22 of `/proc/PID/stat`: when the process started, in ticks since
/// boot. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted after its last `)`.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `/proc/uptime`'s first number (seconds since boot) in ticks of `hz`.
pub fn parse_uptime_ticks(uptime: &str, hz: u64) -> Option<u64> {
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some((secs * hz as f64) as u64)
}

/// The real process table, read from `/proc`.
#[derive(Debug, Default)]
pub struct SystemProcesses;

impl Processes for SystemProcesses {
    /// Of every thread: Linux lists a child under the thread that started
    /// it (the daemon starts its renewal from a worker thread).
    fn children(&self, pid: u32) -> BTreeSet<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_else(|_| vec![pid.to_string()]);
        tasks
            .iter()
            .flat_map(|t| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{t}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    fn start_ticks(&self, pid: u32) -> Option<u64> {
        parse_start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn ticks_since_boot(&self) -> Option<u64> {
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
        parse_uptime_ticks(&std::fs::read_to_string("/proc/uptime").ok()?, hz as u64)
    }

    fn title(&self, pid: u32) -> Option<String> {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string(),
        )
    }

    fn quit_gracefully(&self, pid: u32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGQUIT,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_child_started_by_another_thread_is_found() {
        use super::Processes;
        let child = std::thread::spawn(|| {
            std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap()
        })
        .join()
        .unwrap();
        let found = super::SystemProcesses.children(std::process::id());
        let mut child = child;
        let id = child.id();
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&id), "{found:?} lacks {id}");
    }

    use super::*;

    #[test]
    fn stat_and_uptime() {
        let stat = "4242 (nginx: worker (x)) S 4200 4200 4200 0 -1 4194624 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_uptime_ticks("12.50 40.00\n", 100), Some(1250));
        assert_eq!(parse_start_ticks("garbage"), None);
    }
}
