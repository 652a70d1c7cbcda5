//! What every run that changes the host does first, holding the host's
//! lock, and last: sweep what a run killed midway left half-made. By
//! construction nothing it leaves is live (a generation or a key pair
//! becomes live by one rename, after it is whole), so recovery is only
//! cleaning: generations and pairs no longer live, and temporary files.

use crate::paths;
use std::path::Path;

use crate::host::root::{is_temp_name, RootError};
use crate::host::Root;

/// Directories where portico writes files by rename, so where a kill can
/// leave a temporary one behind.
const WRITES_BY_RENAME: &[&str] = &[
    paths::NGINX_CONF_D,
    paths::NGINX_CONF_DIR,
    paths::NGINX_DIR,
    paths::CERT_DIR,
    paths::LIVE_DIR,
    paths::PAIRS_DIR,
    paths::CERT_COPIES,
    paths::KEY_COPIES,
    paths::CONFIG_DIR,
    paths::STATE_DIR,
    paths::SYSTEMD_UNIT_DIR,
    paths::NFTABLES_D,
];

/// Every temporary name under `dir`, at any depth (the archive: a pair
/// copied across file systems is written under one).
fn sweep_tree(root: &Root, dir: &Path, gone: &mut Vec<String>) -> Result<(), RootError> {
    for name in root.list_dir(dir)? {
        let path = dir.join(&name);
        if is_temp_name(&name) {
            root.remove_tree(&path)?;
            gone.push(path.display().to_string());
        } else if root.meta(&path)?.is_some_and(|m| m.is_dir && !m.is_symlink) {
            sweep_tree(root, &path, gone)?;
        }
    }
    Ok(())
}

/// Removes what is not live and every temporary file; returns what went.
pub fn sweep(root: &Root) -> Result<Vec<String>, RootError> {
    let mut gone = Vec::new();
    if crate::tasks::generation::restore_after_interrupted_test(root)? {
        gone.push("an untested nginx generation (an in-place test was interrupted)".into());
    }
    for dir in WRITES_BY_RENAME {
        for name in root.list_dir(Path::new(dir))? {
            if is_temp_name(&name) {
                let path = Path::new(dir).join(&name);
                root.remove_tree(&path)?;
                gone.push(path.display().to_string());
            }
        }
    }
    sweep_tree(root, Path::new(paths::ARCHIVE_DIR), &mut gone)?;
    crate::tasks::generation::collect(root)?;
    crate::tasks::pair::collect_all(root)?;
    Ok(gone)
}
