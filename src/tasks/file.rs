//! Files and symlinks portico owns: written only when bytes or mode differ.

use std::path::{Path, PathBuf};

use crate::owned::Owned;
use crate::task::{Action, Change, Ctx, Handler, Scope, Task, TaskError, TaskId};

/// A file with exact content and mode.
pub struct FileTask {
    /// The file.
    pub path: PathBuf,
    /// Its bytes.
    pub content: Vec<u8>,
    /// Its mode (an existing file never gains bits).
    pub mode: u32,
    /// Mode for the parent directory when portico has to create it.
    pub dir_mode: u32,
    /// Handlers a change notifies.
    pub notify: Vec<Handler>,
    /// The playbook object it belongs to (`site api`), for the manifest.
    pub owner: String,
}

impl Task for FileTask {
    fn id(&self) -> TaskId {
        TaskId::File(self.path.clone())
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        self.notify.clone()
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        file_changes(ctx, &self.path, &self.content, self.mode, self.dir_mode)
    }

    fn owns(&self) -> Vec<Owned> {
        vec![Owned::file(&self.path, &self.owner, &self.content)]
    }
}

/// The changes that make `path` hold `content` with `mode`: the missing
/// parent directory, the write, or only a mode fix.
pub fn file_changes(
    ctx: &Ctx,
    path: &Path,
    content: &[u8],
    mode: u32,
    dir_mode: u32,
) -> Result<Vec<Change>, TaskError> {
    let mut changes = parent_dir(ctx, path, dir_mode)?;
    let meta = ctx.root.meta(path)?;
    if meta.is_some_and(|m| m.is_symlink) {
        return Err(TaskError::SymlinkTarget(path.to_path_buf()));
    }
    // Never loosen what an operator tightened: an existing file keeps any
    // permission bit it lacks (a 0640 key stays 0640 when 0644 is asked).
    let mode = meta.map_or(mode, |m| m.mode & mode);
    let old = ctx.root.read(path)?;
    if old.as_deref() != Some(content) {
        let verb = if old.is_some() { "update" } else { "create" };
        changes.push(
            Change::new(
                format!("{verb} {} (mode {mode:04o})", path.display()),
                Action::WriteFile {
                    path: path.to_path_buf(),
                    content: content.to_vec(),
                    mode,
                },
            )
            .with_diff(ctx, || unified_diff(path, old.as_deref(), content, mode)),
        );
    } else if let Some(m) = meta.filter(|m| m.mode != mode) {
        changes.push(Change::new(
            format!("chmod {:04o} -> {mode:04o} {}", m.mode, path.display()),
            Action::SetMode {
                path: path.to_path_buf(),
                mode,
            },
        ));
    }
    // Files portico manages belong to root; only root can give them back.
    if let Some(m) = meta.filter(|m| (m.uid, m.gid) != (0, 0)) {
        if ctx.is_root {
            changes.push(Change::new(
                format!("chown {}:{} -> 0:0 {}", m.uid, m.gid, path.display()),
                Action::SetOwner {
                    path: path.to_path_buf(),
                    uid: 0,
                    gid: 0,
                },
            ));
        }
    }
    Ok(changes)
}

/// Creating `path`'s parent directory with `mode`, when it is missing. A
/// private directory (`mode` gives nothing to group or others, as for keys)
/// that exists with looser bits is tightened to `mode`.
fn parent_dir(ctx: &Ctx, path: &Path, mode: u32) -> Result<Vec<Change>, TaskError> {
    let Some(dir) = path.parent() else {
        return Ok(Vec::new());
    };
    match ctx.root.meta(dir)? {
        None => Ok(vec![Change::new(
            format!("create directory {} (mode {mode:04o})", dir.display()),
            Action::EnsureDir {
                path: dir.to_path_buf(),
                mode,
            },
        )]),
        Some(m) if mode & 0o077 == 0 && m.is_dir && m.mode & !mode & 0o777 != 0 => {
            let tight = m.mode & mode;
            Ok(vec![Change::new(
                format!(
                    "chmod {:04o} -> {tight:04o} {} (it holds private keys)",
                    m.mode,
                    dir.display()
                ),
                Action::SetMode {
                    path: dir.to_path_buf(),
                    mode: tight,
                },
            )])
        }
        Some(_) => Ok(Vec::new()),
    }
}

/// A unified diff of a file change; private keys are never printed, nor
/// is a file of `mode` only its owner may read (the installed playbook:
/// hook arguments, tokens), since a diff goes to terminals, CI logs and
/// Ansible's output.
pub fn unified_diff(path: &Path, old: Option<&[u8]>, new: &[u8], mode: u32) -> String {
    let name = path.display().to_string();
    let was = if old.is_some() {
        name.as_str()
    } else {
        "/dev/null"
    };
    if mode & 0o077 == 0 {
        return format!(
            "--- {was}\n+++ {name}\n@@ not shown: only root may read it (mode {mode:04o}; {} bytes, was {}) @@\n",
            new.len(),
            old.map_or("absent".to_string(), |o| format!("{} bytes", o.len()))
        );
    }
    let has = |b: &[u8], what: &str| String::from_utf8_lossy(b).contains(what);
    if has(new, "PRIVATE KEY-----") || old.is_some_and(|o| has(o, "PRIVATE KEY-----")) {
        return format!(
            "--- {was}\n+++ {name}\n@@ key material redacted ({} bytes) @@\n",
            new.len()
        );
    }
    // A certificate is shown by what it says, not its base64.
    if has(new, "-----BEGIN CERTIFICATE-----") {
        let mut out = format!("--- {was}\n+++ {name}\n");
        if let Some(o) = old {
            out.push_str(&format!("-{}\n", crate::facts::cert::describe(o)));
        }
        out.push_str(&format!("+{}\n", crate::facts::cert::describe(new)));
        return out;
    }
    let old_text = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new_text = String::from_utf8_lossy(new);
    similar::TextDiff::from_lines(old_text.as_ref(), new_text.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(if old.is_some() { &name } else { "/dev/null" }, &name)
        .to_string()
}
