//! The filesystem seam: every path portico touches lives under a root
//! directory (`/` on a real host, a fixture tree in tests and image builds).
//!
//! Writes are atomic and permission-exact: a temp file in the same directory
//! created `O_EXCL|O_NOFOLLOW` with the final mode, fsync, rename, fsync the
//! directory. A symlink planted at the target is refused, never followed,
//! and so is a symlink anywhere between the root and the target: a
//! symlinked `etc/ssl/private` cannot send a key outside the root, nor a
//! `.well-known` planted in a webroot send a challenge file into `/etc`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// What went wrong touching a file, always with the host path.
#[derive(Debug, Error)]
pub enum RootError {
    /// A read, write, rename or removal failed.
    #[error("{path}: {source}")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The file to write or change is a symlink.
    #[error("{path}: is a symbolic link; refusing to write through it")]
    Symlink {
        /// The host path.
        path: PathBuf,
    },
    /// The path is relative or climbs out with `..`.
    #[error("{path}: not an absolute path inside the managed root")]
    NotAbsolute {
        /// The path as given.
        path: PathBuf,
    },
    /// A directory on the way to the file is a symlink.
    #[error(
        "{path}: {link} is a symbolic link; portico does not write through symlinked directories"
    )]
    SymlinkDir {
        /// The host path written to.
        path: PathBuf,
        /// The symlinked directory (a host path).
        link: PathBuf,
    },
    /// Something is already where a new file must be created.
    #[error("{path}: already exists; not replacing a file this run did not create")]
    Exists {
        /// The host path.
        path: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootError + '_ {
    move |source| RootError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Mode and ownership of an existing file, as far as portico compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The path itself is a symlink (not followed).
    pub is_symlink: bool,
    /// A directory.
    pub is_dir: bool,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// A hook that lets tests make a write fail at the rename, to prove that an
/// interrupted write leaves the old file intact.
pub type RenameHook = fn(&Path) -> io::Result<()>;

/// The filesystem under a root directory.
#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
    before_rename: Option<RenameHook>,
}

