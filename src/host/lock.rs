//! One run at a time per host: every command that changes the host takes
//! an exclusive `flock` on `/run/portico/lock` first (under `--root`, the
//! same path under the root). The kernel drops it when the process ends,
//! however it ends (a `kill -9` included), so a lock is never stale. The
//! holder writes its PID and command into the file, for whoever waits.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use super::Root;

/// Why the lock could not be taken.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another run holds it and this one was told not to wait.
    #[error("another portico run holds {path} ({holder}); not waiting (--no-wait)")]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// Its holder's PID and command.
        holder: String,
    },
    /// Another run held it for longer than this one would wait.
    #[error("another portico run ({holder}) held {path} for {secs} s; giving up (--wait {secs})")]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// Its holder's PID and command.
        holder: String,
        /// How long this run waited.
        secs: u64,
    },
    /// The lock file could not be made or opened.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The host's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct HostLock {
    file: Flock<File>,
    /// The run before this one did not end cleanly (killed): its holder
    /// line was still in the file. Always true under `--root`.
    pub interrupted: bool,
}

impl Drop for HostLock {
    /// A clean end empties the file: the next run knows there is nothing
    /// to sweep. (A killed run leaves its line.)
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// How long to wait for the lock: `None`, not at all.
pub type Wait = Option<Duration>;

/// Takes the host's lock for `what` (`portico apply site.toml`), waiting
/// up to `wait` for another run to finish; `waiting` is told once, with
/// the holder, when this run has to wait.
pub fn acquire(
    root: &Root,
    what: &str,
    wait: Wait,
    waiting: &dyn Fn(&str),
) -> Result<HostLock, LockError> {
    // Under --root the tree is not a running host (an image being built):
    // the lock is the tree's directory itself, so nothing is written into
    // it that would end up in the image.
    let (path, file) = if root.is_host() {
        let path = PathBuf::from(crate::paths::LOCK_FILE);
        let file = open_lock_file(&path)?;
        (path, file)
    } else {
        let path = root.base().to_path_buf();
        let file = File::open(&path).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
        (path, file)
    };
    let describe = |path: &Path| {
        if root.is_host() {
            holder(path)
        } else {
            format!("a run on {}", path.display())
        }
    };
    let io = |path: &Path, source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = file;
    let started = Instant::now();
    let mut told = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                let mut interrupted = true;
                if root.is_host() {
                    let mut before = String::new();
                    let _ = held.read_to_string(&mut before);
                    interrupted = !before.trim().is_empty();
                    let _ = held.set_len(0);
                    let _ = held.rewind();
                    let _ = writeln!(held, "{} {what}", std::process::id());
                }
                return Ok(HostLock {
                    file: held,
                    interrupted,
                });
            }
            Err((f, Errno::EWOULDBLOCK)) => {
                let holder = describe(&path);
                // Told to stop while waiting (the daemon stopping): no wait.
                let wait = if super::stop::stopping() { None } else { wait };
                match wait {
                    None => return Err(LockError::Busy { path, holder }),
                    Some(limit) if started.elapsed() >= limit => {
                        return Err(LockError::Timeout {
                            path,
                            holder,
                            secs: limit.as_secs(),
                        })
                    }
                    Some(_) => {}
                }
                if !told {
                    waiting(&holder);
                    told = true;
                }
                file = f;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, e)) => return Err(io(&path, std::io::Error::from(e))),
        }
    }
}

/// Opens (makes) the host's lock file, in a 0700 directory.
fn open_lock_file(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(io)
}

/// What the holder wrote: `PID command`, shown as `PID N: command`.
fn holder(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    match text.trim().split_once(' ') {
        Some((pid, cmd)) => format!("PID {pid}: {cmd}"),
        None if !text.trim().is_empty() => format!("PID {}", text.trim()),
        None => "a run that has not said who it is yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_the_lock_and_gets_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let held = acquire(&root, "portico apply a.toml", None, &|_| {}).unwrap();
        let err = acquire(&root, "portico apply b.toml", None, &|_| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("a run on {}", dir.path().display())),
            "{text}"
        );
        assert!(
            !dir.path().join("run").exists(),
            "nothing written into the tree"
        );
        let told = std::cell::RefCell::new(Vec::new());
        let err = acquire(&root, "b", Some(Duration::from_millis(120)), &|h| {
            told.borrow_mut().push(h.to_string())
        })
        .unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        assert_eq!(told.borrow().len(), 1, "told once");
        drop(held);
        acquire(&root, "b", None, &|_| {}).unwrap();
    }
}
