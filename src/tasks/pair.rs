//! A certificate and its key, always together where nginx reads them.
//!
//! Each pair is written whole into a directory of its own, named by its
//! content (`pairs/NAME/ID/{fullchain,privkey}.pem`), under a temporary
//! name first; then one rename of the `live/NAME` link makes it current.
//! nginx reads `live/NAME/fullchain.pem` and `live/NAME/privkey.pem`, so
//! whatever instant it looks (at boot, after a kill), the key it finds
//! belongs to the certificate beside it. The plain files operators, hooks
//! and backups know (`certs/NAME.crt` 0644, `private/NAME.key` 0600) are
//! copies of the live pair, written after it; nginx never reads them.

use std::path::{Path, PathBuf};

use crate::host::root::{FileMeta, RootError, TreeFile};
use crate::host::Root;
use crate::owned::sha256_hex_of;
use crate::paths;

/// A pair's directory name: its content's hash.
pub fn id(cert: &[u8], key: &[u8]) -> String {
    sha256_hex_of([cert, b"\0", key])[..16].to_string()
}

/// Where `live/NAME` points for pair `id` (relative, so a copied tree or
/// one under `--root` resolves the same).
pub fn live_target(name: &str, id: &str) -> PathBuf {
    PathBuf::from(format!("../pairs/{name}/{id}"))
}

/// The plain copies, key first: `(path, mode)`.
fn copies(name: &str) -> [(PathBuf, u32); 2] {
    [
        (paths::key_file(name), 0o600),
        (paths::cert_file(name), 0o644),
    ]
}

/// What a certificate's pair makes that portico owns: the pairs (archived
/// or removed as one, by `disposal`), the live link and the plain copies.
pub fn owned(
    name: &str,
    owner: &str,
    disposal: crate::owned::Disposal,
) -> Vec<crate::owned::Owned> {
    use crate::owned::{Owned, Thing};
    let tree = |path| Owned {
        disposal,
        ..Owned::thing(Thing::Tree { path }, owner)
    };
    let file = |path| Owned {
        disposal,
        ..Owned::thing(Thing::file(path), owner)
    };
    vec![
        tree(paths::pair_dir(name)),
        // Its target changes with every pair: recorded as found.
        Owned::thing(
            Thing::Link {
                path: paths::live_link(name),
            },
            owner,
        ),
        file(paths::key_file(name)),
        file(paths::cert_file(name)),
    ]
}

/// The directories a pair needs, with their modes, outermost first.
pub fn dirs(name: &str) -> Vec<(PathBuf, u32)> {
    vec![
        (PathBuf::from(paths::CERT_DIR), 0o755),
        (PathBuf::from(paths::PAIRS_DIR), 0o700),
        (paths::pair_dir(name), 0o700),
        (PathBuf::from(paths::LIVE_DIR), 0o755),
        (PathBuf::from(format!("{}/certs", paths::CERT_DIR)), 0o755),
        (PathBuf::from(format!("{}/private", paths::CERT_DIR)), 0o700),
    ]
}

/// The live pair of a certificate, as read from disk: what `live/NAME`
/// names and both its files, with their metadata (read once: thousands of
/// certificates are checked in one run).
#[derive(Debug, Clone)]
pub struct Live {
    /// The pair's directory name (the hash its bytes must have).
    pub id: String,
    /// `fullchain.pem`.
    pub cert: Vec<u8>,
    /// `privkey.pem`.
    pub key: Vec<u8>,
    /// The certificate file's metadata.
    pub cert_meta: FileMeta,
    /// The key file's metadata.
    pub key_meta: FileMeta,
}

impl Live {
    /// Is it the pair portico wrote (its bytes hash to its directory's
    /// name)? Cheaper than parsing the key, and as sure: the pair was
    /// checked when it was written.
    pub fn intact(&self) -> bool {
        id(&self.cert, &self.key) == self.id
    }
}

