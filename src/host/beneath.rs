//! One directory of the root opened once, to stamp files and read links
//! beneath it by short relative names: checking thousands of
//! certificates' files (src/nothing_due.rs) is then a few system calls
//! each, without walking the whole path from `/` every time. Read-only.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use super::root::{RootError, Stamp};
use super::Root;

/// A directory of the root, opened (`O_PATH`) for lookups beneath it.
pub struct Beneath {
    fd: OwnedFd,
    /// Its path in the root, for errors.
    path: PathBuf,
}

impl Beneath {
    /// Opens `dir` of `root`; `Ok(None)` when it is not there.
    pub fn open(root: &Root, dir: &Path) -> Result<Option<Beneath>, RootError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(root.host_path(dir)?.as_path(), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Beneath {
                fd,
                path: dir.to_path_buf(),
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self::err(dir)(e)),
        }
    }

    /// The [`Stamp`] of `rel` beneath it, not following a final link;
    /// `Ok(None)` when absent.
    pub fn stamp(&self, rel: &Path) -> Result<Option<Stamp>, RootError> {
        match nix::sys::stat::fstatat(&self.fd, rel, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Stamp {
                dev: st.st_dev,
                ino: st.st_ino,
                ctime: st.st_ctime,
                ctime_nsec: st.st_ctime_nsec,
                size: st.st_size as u64,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(err(&self.path.join(rel))(e)),
        }
    }

    /// The target of link `rel` beneath it; `Ok(None)` when absent or
    /// not a link.
    pub fn read_link(&self, rel: &Path) -> Result<Option<PathBuf>, RootError> {
        match nix::fcntl::readlinkat(&self.fd, rel) {
            Ok(target) => Ok(Some(PathBuf::from(target))),
            Err(Errno::ENOENT | Errno::EINVAL) => Ok(None),
            Err(e) => Err(err(&self.path.join(rel))(e)),
        }
    }
}

fn err(path: &Path) -> impl FnOnce(Errno) -> RootError + '_ {
    move |e| RootError::Io {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_links_beneath_agree_with_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("etc/ssl/a")).unwrap();
        std::fs::write(base.join("etc/ssl/a/f"), b"x").unwrap();
        std::os::unix::fs::symlink("../a", base.join("etc/ssl/l")).unwrap();
        let root = Root::new(base);
        let b = Beneath::open(&root, Path::new("/etc/ssl"))
            .unwrap()
            .unwrap();
        assert_eq!(
            b.stamp(Path::new("a/f")).unwrap(),
            root.stamp(Path::new("/etc/ssl/a/f")).unwrap()
        );
        assert!(b.stamp(Path::new("a/f")).unwrap().is_some());
        assert_eq!(b.stamp(Path::new("a/none")).unwrap(), None);
        assert_eq!(
            b.read_link(Path::new("l")).unwrap(),
            Some(PathBuf::from("../a"))
        );
        assert_eq!(b.read_link(Path::new("a/f")).unwrap(), None, "not a link");
        assert_eq!(b.read_link(Path::new("none")).unwrap(), None);
        assert!(Beneath::open(&root, Path::new("/var")).unwrap().is_none());
    }
}