impl Root {
    /// The filesystem under `base` (`/` for the host itself).
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Root {
            base: base.into(),
            before_rename: None,
        }
    }

    /// True when this root is the real host's `/`.
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    /// The directory standing for `/`.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Test seam: run `hook` just before each rename; an error aborts the write.
    pub fn with_rename_hook(mut self, hook: RenameHook) -> Self {
        self.before_rename = Some(hook);
        self
    }

    /// Maps an absolute host path (`/etc/nginx`) to where it lives under the root.
    pub fn host_path(&self, path: &Path) -> Result<PathBuf, RootError> {
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(RootError::NotAbsolute {
                path: path.to_path_buf(),
            });
        }
        Ok(self.base.join(path.strip_prefix("/").unwrap_or(path)))
    }

    /// Maps `path` like [`Root::host_path`] for a write: refuses when any
    /// directory between the root and `path` is a symlink (the last
    /// component is the caller's business).
    fn write_path(&self, path: &Path) -> Result<PathBuf, RootError> {
        let full = self.host_path(path)?;
        let mut dir = self.base.clone();
        let parents: Vec<Component> = path.components().collect();
        for c in parents.iter().take(parents.len().saturating_sub(1)) {
            if let Component::Normal(name) = c {
                dir.push(name);
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.file_type().is_symlink() => {
                        let link =
                            Path::new("/").join(dir.strip_prefix(&self.base).unwrap_or(&dir));
                        return Err(RootError::SymlinkDir {
                            path: path.to_path_buf(),
                            link,
                        });
                    }
                    // Missing: nothing below it exists either.
                    Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        Ok(full)
    }

    /// The names in a directory, sorted; empty when it does not exist.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<String>, RootError> {
        let p = self.host_path(path)?;
        let entries = match fs::read_dir(&p) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(path)(e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(io_err(path))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Reads a file; `Ok(None)` when it does not exist.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, RootError> {
        let p = self.host_path(path)?;
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Reads a text file; `Ok(None)` when it does not exist.
    pub fn read_to_string(&self, path: &Path) -> Result<Option<String>, RootError> {
        Ok(self
            .read(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Metadata without following a final symlink; `Ok(None)` when absent.
    pub fn meta(&self, path: &Path) -> Result<Option<FileMeta>, RootError> {
        let p = self.host_path(path)?;
        match fs::symlink_metadata(&p) {
            Ok(m) => Ok(Some(FileMeta {
                mode: m.permissions().mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                is_symlink: m.file_type().is_symlink(),
                is_dir: m.is_dir(),
                modified: m.mtime(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Is anything at `path` (a symlink counts, even a dangling one)?
    pub fn exists(&self, path: &Path) -> bool {
        matches!(self.meta(path), Ok(Some(_)))
    }

    /// Target of a symlink, or `None` when `path` is not a symlink.
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, RootError> {
        match self.meta(path)? {
            Some(m) if m.is_symlink => {
                let p = self.host_path(path)?;
                fs::read_link(&p).map(Some).map_err(io_err(path))
            }
            _ => Ok(None),
        }
    }

    /// Creates a directory chain; new directories get `mode`, existing ones
    /// are left as they are (never loosened).
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), RootError> {
        if path == Path::new("/") {
            return Ok(());
        }
        let p = self.write_path(path)?;
        match self.meta(path)? {
            Some(m) if m.is_symlink => {
                return Err(RootError::SymlinkDir {
                    path: path.to_path_buf(),
                    link: path.to_path_buf(),
                })
            }
            Some(m) if m.is_dir => return Ok(()),
            _ => {}
        }
        if let Some(parent) = path.parent() {
            if parent != path {
                self.create_dir_all(parent, 0o755)?;
            }
        }
        match fs::DirBuilder::new().mode(mode).create(&p) {
            Ok(()) => {
                // The umask may have masked bits off: set exactly what was asked.
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io_err(path))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Writes `bytes` atomically with exactly `mode`.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), RootError> {
        let target = self.write_path(path)?;
        if let Some(m) = self.meta(path)? {
            if m.is_symlink {
                return Err(RootError::Symlink {
                    path: path.to_path_buf(),
                });
            }
        }
        let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (tmp, mut file) = create_temp(&dir, &name, mode).map_err(io_err(path))?;
        let result = (|| {
            file.write_all(bytes)?;
            // Exact mode even where the umask dropped bits at creation.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.sync_all()?;
            if let Some(hook) = self.before_rename {
                hook(&target)?;
            }
            fs::rename(&tmp, &target)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_err(path))
    }

    /// Creates a new file with exactly `mode`; fails when anything (even a
    /// dangling symlink) is already at `path`. For files a run must be able
    /// to remove afterwards knowing it made them (ACME challenge answers).
    pub fn create_new(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        let mut file = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&p)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RootError::Exists {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        let written = (|| {
            file.write_all(bytes)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&p);
            return Err(io_err(path)(e));
        }
        Ok(())
    }

    /// Makes `path` a symlink to `target`, replacing an existing symlink.
    pub fn symlink(&self, path: &Path, target: &Path) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        if let Some(m) = self.meta(path)? {
            if !m.is_symlink {
                return Err(RootError::Io {
                    path: path.to_path_buf(),
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a symlink; not replacing it",
                    ),
                });
            }
            fs::remove_file(&p).map_err(io_err(path))?;
        }
        std::os::unix::fs::symlink(target, &p).map_err(io_err(path))
    }

    /// Changes the mode of an existing file (never follows a symlink).
    pub fn set_mode(&self, path: &Path, mode: u32) -> Result<(), RootError> {
        match self.meta(path)? {
            Some(m) if m.is_symlink => Err(RootError::Symlink {
                path: path.to_path_buf(),
            }),
            _ => {
                let p = self.write_path(path)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io_err(path))
            }
        }
    }

    /// Changes the owner of an existing file (never follows a symlink).
    pub fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(io_err(path))
    }

    /// Renames a file within the root (never through symlinked directories).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), RootError> {
        let (f, t) = (self.write_path(from)?, self.write_path(to)?);
        fs::rename(&f, &t).map_err(io_err(from))
    }

    /// Moves a file or symlink, also across filesystems (`/etc` to a
    /// separate `/var`): where rename says EXDEV, the bytes are written at
    /// the target (atomically, same mode) and then the source removed.
    pub fn move_file(&self, from: &Path, to: &Path) -> Result<(), RootError> {
        let (f, t) = (self.write_path(from)?, self.write_path(to)?);
        match fs::rename(&f, &t) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {}
            other => return other.map_err(io_err(from)),
        }
        match self.read_link(from)? {
            Some(target) => self.symlink(to, &target)?,
            None => {
                let meta = self.meta(from)?.ok_or_else(|| RootError::Io {
                    path: from.to_path_buf(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                })?;
                let bytes = self.read(from)?.unwrap_or_default();
                self.write_atomic(to, &bytes, meta.mode)?;
            }
        }
        self.remove(from)
    }

    /// Removes an empty directory; absent is fine, and so is one that is no
    /// longer empty (something else put a file there): it stays.
    pub fn remove_empty_dir(&self, path: &Path) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        match fs::remove_dir(&p) {
            Err(e)
                if e.kind() != io::ErrorKind::NotFound
                    && e.kind() != io::ErrorKind::DirectoryNotEmpty =>
            {
                Err(io_err(path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Deletes a directory and everything under it, never following a
    /// symlink (one inside is removed, not what it points to); absent is fine.
    pub fn remove_tree(&self, path: &Path) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        match fs::remove_dir_all(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
            _ => Ok(()),
        }
    }

    /// Removes a file or symlink; absent is fine.
    pub fn remove(&self, path: &Path) -> Result<(), RootError> {
        let p = self.write_path(path)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
            _ => Ok(()),
        }
    }
}

fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.portico-{pid}-{attempt}"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_with_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        root.create_dir_all(Path::new("/etc/ssl/private"), 0o700)
            .unwrap();
        root.write_atomic(Path::new("/etc/ssl/private/k.pem"), b"secret", 0o600)
            .unwrap();
        let m = root
            .meta(Path::new("/etc/ssl/private/k.pem"))
            .unwrap()
            .unwrap();
        assert_eq!(m.mode, 0o600);
        let d = root.meta(Path::new("/etc/ssl/private")).unwrap().unwrap();
        assert_eq!(d.mode, 0o700);
        assert_eq!(
            root.read(Path::new("/etc/ssl/private/k.pem"))
                .unwrap()
                .unwrap(),
            b"secret"
        );
    }

    #[test]
    fn refuses_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::write(dir.path().join("victim"), b"untouched").unwrap();
        std::os::unix::fs::symlink(dir.path().join("victim"), dir.path().join("key.pem")).unwrap();
        let err = root
            .write_atomic(Path::new("/key.pem"), b"new", 0o600)
            .unwrap_err();
        assert!(matches!(err, RootError::Symlink { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("victim")).unwrap(),
            b"untouched"
        );
    }

    #[test]
    fn a_failed_rename_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        root.write_atomic(Path::new("/cert.pem"), b"old", 0o644)
            .unwrap();
        let failing = root
            .clone()
            .with_rename_hook(|_| Err(io::Error::other("simulated crash before rename")));
        assert!(failing
            .write_atomic(Path::new("/cert.pem"), b"new", 0o644)
            .is_err());
        assert_eq!(root.read(Path::new("/cert.pem")).unwrap().unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn never_writes_through_a_symlinked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("root"));
        std::fs::create_dir_all(dir.path().join("root/etc/ssl")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("root/etc/ssl/private"))
            .unwrap();
        let key = Path::new("/etc/ssl/private/k.pem");
        for result in [
            root.write_atomic(key, b"secret", 0o600),
            root.create_new(key, b"secret", 0o600),
            root.create_dir_all(Path::new("/etc/ssl/private/sub"), 0o700),
            root.create_dir_all(Path::new("/etc/ssl/private"), 0o700),
            root.symlink(key, Path::new("/x")),
            root.remove(key),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, RootError::SymlinkDir { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("/etc/ssl/private is a symbolic link"),
                "{err}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn create_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        root.create_new(Path::new("/t"), b"one", 0o644).unwrap();
        let err = root.create_new(Path::new("/t"), b"two", 0o644).unwrap_err();
        assert!(matches!(err, RootError::Exists { .. }), "{err}");
        assert_eq!(root.read(Path::new("/t")).unwrap().unwrap(), b"one");
    }

    #[test]
    fn rejects_relative_and_parent_paths() {
        let root = Root::new("/tmp/x");
        assert!(root.host_path(Path::new("etc/x")).is_err());
        assert!(root.host_path(Path::new("/etc/../../x")).is_err());
        assert_eq!(
            root.host_path(Path::new("/etc/nginx")).unwrap(),
            PathBuf::from("/tmp/x/etc/nginx")
        );
    }
}
