//! The only place with side effects: the filesystem under a root, a command
//! runner, systemd, the clock, the process table, the loopback probe and the
//! notify socket, and the few facts about this process. Everything else in
//! portico decides from what these say, so every task can be tested with
//! fakes and without root.

pub mod clock;
pub mod cmd;
pub mod dbus;
pub mod notify;
pub mod probe;
pub mod procs;
pub mod root;
pub mod systemd;

use std::path::{Path, PathBuf};

pub use clock::Clock;
pub use cmd::{Command, Output, Runner};
pub use probe::Probe;
pub use procs::Processes;
pub use root::Root;
pub use systemd::Systemd;

/// The process exit code `main` returns.
pub use std::process::ExitCode;

/// Does this process run as root (effective UID 0)?
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The kernel's host name, when it has one that is text.
pub fn kernel_hostname() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}

/// Reads a file the operator named on the command line (a playbook, a
/// relative path is fine): not under any managed root.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// The directory the operator named, with their own symlinks resolved
/// once (below it portico writes through no symlink): the parent is
/// resolved when the directory does not exist yet.
pub fn resolve_output_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let dir = std::path::absolute(dir)?;
    match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) if !dir.exists() => {
            Ok(std::fs::canonicalize(parent)?.join(name))
        }
        _ => std::fs::canonicalize(&dir),
    }
}

/// This binary's path, as the kernel names it (symlinks resolved).
pub fn current_exe() -> Option<PathBuf> {
    std::env::current_exe().ok()
}
