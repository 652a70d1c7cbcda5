//! The only place with side effects: the filesystem under a root, a command
//! runner, systemd, the clock, the process table, the loopback probe and the
//! notify socket, and the few facts about this process. Everything else in
//! portico decides from what these say, so every task can be tested with
//! fakes and without root.

pub mod beneath;
pub mod clock;
pub mod cmd;
pub mod cmd_async;
pub mod dbus;
pub mod failpoint;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod lock;
pub mod net;
pub mod notify;
pub mod probe;
pub mod procs;
pub mod root;
pub mod stop;
pub mod systemd;
pub mod tls_probe;

use std::path::{Path, PathBuf};

pub use clock::Clock;
pub use cmd::{Command, Output, Runner, SystemRunner};
pub use probe::Probe;
pub use procs::Processes;
pub use root::Root;
pub use systemd::Systemd;

/// The process exit code `main` returns.
pub use std::process::ExitCode;

/// This process's ID: part of names two runs must never share (an
/// archive directory, a generation written beside another's).
pub fn pid() -> u32 {
    std::process::id()
}

/// Does this process run as root (effective UID 0)?
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A user as a message names it: `uid 33 (www-data)`, or the number
/// alone when this host's user database has no name for it.
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("uid {uid} ({})", crate::untrusted::shown(&u.name)),
        _ => format!("uid {uid}"),
    }
}

/// The kernel's host name, when it has one that is text.
pub fn kernel_hostname() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}

/// Replaces a file the operator named (a playbook `portico fmt` lays
/// out): written beside it and renamed over it, with its mode kept, so a
/// reader sees the old text or the new one, never half of it.
pub fn rewrite_text(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))?;
    tmp.as_file()
        .set_permissions(std::fs::metadata(path)?.permissions())?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Hands the heap's free pages back to the kernel. The daemon parses a
/// playbook of thousands of sites now and then (at start, on SIGHUP, when
/// the file changed) and reads each renewal's report: the parser's tens
/// of megabytes are freed at once, but glibc keeps them mapped, and the
/// resident daemon would stay at that peak for good (100 MiB at 10,000
/// sites, where 12 are in use).
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; any thread
    // may call it at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
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

/// What tells a file apart from the one it replaced: device, inode,
/// modification time (ns) and length. `None` when it cannot be read.
pub fn file_identity(path: &Path) -> Option<(u64, u64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        m.len(),
    ))
}

/// This binary's path, as the kernel names it (symlinks resolved).
pub fn current_exe() -> Option<PathBuf> {
    std::env::current_exe().ok()
}

/// A fresh private directory under the system's temporary directory,
/// deleted when the handle is dropped; the path is plain (letters, digits,
/// `-`), whatever `TMPDIR` says.
pub fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir, (PathBuf, std::io::Error)> {
    let base = std::env::temp_dir();
    let base = if base.to_str().is_some_and(|s| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
    }) {
        base
    } else {
        PathBuf::from("/tmp")
    };
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .map_err(|e| (base, e))
}

/// Is standard error connected to the journal? systemd says so in
/// `JOURNAL_STREAM` (`device:inode` of the stream it gave), which must be
/// the stream stderr is now (a child whose stderr was redirected inherits
/// the variable, not the stream).
pub fn stderr_is_journal() -> bool {
    let Some(want) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    want.to_str() == Some(format!("{}:{}", st.st_dev, st.st_ino).as_str())
}
