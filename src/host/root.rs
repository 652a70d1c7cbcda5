//! The filesystem seam: every path portico touches lives under a root
//! directory (`/` on a real host, a fixture tree in tests and image builds).
//!
//! Every write is made relative to open directory handles: from the root,
//! each directory on the way is opened with `O_NOFOLLOW | O_DIRECTORY`
//! (created with `mkdirat` and given its mode with `fchmod` on the handle
//! when missing), and the last step (`openat`, `renameat`, `symlinkat`,
//! `unlinkat`, `fchownat`, `fchmod`) works on that handle. Nothing is done
//! by path after a check: a directory swapped for a symlink between two
//! steps (a service user racing portico in a webroot it owns) makes the
//! step fail, never land outside the root.
//!
//! Writes are atomic and permission-exact: a temp file in the same
//! directory created `O_EXCL|O_NOFOLLOW` with the final mode, fsync,
//! rename, fsync the directory. Symlinks and whole directories (a nginx
//! generation, a certificate's key pair) are made the same way: under a
//! temporary name, then renamed into place, so a reader (nginx, after a
//! kill and a reboot) sees the old one or the new one, never half of one.
//!
//! Reads follow symlinks: portico's own layout uses them (a certificate's
//! `live` link), and a read cannot change anything.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;

use super::failpoint;

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

impl FileMeta {
    fn of(m: &fs::Metadata) -> Self {
        FileMeta {
            mode: m.permissions().mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            is_symlink: m.file_type().is_symlink(),
            is_dir: m.is_dir(),
            modified: m.mtime(),
        }
    }
}

/// A file's identity and its last change: writing, replacing, chmod or
/// chown changes it (the kernel sets `ctime`; no one can set it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// Device and inode: a file renamed over it is another file.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// Last status change, seconds.
    pub ctime: i64,
    /// Last status change, nanoseconds.
    pub ctime_nsec: i64,
    /// Size in bytes.
    pub size: u64,
}

/// One file of a directory written whole ([`Root::write_tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Its path inside the directory (`snippets/tls.conf`): plain names,
    /// no `..`, no leading `/`.
    pub rel: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its mode.
    pub mode: u32,
}

/// What writes a file's content into it (called once, on the new file).
pub type Fill<'a> = &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>;

/// The filesystem under a root directory.
#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
}

/// An open directory and the host path it stands for (for errors).
struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno_err(path: &Path) -> impl FnOnce(Errno) -> RootError + '_ {
    move |e| RootError::Io {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

fn mode_of(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as nix::libc::mode_t)
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// A name for a temporary sibling of `name` (`.name.portico-PID-N`):
/// A new, empty directory beside `name` in `parent` under a temporary
/// name (mode `dir_mode`): returns that name.
fn temp_dir(parent: &Dir, name: &str, path: &Path, dir_mode: u32) -> Result<String, RootError> {
    for attempt in 0..100u32 {
        let tmp = temp_name(name, attempt);
        match nix::sys::stat::mkdirat(&parent.fd, tmp.as_str(), mode_of(dir_mode)) {
            Ok(()) => return Ok(tmp),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(errno_err(path)(e)),
        }
    }
    Err(RootError::Exists {
        path: path.to_path_buf(),
    })
}

/// Writes `files` into the new directory `tmp` of `parent` (creating
/// their subdirectories), each file and directory synced.
fn fill_tree(
    parent: &Dir,
    tmp: &str,
    path: &Path,
    files: &[TreeFile],
    dir_mode: u32,
) -> Result<(), RootError> {
    let fd =
        nix::fcntl::openat(&parent.fd, tmp, DIR_FLAGS, Mode::empty()).map_err(errno_err(path))?;
    nix::sys::stat::fchmod(&fd, mode_of(dir_mode)).map_err(errno_err(path))?;
    let top = Dir {
        fd,
        path: parent.path.join(tmp),
    };
    let mut subdirs: BTreeMap<String, Dir> = BTreeMap::new();
    for f in files {
        let bad = || RootError::NotAbsolute {
            path: path.join(&f.rel),
        };
        let (sub, file) = match f.rel.rsplit_once('/') {
            Some((s, n)) => (Some(s), n),
            None => (None, f.rel.as_str()),
        };
        if file.is_empty() || file.starts_with('.') {
            return Err(bad());
        }
        let dir = match sub {
            None => &top,
            Some(sub) => {
                if !subdirs.contains_key(sub) {
                    let d = subdir(&top, sub, path).map_err(|e| e.unwrap_or_else(bad))?;
                    subdirs.insert(sub.to_string(), d);
                }
                &subdirs[sub]
            }
        };
        write_new(dir, file, f, path)?;
    }
    for d in subdirs.values() {
        nix::unistd::fsync(&d.fd).map_err(errno_err(path))?;
    }
    nix::unistd::fsync(&top.fd).map_err(errno_err(path))
}

/// `sub` (`a/b`) below `top`, made (0755) where missing, each step opened
/// without following a symlink. `Err(None)`: `sub` is not a plain
/// relative path.
fn subdir(top: &Dir, sub: &str, path: &Path) -> Result<Dir, Option<RootError>> {
    let mut d = Dir {
        fd: top.fd.try_clone().map_err(|e| Some(io_err(path)(e)))?,
        path: top.path.clone(),
    };
    for part in sub.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(None);
        }
        match nix::sys::stat::mkdirat(&d.fd, part, mode_of(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Some(errno_err(path)(e))),
        }
        let fd = nix::fcntl::openat(&d.fd, part, DIR_FLAGS, Mode::empty())
            .map_err(|e| Some(errno_err(path)(e)))?;
        nix::sys::stat::fchmod(&fd, mode_of(0o755)).map_err(|e| Some(errno_err(path)(e)))?;
        d = Dir {
            fd,
            path: d.path.join(part),
        };
    }
    Ok(d)
}

