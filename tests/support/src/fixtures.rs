//! Files of the repository the tests read: playbooks, captured command
//! output, captured configuration trees.

use std::path::{Path, PathBuf};

/// `rel` in the repository (`playbooks/x.toml`, `tests/fixtures/...`).
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The text of `rel` in the repository.
pub fn text(rel: &str) -> String {
    let path = repo(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A writable copy of the captured Debian 12 tree (`cp -a`: modes and
/// links as captured).
pub fn debian_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!(
            "{}/.",
            repo("tests/fixtures/trees/debian12").display()
        ))
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a the Debian 12 fixture tree");
    dir
}
