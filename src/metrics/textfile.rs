//! The metrics file: replaced whole (a temporary file in the same
//! directory, then a rename), so node_exporter reads the old file or the
//! new one, never a part; mode 0644; recorded in the manifest like every
//! file portico writes (before it is written: a kill in between leaves a
//! path the next run knows is portico's), and never written over a file
//! portico did not make.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::host::root::{is_temp_name, RootError, TEMP_MARK};
use crate::host::Root;
use crate::manifest::{Manifest, ManifestError};

/// Why the metrics file was not written.
#[derive(Debug, Error)]
pub enum TextfileError {
    /// The directory it goes in is not there.
    #[error(
        "{dir}: no such directory, so {file} was not written (install node_exporter's textfile \
         collector, e.g. Debian's prometheus-node-exporter, or set [metrics] textfile)"
    )]
    NoDirectory {
        /// The directory.
        dir: PathBuf,
        /// The file.
        file: PathBuf,
    },
    /// Anyone may write in the directory: what is there cannot be trusted.
    #[error(
        "{dir} is writable by everyone (mode {mode:04o}): {file} was not written; give the \
         metrics a directory only root and node_exporter's user can write"
    )]
    OpenDirectory {
        /// The directory.
        dir: PathBuf,
        /// The file.
        file: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A file portico did not write is there.
    #[error(
        "{0} exists and portico did not write it: left as it is (`portico apply --adopt` takes it \
         over, keeping a copy)"
    )]
    NotOurs(PathBuf),
    /// Reading or writing failed.
    #[error(transparent)]
    Fs(#[from] RootError),
    /// The manifest could not be read or written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Writes `text` to `file` and records it in the manifest. Only on a host
/// portico manages (one with a manifest); `take_over`: the file may be
/// there without being recorded (apply checked it, or adopted it).
pub fn write(root: &Root, file: &Path, text: &str, take_over: bool) -> Result<(), TextfileError> {
    let Some(manifest) = Manifest::load(root)? else {
        return Ok(());
    };
    let dir = file.parent().unwrap_or(Path::new("/"));
    match root.meta(dir)? {
        Some(m) if m.is_dir && !m.is_symlink => {
            if m.mode & 0o002 != 0 {
                return Err(TextfileError::OpenDirectory {
                    dir: dir.into(),
                    file: file.into(),
                    mode: m.mode,
                });
            }
        }
        _ => {
            return Err(TextfileError::NoDirectory {
                dir: dir.into(),
                file: file.into(),
            })
        }
    }
    let recorded = manifest.get(&crate::owned::Thing::file(file)).is_some();
    if !recorded && !take_over && root.meta(file)?.is_some() {
        return Err(TextfileError::NotOurs(file.into()));
    }
    crate::manifest::record_file(root, file, crate::owned::METRICS_OWNER, text.as_bytes())?;
    sweep_temporaries(root, dir, file)?;
    root.write_atomic(file, text.as_bytes(), 0o644)?;
    Ok(())
}

/// Removes the temporary files a killed run left beside `file` (only
/// portico's own names for it: nothing else in node_exporter's directory
/// is touched). Runs hold the host's lock, so none is another's in flight.
fn sweep_temporaries(root: &Root, dir: &Path, file: &Path) -> Result<(), RootError> {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let prefix = format!(".{name}{TEMP_MARK}");
    for entry in root.list_dir(dir)? {
        if entry.starts_with(&prefix) && is_temp_name(&entry) {
            // Best effort: something else under that name (a directory)
            // stays, and the write goes on beside it.
            if let Err(e) = root.remove(&dir.join(&entry)) {
                tracing::debug!("leaving {entry}: {e}");
            }
        }
    }
    Ok(())
}