/// `name`'s live pair; `None` when `live/NAME` is not a link of portico's
/// form or a file of its pair is missing or not a plain file (nothing yet,
/// or the plain files of a portico from before pairs).
pub fn live(root: &Root, name: &str) -> Result<Option<Live>, RootError> {
    let Some(target) = root.read_link(&paths::live_link(name))? else {
        return Ok(None);
    };
    let Some(id) = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|id| target == live_target(name, id))
    else {
        return Ok(None);
    };
    let dir = paths::pair_dir(name).join(&id);
    let (Some((cert, cert_meta)), Some((key, key_meta))) = (
        root.read_plain(&dir.join(paths::PAIR_CERT))?,
        root.read_plain(&dir.join(paths::PAIR_KEY))?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Live {
        id,
        cert,
        key,
        cert_meta,
        key_meta,
    }))
}

/// The plain copies' metadata, key's first, when both are plain files
/// holding the live pair's bytes; `None` when one is missing, not a plain
/// file, or holds other bytes.
pub fn copies_of(root: &Root, name: &str, live: &Live) -> Result<Option<[FileMeta; 2]>, RootError> {
    let mut metas = Vec::with_capacity(2);
    for ((copy, _), want) in copies(name).into_iter().zip([&live.key, &live.cert]) {
        match root.read_plain(&copy)? {
            Some((bytes, meta)) if &bytes == want => metas.push(meta),
            _ => return Ok(None),
        }
    }
    Ok(metas.try_into().ok())
}

/// What writing a pair changes, for `--diff`: the certificate described
/// (names, issuer, validity), never its base64, and the key redacted.
pub fn diff(root: &Root, name: &str, cert: &[u8], key: &[u8]) -> Result<String, RootError> {
    let (cert_path, key_path) = (paths::live_cert(name), paths::live_key(name));
    let old = root.read(&cert_path)?;
    let c = cert_path.display();
    let mut out = format!(
        "--- {}\n+++ {c}\n",
        if old.is_some() {
            c.to_string()
        } else {
            "/dev/null".into()
        }
    );
    if let Some(old) = &old {
        out.push_str(&format!("-{}\n", crate::facts::cert::describe(old)));
    }
    out.push_str(&format!("+{}\n", crate::facts::cert::describe(cert)));
    let k = key_path.display();
    out.push_str(&format!(
        "--- {}\n+++ {k}\n@@ key material redacted ({} bytes) @@\n",
        if root.resolves(&key_path) {
            k.to_string()
        } else {
            "/dev/null".into()
        },
        key.len()
    ));
    Ok(out)
}

/// Writes `cert` and `key` as `name`'s pair and makes it live: the pair
/// directory whole, then the `live` link (one rename), then the plain
/// copies (the key's first).
pub fn install(root: &Root, name: &str, cert: &[u8], key: &[u8]) -> Result<(), RootError> {
    // Checked once, here: a pair portico wrote is one from then on (its
    // directory's name is the hash of both, see `intact`).
    if let Err(problem) = crate::facts::cert::check_pair(cert, key) {
        if matches!(
            problem,
            crate::facts::cert::PairProblem::KeyMismatch | crate::facts::cert::PairProblem::BadKey
        ) {
            return Err(RootError::Io {
                path: paths::cert_file(name),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, problem.to_string()),
            });
        }
    }
    for (dir, mode) in dirs(name) {
        root.create_dir_all(&dir, mode)?;
    }
    let id = id(cert, key);
    root.write_tree(
        &paths::pair_dir(name).join(&id),
        &[
            TreeFile {
                rel: paths::PAIR_CERT.into(),
                bytes: cert.to_vec(),
                mode: 0o644,
            },
            TreeFile {
                rel: paths::PAIR_KEY.into(),
                bytes: key.to_vec(),
                mode: 0o600,
            },
        ],
        0o700,
    )?;
    let live = paths::live_link(name);
    let target = live_target(name, &id);
    if root.read_link(&live)?.as_deref() != Some(target.as_path()) {
        root.symlink(&live, &target)?;
    }
    for ((path, mode), bytes) in copies(name).into_iter().zip([key, cert]) {
        let plain = root.meta(&path)?.is_some_and(|m| !m.is_symlink);
        if !plain || root.read(&path)?.as_deref() != Some(bytes) {
            if root.read_link(&path)?.is_some() {
                root.remove(&path)?;
            }
            // Copies of the live pair, made again from it if a power cut
            // ever loses them: not worth a wait for the disk.
            root.write_atomic_unsynced(&path, bytes, mode)?;
        }
    }
    Ok(())
}

