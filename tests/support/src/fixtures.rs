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
