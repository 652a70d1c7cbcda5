//! What a run changed on disk, so it can be put back byte for byte when nginx
//! rejects the result: the previous bytes, mode and owner of every file
//! written, every symlink replaced, every directory created.

use std::path::{Path, PathBuf};

use crate::host::root::RootError;
use crate::host::Root;
use crate::task::Action;

/// A file as it was: its bytes, mode, owner and group.
type FileBefore = (Vec<u8>, u32, u32, u32);

#[derive(Debug)]
enum Undo {
    /// The file had these bytes, mode and owner, or did not exist.
    File {
        path: PathBuf,
        before: Option<FileBefore>,
    },
    /// The symlink pointed there, or did not exist.
    Link {
        path: PathBuf,
        before: Option<PathBuf>,
    },
    /// The directory did not exist.
    Dir { path: PathBuf },
    /// The directory had this mode (it was tightened).
    DirMode { path: PathBuf, mode: u32 },
    /// A file was moved from `from` to `to`.
    Moved { from: PathBuf, to: PathBuf },
    /// An empty directory with this mode was removed.
    DirRemoved { path: PathBuf, mode: u32 },
    /// A whole directory (a generation, a key pair) did not exist.
    Tree { path: PathBuf },
}

/// A file's bytes, mode and owner, when it exists (and, unless
/// `symlink_too`, is not a symlink).
fn file_before(
    root: &Root,
    path: &Path,
    symlink_too: bool,
) -> Result<Option<FileBefore>, RootError> {
    Ok(match (root.read(path)?, root.meta(path)?) {
        (Some(bytes), Some(m)) if symlink_too || !m.is_symlink => {
            Some((bytes, m.mode, m.uid, m.gid))
        }
        _ => None,
    })
}

/// What this run changed so far, oldest first, with what was there before.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Vec<Undo>,
    rolled_back: bool,
}

impl Journal {
    /// Records what `action` is about to change. Call before executing it.
    pub fn record(&mut self, root: &Root, action: &Action) -> Result<(), RootError> {
        match action {
            Action::SetMode { path, .. } if root.meta(path)?.is_some_and(|m| m.is_dir) => {
                let mode = root.meta(path)?.map_or(0o755, |m| m.mode);
                self.entries.push(Undo::DirMode {
                    path: path.clone(),
                    mode,
                });
            }
            Action::WriteFile { path, .. }
            | Action::SetMode { path, .. }
            | Action::SetOwner { path, .. }
            | Action::Capture { path, .. } => {
                // A symlink is replaced, never written through: nothing to keep.
                let before = file_before(root, path, false)?;
                self.entries.push(Undo::File {
                    path: path.clone(),
                    before,
                });
            }
            Action::Symlink { path, .. } => self.entries.push(Undo::Link {
                path: path.clone(),
                before: root.read_link(path)?,
            }),
            Action::Remove { path } => {
                let undo = match root.read_link(path)? {
                    Some(target) => Undo::Link {
                        path: path.clone(),
                        before: Some(target),
                    },
                    None => Undo::File {
                        path: path.clone(),
                        before: file_before(root, path, true)?,
                    },
                };
                self.entries.push(undo);
            }
            Action::Move { from, to } => self.entries.push(Undo::Moved {
                from: from.clone(),
                to: to.clone(),
            }),
            Action::RemoveDir { path } => {
                // Only an empty directory goes; only that one comes back.
                if let Some(m) = root.meta(path)?.filter(|m| m.is_dir) {
                    if root.list_dir(path)?.is_empty() {
                        self.entries.push(Undo::DirRemoved {
                            path: path.clone(),
                            mode: m.mode,
                        });
                    }
                }
            }
            // Runs after every gate, and is documented as final.
            Action::RemoveTree { .. } => {}
            Action::EnsureDir { path, .. } => self.record_dirs(root, path),
            Action::WriteTree { path, .. } => {
                self.record_dirs(root, path.parent().unwrap_or(Path::new("/")));
                if !root.exists(path) {
                    self.entries.push(Undo::Tree { path: path.clone() });
                }
            }
            Action::WritePair { name, cert, key } => self.record_pair(root, name, cert, key)?,
            // Network only: the engine records the writes it turns into.
            Action::Obtain(_) => {}
            Action::Run(_)
            | Action::Service { .. }
            | Action::ReloadNginx
            | Action::TestNginx { .. } => {}
        }
        Ok(())
    }