/// The plain copies `install` may replace (for the journal).
pub fn copy_paths(name: &str) -> [PathBuf; 2] {
    [paths::key_file(name), paths::cert_file(name)]
}

/// Removes `name`'s pairs that are not live (after a renewal, or left by a
/// run killed before its switch), and anything temporary beside them.
pub fn collect(root: &Root, name: &str) -> Result<(), RootError> {
    let dir = paths::pair_dir(name);
    let entries = root.list_dir(&dir)?;
    // The usual case, one pair and it is live: nothing to read.
    let target = root.read_link(&paths::live_link(name))?;
    let live_id = target
        .as_ref()
        .and_then(|t| t.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|id| target.as_deref() == Some(live_target(name, id).as_path()));
    if entries.len() <= 1 && live_id.as_deref() == entries.first().map(String::as_str) {
        return Ok(());
    }
    let live = match live(root, name)? {
        Some(pair) => pair.id,
        // No live pair portico recognises (never switched to, or a link
        // someone changed): keys are never deleted on a guess; only what
        // is certainly half-made goes.
        _ => {
            for entry in root.list_dir(&dir)? {
                if crate::host::root::is_temp_name(&entry) {
                    root.remove_tree(&dir.join(&entry))?;
                }
            }
            return Ok(());
        }
    };
    for entry in entries {
        if entry != live {
            root.remove_tree(&dir.join(&entry))?;
        }
    }
    Ok(())
}

/// [`collect`] for every certificate with pairs on disk.
pub fn collect_all(root: &Root) -> Result<(), RootError> {
    for name in root.list_dir(Path::new(paths::PAIRS_DIR))? {
        if crate::host::root::is_temp_name(&name) {
            root.remove_tree(&Path::new(paths::PAIRS_DIR).join(&name))?;
            continue;
        }
        collect(root, &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_goes_live_whole_with_its_copies_and_the_old_one_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        assert!(live(&root, "web").unwrap().is_none());
        install(&root, "web", b"CERT1", b"KEY1").unwrap();
        let first = id(b"CERT1", b"KEY1");
        let pair = live(&root, "web").unwrap().unwrap();
        assert_eq!(pair.id, first);
        assert!(pair.intact());
        assert!(copies_of(&root, "web", &pair).unwrap().is_some());
        assert_eq!(
            root.read(&paths::live_cert("web")).unwrap().unwrap(),
            b"CERT1"
        );
        assert_eq!(
            root.read(&paths::key_file("web")).unwrap().unwrap(),
            b"KEY1"
        );
        install(&root, "web", b"CERT2", b"KEY2").unwrap();
        assert_eq!(
            root.read(&paths::live_cert("web")).unwrap().unwrap(),
            b"CERT2"
        );
        assert_eq!(
            root.read(&paths::live_key("web")).unwrap().unwrap(),
            b"KEY2"
        );
        assert_eq!(
            root.read(&paths::cert_file("web")).unwrap().unwrap(),
            b"CERT2"
        );
        assert_eq!(root.list_dir(&paths::pair_dir("web")).unwrap().len(), 2);
        collect(&root, "web").unwrap();
        assert_eq!(
            root.list_dir(&paths::pair_dir("web")).unwrap(),
            [id(b"CERT2", b"KEY2")]
        );
        let mode = |p: &Path| root.meta(p).unwrap().unwrap().mode;
        assert_eq!(mode(&paths::key_file("web")), 0o600);
        assert_eq!(
            mode(
                &paths::pair_dir("web")
                    .join(id(b"CERT2", b"KEY2"))
                    .join(paths::PAIR_KEY)
            ),
            0o600
        );
        // A copy edited by hand is found amiss.
        root.write_atomic(&paths::cert_file("web"), b"x", 0o644)
            .unwrap();
        let pair = live(&root, "web").unwrap().unwrap();
        assert!(copies_of(&root, "web", &pair).unwrap().is_none());
        // A copy made a symlink to the right bytes is no plain copy either.
        root.remove(&paths::cert_file("web")).unwrap();
        root.symlink(&paths::cert_file("web"), &paths::live_cert("web"))
            .unwrap();
        assert!(copies_of(&root, "web", &pair).unwrap().is_none());
    }
}
