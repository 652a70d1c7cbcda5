//! A `[[ca]]` of the playbook exists (created once, never rotated silently).

use std::path::Path;

use crate::task::{Action, Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tls::ca::Ca;

/// A private CA, created when missing.
pub struct CaTask {
    /// Its name (its directory).
    pub name: String,
    /// Lifetime of a new CA certificate.
    pub days: u32,
}

impl Task for CaTask {
    fn id(&self) -> TaskId {
        TaskId::Ca(self.name.clone())
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let ca = Ca::new(ctx.root, &self.name, ctx.clock.unix_now());
        if ca.exists() {
            return Ok(Vec::new());
        }
        let mut changes: Vec<Change> = [Path::new(crate::paths::CA_DIR).to_path_buf(), ca.dir()]
            .into_iter()
            .filter(|d| !ctx.root.exists(d))
            .map(|d| {
                Change::new(
                    format!("create directory {} (mode 0700)", d.display()),
                    Action::EnsureDir {
                        path: d,
                        mode: 0o700,
                    },
                )
            })
            .collect();
        let files = ca.new_files(self.days)?;
        for (path, content, mode) in files {
            let summary = format!("create {} (mode {mode:04o})", path.display());
            // A CA's two files are small: copied, so the diff is made only
            // for --diff, like every other.
            changes.push(
                Change::new(
                    summary,
                    Action::WriteFile {
                        path: path.clone(),
                        content: content.clone(),
                        mode,
                    },
                )
                .with_diff(ctx, || {
                    crate::tasks::file::unified_diff(&path, None, &content, mode)
                }),
            );
        }
        Ok(changes)
    }
}