    /// A key pair: its directories, the pair (when new), its live link and
    /// its plain copies.
    fn record_pair(
        &mut self,
        root: &Root,
        name: &str,
        cert: &[u8],
        key: &[u8],
    ) -> Result<(), RootError> {
        for (dir, _) in crate::tasks::pair::dirs(name) {
            self.record_dirs(root, &dir);
        }
        let pair = crate::paths::pair_dir(name).join(crate::tasks::pair::id(cert, key));
        if !root.exists(&pair) {
            self.entries.push(Undo::Tree { path: pair });
        }
        let live = crate::paths::live_link(name);
        self.entries.push(Undo::Link {
            before: root.read_link(&live)?,
            path: live,
        });
        for copy in crate::tasks::pair::copy_paths(name) {
            self.record_replaced(root, &copy)?;
        }
        Ok(())
    }

    /// Every missing level of `path`, outermost first, so undo removes
    /// innermost first.
    fn record_dirs(&mut self, root: &Root, path: &Path) {
        let mut missing = Vec::new();
        let mut p: Option<&Path> = Some(path);
        while let Some(dir) = p {
            if root.exists(dir) {
                break;
            }
            missing.push(dir.to_path_buf());
            p = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            self.entries.push(Undo::Dir { path: dir });
        }
    }

    /// What is at `path` before it is replaced by a link: a link, a file
    /// (bytes, mode, owner), or nothing.
    fn record_replaced(&mut self, root: &Root, path: &Path) -> Result<(), RootError> {
        if let Some(target) = root.read_link(path)? {
            self.entries.push(Undo::Link {
                path: path.to_path_buf(),
                before: Some(target),
            });
            return Ok(());
        }
        let before = match (root.read(path)?, root.meta(path)?) {
            (Some(bytes), Some(m)) if !m.is_dir => Some((bytes, m.mode, m.uid, m.gid)),
            _ => None,
        };
        self.entries.push(Undo::File {
            path: path.to_path_buf(),
            before,
        });
        Ok(())
    }

    /// How many changes are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The directories this run created that are still recorded (a
    /// rollback forgets the ones it removed).
    pub fn created_dirs(&self) -> Vec<PathBuf> {
        self.entries
            .iter()
            .filter_map(|u| match u {
                Undo::Dir { path } => Some(path.clone()),
                _ => None,
            })
            .collect()
    }

    /// Nothing recorded yet?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Did a rollback happen in this run (what the run changed on disk is
    /// no longer there)?
    pub fn rolled_back(&self) -> bool {
        self.rolled_back
    }

    /// Puts everything back, newest first (owners too, when `is_root`: only
    /// root can give a file to someone). Every entry is tried, even after
    /// one fails; returns how many entries were undone, or the first error.
    pub fn roll_back(&mut self, root: &Root, is_root: bool) -> Result<usize, RootError> {
        let n = self.entries.len();
        self.rolled_back |= n > 0;
        let mut first_error = None;
        while let Some(undo) = self.entries.pop() {
            if let Err(e) = Self::undo(root, is_root, undo) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    fn undo(root: &Root, is_root: bool, undo: Undo) -> Result<(), RootError> {
        {
            match undo {
                Undo::File {
                    path,
                    before: Some((bytes, mode, uid, gid)),
                } => {
                    // A file that became a link goes back to being a file.
                    if root.read_link(&path)?.is_some() {
                        root.remove(&path)?;
                    }
                    root.write_atomic(&path, &bytes, mode)?;
                    if is_root {
                        root.set_owner(&path, uid, gid)?;
                    }
                }
                Undo::File { path, before: None } => root.remove(&path)?,
                Undo::Link {
                    path,
                    before: Some(target),
                } => root.symlink(&path, &target)?,
                Undo::Link { path, before: None } => root.remove(&path)?,
                Undo::DirMode { path, mode } => root.set_mode(&path, mode)?,
                // Only if nothing else appeared in it meanwhile.
                Undo::Dir { path } => root.remove_empty_dir(&path)?,
                // A move that never happened (it failed) has nothing to undo.
                Undo::Moved { from, to } if root.exists(&to) => root.move_file(&to, &from)?,
                Undo::Moved { .. } => {}
                Undo::DirRemoved { path, mode } => root.create_dir_all(&path, mode)?,
                // Never the generation nginx reads (a rollback that could
                // not put the link back leaves it there, whole).
                Undo::Tree { path }
                    if root
                        .read_link(Path::new(crate::paths::NGINX_LIVE))?
                        .is_some_and(|t| path.file_name() == Some(t.as_os_str())) => {}
                Undo::Tree { path } => root.remove_tree(&path)?,
            }
        }
        Ok(())
    }
}