/// A new file `name` in `dir` with `f`'s bytes and mode, synced.
fn write_new(dir: &Dir, name: &str, f: &TreeFile, path: &Path) -> Result<(), RootError> {
    let fd = nix::fcntl::openat(
        &dir.fd,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode_of(f.mode),
    )
    .map_err(errno_err(&path.join(&f.rel)))?;
    let mut out = fs::File::from(fd);
    out.write_all(&f.bytes).map_err(io_err(path))?;
    nix::sys::stat::fchmod(out.as_fd(), mode_of(f.mode)).map_err(errno_err(path))?;
    out.sync_all().map_err(io_err(path))
}

/// The whole of a regular file whose size `len` was just read from its
/// metadata: one `read` when the size holds, where `read_to_end` would
/// ask the size again, seek and read once more to see the end (thousands
/// of sites read thousands of files, and each call counts). A read short
/// of the size (a file that shrank, a network file system, more than the
/// kernel gives in one call) reads on to the end; so does a file that
/// grew.
fn read_sized(file: &mut fs::File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    // One byte more than the size: a file that grew fills it.
    let mut bytes = vec![0u8; len.saturating_add(1)];
    let mut filled = 0;
    loop {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled == bytes.len() {
                    let mut rest = Vec::new();
                    file.read_to_end(&mut rest)?;
                    bytes.truncate(filled);
                    bytes.extend_from_slice(&rest);
                    return Ok(bytes);
                }
                // Exactly the size it had: its end, without asking again.
                if filled == len {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// A temporary name beside `name`, carrying [`TEMP_MARK`] and this
/// process's id: what recovery recognises and sweeps after a kill.
fn temp_name(name: &str, attempt: u32) -> String {
    format!(".{name}{TEMP_MARK}{}-{attempt}", std::process::id())
}

/// What every temporary name portico makes contains.
pub const TEMP_MARK: &str = ".portico-";

/// Is `name` one of portico's temporary names, exactly as [`temp_name`]
/// makes them (`.NAME.portico-PID-N`)? Nothing else is ever swept: an
/// operator's `.portico-backup` stays.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(at) = rest.rfind(TEMP_MARK) else {
        return false;
    };
    let (stem, tail) = (&rest[..at], &rest[at + TEMP_MARK.len()..]);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !stem.is_empty()
        && tail
            .split_once('-')
            .is_some_and(|(p, n)| digits(p) && digits(n))
}

impl Root {
    /// The filesystem under `base` (`/` for the host itself).
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Root { base: base.into() }
    }

    /// True when this root is the real host's `/`.
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    /// The directory standing for `/`.
    pub fn base(&self) -> &Path {
        &self.base
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

    /// The names of `path` from the root down (`/etc/nginx` -> etc, nginx).
    fn names(path: &Path) -> Result<Vec<String>, RootError> {
        if !path.is_absolute() {
            return Err(RootError::NotAbsolute {
                path: path.to_path_buf(),
            });
        }
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
                _ => {
                    return Err(RootError::NotAbsolute {
                        path: path.to_path_buf(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Opens directory `path` from the root, one name at a time, never
    /// following a symlink. `create`: missing directories are made, the
    /// last one with this mode and the ones on the way with 0755; `None`:
    /// a missing one is `Ok(None)`. `for_path` is the path the caller
    /// works on, for the error.
    fn open_dir(
        &self,
        path: &Path,
        create: Option<u32>,
        for_path: &Path,
    ) -> Result<Option<Dir>, RootError> {
        let names = Self::names(path)?;
        let base = &self.base;
        let fd = nix::fcntl::open(
            base.as_path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err(base))?;
        let mut dir = Dir {
            fd,
            path: PathBuf::from("/"),
        };
        let last = names.len();
        for (i, name) in names.iter().enumerate() {
            let host = dir.path.join(name);
            let opened = match nix::fcntl::openat(&dir.fd, name.as_str(), DIR_FLAGS, Mode::empty())
            {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let Some(leaf_mode) = create else {
                        return Ok(None);
                    };
                    let mode = if i + 1 == last { leaf_mode } else { 0o755 };
                    failpoint::hit("fs.mkdir", &host.display());
                    let made = match nix::sys::stat::mkdirat(&dir.fd, name.as_str(), mode_of(mode))
                    {
                        Ok(()) => true,
                        Err(Errno::EEXIST) => false,
                        Err(e) => return Err(errno_err(&host)(e)),
                    };
                    let fd = nix::fcntl::openat(&dir.fd, name.as_str(), DIR_FLAGS, Mode::empty())
                        .map_err(|e| self.dir_error(e, for_path, &host))?;
                    if made {
                        // The umask may have masked bits off: exactly what
                        // was asked, on the handle (never by path), and only
                        // on the directory this call made. One swapped in
                        // between (a webroot's owner renaming another of
                        // theirs into place) is not ours: left alone.
                        let st = nix::sys::stat::fstat(&fd).map_err(errno_err(&host))?;
                        if st.st_uid == nix::unistd::geteuid().as_raw() {
                            nix::sys::stat::fchmod(&fd, mode_of(mode)).map_err(errno_err(&host))?;
                        } else {
                            return Err(RootError::Io {
                                path: host.clone(),
                                source: io::Error::new(
                                    io::ErrorKind::PermissionDenied,
                                    "replaced by someone else's directory while it was made",
                                ),
                            });
                        }
                        nix::unistd::fsync(&dir.fd).map_err(errno_err(&dir.path))?;
                    }
                    fd
                }
                Err(e) => return Err(self.dir_error(e, for_path, &host)),
            };
            dir = Dir {
                fd: opened,
                path: host,
            };
        }
        Ok(Some(dir))
    }

    /// A directory on the way that could not be opened as one: a symlink
    /// (ELOOP) is named as such.
    fn dir_error(&self, e: Errno, for_path: &Path, host: &Path) -> RootError {
        let is_link = e == Errno::ELOOP
            || (e == Errno::ENOTDIR
                && fs::symlink_metadata(self.base.join(host.strip_prefix("/").unwrap_or(host)))
                    .is_ok_and(|m| m.file_type().is_symlink()));
        if is_link {
            RootError::SymlinkDir {
                path: for_path.to_path_buf(),
                link: host.to_path_buf(),
            }
        } else {
            errno_err(host)(e)
        }
    }

    /// The open parent of `path` (made when `create`) and `path`'s last name.
    fn parent(&self, path: &Path, create: bool) -> Result<Option<(Dir, String)>, RootError> {
        let names = Self::names(path)?;
        let Some(name) = names.last() else {
            return Err(RootError::NotAbsolute {
                path: path.to_path_buf(),
            });
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        Ok(self
            .open_dir(parent, create.then_some(0o755), path)?
            .map(|d| (d, name.clone())))
    }

    /// [`Root::parent`] for a step that needs the parent to exist.
    fn existing_parent(&self, path: &Path) -> Result<(Dir, String), RootError> {
        self.parent(path, false)?.ok_or_else(|| RootError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotFound, "its directory does not exist"),
        })
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

    /// Reads a file; `Ok(None)` when it does not exist. Only a regular
    /// file is read: a FIFO or a device someone put where portico reads
    /// (a directory another user can write) is an error, never a wait.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, RootError> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.host_path(path)?;
        let mut file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
            .open(&p)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.file_type().is_file() {
            return Err(io_err(path)(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            )));
        }
        read_sized(&mut file, meta.len())
            .map(Some)
            .map_err(io_err(path))
    }

    /// A plain file's bytes and metadata, read through one descriptor;
    /// `Ok(None)` when nothing is there, or a symlink, a directory or
    /// anything but a regular file is (never followed, never waited on).
    pub fn read_plain(&self, path: &Path) -> Result<Option<(Vec<u8>, FileMeta)>, RootError> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.host_path(path)?;
        let mut file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW).bits())
            .open(&p)
        {
            Ok(f) => f,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(Errno::ELOOP as i32) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.file_type().is_file() {
            return Ok(None);
        }
        let bytes = read_sized(&mut file, meta.len()).map_err(io_err(path))?;
        Ok(Some((bytes, FileMeta::of(&meta))))
    }

    /// Reads a text file; `Ok(None)` when it does not exist.
    pub fn read_to_string(&self, path: &Path) -> Result<Option<String>, RootError> {
        Ok(self
            .read(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Every file under a directory, by path inside it (`snippets/a.conf`);
    /// `Ok(None)` when the directory does not exist. Symlinks inside are
    /// not followed (they are not part of a tree portico writes).
    pub fn read_tree(&self, path: &Path) -> Result<Option<BTreeMap<String, Vec<u8>>>, RootError> {
        let mut out = BTreeMap::new();
        let found = self.each_file(path, |rel, bytes| {
            out.insert(rel, bytes);
            true
        })?;
        Ok(found.then_some(out))
    }

    /// Each file under a directory, as [`Self::read_tree`] finds them, given
    /// to `f` one at a time (only one is held) until `f` says stop (false);
    /// `false` when the directory does not exist.
    pub fn each_file(
        &self,
        path: &Path,
        mut f: impl FnMut(String, Vec<u8>) -> bool,
    ) -> Result<bool, RootError> {
        let p = self.host_path(path)?;
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(path)(e)),
        }
        let mut stack = vec![(p, String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for e in fs::read_dir(&dir).map_err(io_err(path))? {
                let e = e.map_err(io_err(path))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let rel = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                let ft = e.file_type().map_err(io_err(path))?;
                if ft.is_dir() {
                    stack.push((e.path(), rel));
                } else if ft.is_file() {
                    let mut file = fs::File::open(e.path()).map_err(io_err(path))?;
                    let len = file.metadata().map_err(io_err(path))?.len();
                    let bytes = read_sized(&mut file, len).map_err(io_err(path))?;
                    if !f(rel, bytes) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Metadata without following a final symlink; `Ok(None)` when absent.
    pub fn meta(&self, path: &Path) -> Result<Option<FileMeta>, RootError> {
        let p = self.host_path(path)?;
        match fs::symlink_metadata(&p) {
            Ok(m) => Ok(Some(FileMeta::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// `path`'s [`Stamp`], not following a final symlink (a file portico
    /// reads plain, replaced by a link, is another file); `Ok(None)` when
    /// absent.
    pub fn stamp(&self, path: &Path) -> Result<Option<Stamp>, RootError> {
        match fs::symlink_metadata(self.host_path(path)?) {
            Ok(m) => Ok(Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                ctime: m.ctime(),
                ctime_nsec: m.ctime_nsec(),
                size: m.size(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// The first of `path` and the directories above it (inside the root)
    /// that another user could change: owned by someone other than root
    /// and `trusted`, or writable by its group or by everyone (whoever can
    /// write a directory can rename what is in it). What does not exist
    /// is skipped: it is made by whoever asks.
    pub fn others_can_change(
        &self,
        path: &Path,
        trusted: u32,
    ) -> Result<Option<(PathBuf, FileMeta)>, RootError> {
        for p in path.ancestors() {
            if let Some(m) = self.meta(p)? {
                let owner_ok = m.uid == 0 || m.uid == trusted;
                if !owner_ok || (m.mode & 0o022 != 0 && !m.is_symlink) {
                    return Ok(Some((p.to_path_buf(), m)));
                }
            }
        }
        Ok(None)
    }

    /// Does `path` lead to something, symlinks followed (a dangling link
    /// does not)?
    pub fn resolves(&self, path: &Path) -> bool {
        self.host_path(path).is_ok_and(|p| fs::metadata(p).is_ok())
    }

    /// Is `path` a mount point (a file system or a bind mount: it cannot be
    /// removed, only emptied)? Read from the kernel's mount table.
    pub fn is_mount_point(&self, path: &Path) -> bool {
        let Ok(p) = self.host_path(path) else {
            return false;
        };
        let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        let unescape = |s: &str| s.replace("\\040", " ").replace("\\011", "\t");
        table.lines().any(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|m| Path::new(&unescape(m)) == p)
        })
    }

    /// Is anything at `path` (a symlink counts, even a dangling one)?
    pub fn exists(&self, path: &Path) -> bool {
        matches!(self.meta(path), Ok(Some(_)))
    }

    /// Target of a symlink, or `None` when `path` is not a symlink.
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, RootError> {
        // One call, no stat first: the kernel says EINVAL for what is not
        // a symlink (tens of thousands of links are read in one run).
        match fs::read_link(self.host_path(path)?) {
            Ok(target) => Ok(Some(target)),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(Errno::EINVAL as i32) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// What is at `name` in `dir`, not following a symlink.
    fn stat_at(dir: &Dir, name: &str) -> Result<Option<nix::sys::stat::FileStat>, RootError> {
        match nix::sys::stat::fstatat(&dir.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(errno_err(&dir.path.join(name))(e)),
        }
    }

    fn is_link(st: &nix::sys::stat::FileStat) -> bool {
        st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK
    }

    fn is_dir_stat(st: &nix::sys::stat::FileStat) -> bool {
        st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR
    }

    /// Creates a directory chain; new directories get `mode` (the ones on
    /// the way 0755), existing ones are left as they are (never loosened).
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), RootError> {
        if Self::names(path)?.is_empty() {
            return Ok(());
        }
        self.open_dir(path, Some(mode), path).map(|_| ())
    }

    /// A new file `name` in `dir` under a temporary name, with exactly
    /// `mode` and what `fill` writes (called once), synced when `sync`:
    /// the caller renames it into place. Removed again if anything fails.
    fn write_temp(
        dir: &Dir,
        name: &str,
        fill: Fill<'_>,
        mode: u32,
        sync: bool,
    ) -> Result<String, RootError> {
        for attempt in 0..100u32 {
            let tmp = temp_name(name, attempt);
            let fd = match nix::fcntl::openat(
                &dir.fd,
                tmp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode_of(mode),
            ) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(errno_err(&dir.path.join(name))(e)),
            };
            let mut file = fs::File::from(fd);
            let written = (|| {
                fill(&mut file)?;
                // Exact mode even where the umask dropped bits at creation.
                nix::sys::stat::fchmod(file.as_fd(), mode_of(mode)).map_err(io::Error::from)?;
                if sync {
                    file.sync_all()?;
                }
                Ok::<(), io::Error>(())
            })();
            if let Err(e) = written {
                let _ = nix::unistd::unlinkat(&dir.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
                return Err(io_err(&dir.path.join(name))(e));
            }
            return Ok(tmp);
        }
        Err(RootError::Io {
            path: dir.path.join(name),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"),
        })
    }

    /// Renames `from` to `to` in `dir` and syncs the directory; on error
    /// the temporary `from` is removed.
    fn rename_into_place(dir: &Dir, from: &str, to: &str, step: &str) -> Result<(), RootError> {
        let host = dir.path.join(to);
        failpoint::hit(step, &host.display());
        if let Err(e) = nix::fcntl::renameat(&dir.fd, from, &dir.fd, to) {
            let flag = if step == "fs.tree" {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            let _ = nix::unistd::unlinkat(&dir.fd, from, flag);
            return Err(errno_err(&host)(e));
        }
        nix::unistd::fsync(&dir.fd).map_err(errno_err(&dir.path))
    }

    /// Writes `bytes` atomically with exactly `mode`.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), RootError> {
        self.write_atomic_with(path, &mut |f| f.write_all(bytes), mode, true)
    }

    /// [`Root::write_atomic`] of what `fill` writes, as it writes it: a
    /// large text (the manifest at thousands of sites) is never held whole.
    pub fn write_atomic_streamed(
        &self,
        path: &Path,
        mode: u32,
        fill: Fill<'_>,
    ) -> Result<(), RootError> {
        self.write_atomic_with(path, fill, mode, true)
    }

    /// [`Root::write_atomic`] without waiting for the disk: still whole or
    /// absent for a reader, but after a power cut it may be empty. For
    /// copies portico makes again from what it keeps (a certificate's
    /// plain copies, from its live pair).
    pub fn write_atomic_unsynced(
        &self,
        path: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), RootError> {
        self.write_atomic_with(path, &mut |f| f.write_all(bytes), mode, false)
    }

    fn write_atomic_with(
        &self,
        path: &Path,
        fill: Fill<'_>,
        mode: u32,
        sync: bool,
    ) -> Result<(), RootError> {
        let (dir, name) = self.existing_parent(path)?;
        if Self::stat_at(&dir, &name)?.is_some_and(|st| Self::is_link(&st)) {
            return Err(RootError::Symlink {
                path: path.to_path_buf(),
            });
        }
        let tmp = Self::write_temp(&dir, &name, fill, mode, sync)?;
        if !sync {
            failpoint::hit("fs.rename", &path.display());
            return nix::fcntl::renameat(&dir.fd, tmp.as_str(), &dir.fd, name.as_str())
                .map_err(errno_err(path));
        }
        Self::rename_into_place(&dir, &tmp, &name, "fs.rename")
    }

    /// Creates a new file with exactly `mode`; fails when anything (even a
    /// dangling symlink) is already at `path`. For files a run must be able
    /// to remove afterwards knowing it made them (ACME challenge answers).
    pub fn create_new(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), RootError> {
        let (dir, name) = self.existing_parent(path)?;
        failpoint::hit("fs.create", &path.display());
        let fd = match nix::fcntl::openat(
            &dir.fd,
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            mode_of(mode),
        ) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                return Err(RootError::Exists {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(errno_err(path)(e)),
        };
        let mut file = fs::File::from(fd);
        let written = (|| {
            file.write_all(bytes)?;
            nix::sys::stat::fchmod(file.as_fd(), mode_of(mode)).map_err(io::Error::from)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = nix::unistd::unlinkat(&dir.fd, name.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(io_err(path)(e));
        }
        Ok(())
    }

    /// Makes `path` a symlink to `target`, atomically (a new link under a
    /// temporary name, renamed over the old one): a reader sees the old
    /// target or the new one, never no link. Refuses to replace anything
    /// but a symlink.
    pub fn symlink(&self, path: &Path, target: &Path) -> Result<(), RootError> {
        self.link_atomic(path, target, false)
    }

    /// [`Root::symlink`], also replacing a regular file (never a
    /// directory): how a file becomes a link into a newer layout.
    pub fn replace_with_symlink(&self, path: &Path, target: &Path) -> Result<(), RootError> {
        self.link_atomic(path, target, true)
    }

    fn link_atomic(&self, path: &Path, target: &Path, over_file: bool) -> Result<(), RootError> {
        let (dir, name) = self.existing_parent(path)?;
        if let Some(st) = Self::stat_at(&dir, &name)? {
            let replaceable = Self::is_link(&st) || (over_file && !Self::is_dir_stat(&st));
            if !replaceable {
                return Err(RootError::Io {
                    path: path.to_path_buf(),
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a symlink; not replacing it",
                    ),
                });
            }
        }
        for attempt in 0..100u32 {
            let tmp = temp_name(&name, attempt);
            match nix::unistd::symlinkat(target, &dir.fd, tmp.as_str()) {
                Ok(()) => return Self::rename_into_place(&dir, &tmp, &name, "fs.symlink"),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(errno_err(path)(e)),
            }
        }
        Err(RootError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary link name"),
        })
    }

    /// Writes a whole directory at once: its files are made under a
    /// temporary directory (mode `dir_mode`, subdirectories 0755), synced,
    /// and the directory renamed into place. A directory already there
    /// with exactly these files is left as it is; one with anything else
    /// is an error (the caller names directories by their content).
    pub fn write_tree(
        &self,
        path: &Path,
        files: &[TreeFile],
        dir_mode: u32,
    ) -> Result<(), RootError> {
        if let Some(existing) = self.read_tree(path)? {
            let same = existing.len() == files.len()
                && files
                    .iter()
                    .all(|f| existing.get(&f.rel).is_some_and(|b| *b == f.bytes));
            if same {
                return Ok(());
            }
            return Err(RootError::Exists {
                path: path.to_path_buf(),
            });
        }
        let (parent, name) = self
            .parent(path, true)?
            .ok_or_else(|| RootError::NotAbsolute {
                path: path.to_path_buf(),
            })?;
        let tmp = temp_dir(&parent, &name, path, dir_mode)?;
        if let Err(e) = fill_tree(&parent, &tmp, path, files, dir_mode) {
            let _ = self.remove_tree(&parent.path.join(&tmp));
            return Err(e);
        }
        failpoint::hit("fs.tree", &path.display());
        if let Err(e) = nix::fcntl::renameat(&parent.fd, tmp.as_str(), &parent.fd, name.as_str()) {
            let _ = self.remove_tree(&parent.path.join(&tmp));
            return Err(errno_err(path)(e));
        }
        nix::unistd::fsync(&parent.fd).map_err(errno_err(&parent.path))
    }

    /// Changes the mode of an existing file or directory (never follows a
    /// symlink: the file is opened `O_NOFOLLOW` and changed on its handle).
    pub fn set_mode(&self, path: &Path, mode: u32) -> Result<(), RootError> {
        let fd = self.open_to_change(path)?;
        failpoint::hit("fs.chmod", &path.display());
        nix::sys::stat::fchmod(&fd, mode_of(mode)).map_err(errno_err(path))
    }

    /// Changes the owner of an existing file (never follows a symlink).
    pub fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> Result<(), RootError> {
        let fd = self.open_to_change(path)?;
        failpoint::hit("fs.chown", &path.display());
        nix::unistd::fchown(
            &fd,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(errno_err(path))
    }

    /// The existing file or directory at `path`, opened so that a mode or
    /// owner change acts on exactly it: never through a symlink, never a
    /// terminal made the controlling one, and never a file with another
    /// name elsewhere (a hard link another user made to `/etc/shadow`,
    /// where `fs.protected_hardlinks` is off, would pass its change on).
    fn open_to_change(&self, path: &Path) -> Result<OwnedFd, RootError> {
        let (dir, name) = self.existing_parent(path)?;
        let fd = match nix::fcntl::openat(
            &dir.fd,
            name.as_str(),
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => {
                return Err(RootError::Symlink {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(errno_err(path)(e)),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(errno_err(path))?;
        let kind = st.st_mode & nix::libc::S_IFMT;
        if kind != nix::libc::S_IFREG && kind != nix::libc::S_IFDIR {
            return Err(io_err(path)(io::Error::new(
                io::ErrorKind::InvalidData,
                "neither a regular file nor a directory",
            )));
        }
        if kind == nix::libc::S_IFREG && st.st_nlink > 1 {
            return Err(io_err(path)(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "has {} names (hard links): a change here would reach the others too",
                    st.st_nlink
                ),
            )));
        }
        Ok(fd)
    }

    /// Renames a file within the root (never through symlinked directories).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), RootError> {
        let (fd, fname) = self.existing_parent(from)?;
        let (td, tname) = self.existing_parent(to)?;
        failpoint::hit("fs.move", &to.display());
        nix::fcntl::renameat(&fd.fd, fname.as_str(), &td.fd, tname.as_str())
            .map_err(errno_err(from))?;
        nix::unistd::fsync(&td.fd).map_err(errno_err(&td.path))
    }

    /// Moves a file, symlink or directory, also across filesystems (`/etc`
    /// to a separate `/var`): where rename says EXDEV, it is copied to the
    /// target (same modes) and then the source removed.
    pub fn move_file(&self, from: &Path, to: &Path) -> Result<(), RootError> {
        let (fd, fname) = self.existing_parent(from)?;
        let (td, tname) = self.existing_parent(to)?;
        failpoint::hit("fs.move", &to.display());
        match nix::fcntl::renameat(&fd.fd, fname.as_str(), &td.fd, tname.as_str()) {
            Ok(()) => return nix::unistd::fsync(&td.fd).map_err(errno_err(&td.path)),
            Err(Errno::EXDEV) => {}
            Err(e) => return Err(errno_err(from)(e)),
        }
        self.copy(from, to)?;
        match self.meta(from)? {
            Some(m) if m.is_dir && !m.is_symlink => self.remove_tree(from),
            _ => self.remove(from),
        }
    }

    /// Copies `from` to `to` (a file atomically, a symlink as a symlink, a
    /// directory file by file), keeping modes.
    fn copy(&self, from: &Path, to: &Path) -> Result<(), RootError> {
        let Some(meta) = self.meta(from)? else {
            return Err(RootError::Io {
                path: from.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        if let Some(target) = self.read_link(from)? {
            return self.symlink(to, &target);
        }
        if meta.is_dir {
            // Whole or not at all: copied under a temporary name and
            // renamed into place (a kill leaves only a temporary name,
            // which recovery sweeps).
            let mut files = Vec::new();
            self.collect_files(from, "", &mut files)?;
            return self.write_tree(to, &files, meta.mode);
        }
        let bytes = self.read(from)?.unwrap_or_default();
        self.write_atomic(to, &bytes, meta.mode)
    }

    /// Every regular file under `dir`, as [`TreeFile`]s relative to it.
    fn collect_files(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<TreeFile>,
    ) -> Result<(), RootError> {
        for name in self.list_dir(dir)? {
            let path = dir.join(&name);
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            match self.meta(&path)? {
                Some(m) if m.is_dir && !m.is_symlink => self.collect_files(&path, &rel, out)?,
                Some(m) if !m.is_symlink => out.push(TreeFile {
                    rel,
                    bytes: self.read(&path)?.unwrap_or_default(),
                    mode: m.mode,
                }),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes an empty directory; absent is fine, and so is one that is no
    /// longer empty (something else put a file there): it stays.
    pub fn remove_empty_dir(&self, path: &Path) -> Result<(), RootError> {
        let Some((dir, name)) = self.parent(path, false)? else {
            return Ok(());
        };
        failpoint::hit("fs.rmdir", &path.display());
        match nix::unistd::unlinkat(&dir.fd, name.as_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(errno_err(path)(e)),
        }
    }

    /// Deletes a directory and everything under it, never following a
    /// symlink (one inside is removed, not what it points to); absent is
    /// fine. Emptied through handles, deepest first.
    pub fn remove_tree(&self, path: &Path) -> Result<(), RootError> {
        let Some((dir, name)) = self.parent(path, false)? else {
            return Ok(());
        };
        let Some(st) = Self::stat_at(&dir, &name)? else {
            return Ok(());
        };
        failpoint::hit("fs.rmtree", &path.display());
        if !Self::is_dir_stat(&st) {
            return nix::unistd::unlinkat(&dir.fd, name.as_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(errno_err(path));
        }
        Self::empty_dir(&dir, &name, path)?;
        match nix::unistd::unlinkat(&dir.fd, name.as_str(), UnlinkatFlags::RemoveDir) {
            // A mount point cannot go: it stays, empty.
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::EBUSY) => Ok(()),
            Err(e) => Err(errno_err(path)(e)),
        }
    }

    /// Removes everything inside `dir/name`, through handles.
    fn empty_dir(dir: &Dir, name: &str, path: &Path) -> Result<(), RootError> {
        let fd = match nix::fcntl::openat(&dir.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(errno_err(path)(e)),
        };
        let sub = Dir {
            fd,
            path: dir.path.join(name),
        };
        let listing = nix::dir::Dir::from_fd(sub.fd.try_clone().map_err(io_err(path))?)
            .map_err(errno_err(path))?;
        let mut names = Vec::new();
        let mut listing = listing;
        for e in listing.iter() {
            let e = e.map_err(errno_err(path))?;
            let n = e.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        for n in names {
            match Self::stat_at(&sub, &n)? {
                Some(st) if Self::is_dir_stat(&st) => {
                    Self::empty_dir(&sub, &n, path)?;
                    nix::unistd::unlinkat(&sub.fd, n.as_str(), UnlinkatFlags::RemoveDir)
                        .map_err(errno_err(path))?;
                }
                Some(_) => nix::unistd::unlinkat(&sub.fd, n.as_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(errno_err(path))?,
                None => {}
            }
        }
        Ok(())
    }

    /// Removes a file or symlink; absent is fine.
    pub fn remove(&self, path: &Path) -> Result<(), RootError> {
        let Some((dir, name)) = self.parent(path, false)? else {
            return Ok(());
        };
        failpoint::hit("fs.unlink", &path.display());
        match nix::unistd::unlinkat(&dir.fd, name.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {
                nix::unistd::fsync(&dir.fd).map_err(errno_err(&dir.path))
            }
            Err(e) => Err(errno_err(path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sized_read_returns_every_byte_whatever_the_size_said() {
        let dir = tempfile::tempdir().unwrap();
        for (bytes, said) in [
            (&b""[..], 0u64),
            (b"x", 1),
            (&[7u8; 70_000][..], 70_000),
            // The file grew after its size was read; or shrank.
            (&[1u8; 5000][..], 10),
            (b"short", 4096),
        ] {
            let p = dir.path().join("f");
            fs::write(&p, bytes).unwrap();
            let mut f = fs::File::open(&p).unwrap();
            assert_eq!(read_sized(&mut f, said).unwrap(), bytes, "size said {said}");
        }
        let root = Root::new(dir.path());
        fs::create_dir_all(dir.path().join("t/sub")).unwrap();
        fs::write(dir.path().join("t/sub/a"), [9u8; 3000]).unwrap();
        fs::write(dir.path().join("t/b"), b"").unwrap();
        let tree = root.read_tree(Path::new("/t")).unwrap().unwrap();
        assert_eq!(tree["sub/a"], vec![9u8; 3000]);
        assert_eq!(tree["b"], b"");
    }

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
    fn a_failed_rename_leaves_no_temp_and_the_target_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        // A rename of a file over a non-empty directory fails (EISDIR).
        std::fs::create_dir_all(dir.path().join("cert.pem/inside")).unwrap();
        assert!(root
            .write_atomic(Path::new("/cert.pem"), b"new", 0o644)
            .is_err());
        assert!(dir.path().join("cert.pem/inside").is_dir());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn a_mode_or_owner_change_never_reaches_another_name_of_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let victim = dir.path().join("shadow");
        std::fs::write(&victim, b"secret").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
        // Where the key would be, a second name of the victim.
        std::fs::create_dir(dir.path().join("private")).unwrap();
        std::fs::hard_link(&victim, dir.path().join("private/app.key")).unwrap();
        let key = Path::new("/private/app.key");
        let err = root.set_mode(key, 0o644).unwrap_err().to_string();
        assert!(err.contains("hard links"), "{err}");
        let me = nix::unistd::geteuid().as_raw();
        assert!(root.set_owner(key, me, me).is_err());
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the other name changed mode");
        // A FIFO is neither opened for long nor changed.
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(root.set_mode(Path::new("/fifo"), 0o644).is_err());
        // A plain file and a directory are.
        std::fs::write(dir.path().join("plain"), b"x").unwrap();
        root.set_mode(Path::new("/plain"), 0o600).unwrap();
        root.set_mode(Path::new("/private"), 0o700).unwrap();
        root.set_owner(Path::new("/plain"), me, me).unwrap();
    }

    #[test]
    fn only_portico_s_own_temporary_names_are_temporary() {
        assert!(is_temp_name(&temp_name("live", 0)));
        assert!(is_temp_name(".fullchain.pem.portico-812-3"));
        for other in [
            ".portico-backup",
            ".x.portico-",
            ".x.portico-12",
            "x.portico-1-2",
            ".portico-1-2",
            ".x.portico-a-1",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    #[test]
    fn symlinks_are_replaced_atomically_and_files_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let link = Path::new("/live");
        root.symlink(link, Path::new("a")).unwrap();
        root.symlink(link, Path::new("b")).unwrap();
        assert_eq!(root.read_link(link).unwrap().unwrap(), Path::new("b"));
        root.write_atomic(Path::new("/file"), b"x", 0o644).unwrap();
        assert!(root.symlink(Path::new("/file"), Path::new("b")).is_err());
        root.replace_with_symlink(Path::new("/file"), Path::new("b"))
            .unwrap();
        assert_eq!(
            root.read_link(Path::new("/file")).unwrap().unwrap(),
            Path::new("b")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "temporary links left behind");
    }

    #[test]
    fn a_tree_is_written_whole_and_kept_when_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let files = vec![
            TreeFile {
                rel: "a.conf".into(),
                bytes: b"a".to_vec(),
                mode: 0o644,
            },
            TreeFile {
                rel: "snippets/b.conf".into(),
                bytes: b"b".to_vec(),
                mode: 0o600,
            },
        ];
        let at = Path::new("/etc/nginx/portico/gen-1");
        root.write_tree(at, &files, 0o755).unwrap();
        let tree = root.read_tree(at).unwrap().unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree["snippets/b.conf"], b"b");
        let m = root
            .meta(Path::new("/etc/nginx/portico/gen-1/snippets/b.conf"))
            .unwrap()
            .unwrap();
        assert_eq!(m.mode, 0o600);
        // The same again: nothing to do; something else under the name: refused.
        root.write_tree(at, &files, 0o755).unwrap();
        assert!(root.write_tree(at, &files[..1], 0o755).is_err());
        root.remove_tree(Path::new("/etc/nginx/portico")).unwrap();
        assert!(!root.exists(Path::new("/etc/nginx/portico")));
        assert!(root.exists(Path::new("/etc/nginx")));
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
