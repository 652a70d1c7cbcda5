//! A `[[ca]]` of the playbook exists (created once, never rotated silently).

use std::path::Path;

use crate::task::{Action, Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tls::ca::{Ca, CA_BASE};

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
        let mut changes: Vec<Change> = [Path::new(CA_BASE).to_path_buf(), ca.dir()]
            .into_iter()
            .filter(|d| !ctx.root.exists(d))
            .map(|d| Change {
                summary: format!("create directory {} (mode 0700)", d.display()),
                action: Action::EnsureDir {
                    path: d,
                    mode: 0o700,
                },
                diff: None,
                claims: Vec::new(),
            })
            .collect();
        let files = ca.new_files(self.days)?;
        for (path, content, mode) in files {
            changes.push(Change {
                summary: format!("create {} (mode {mode:04o})", path.display()),
                diff: Some(crate::tasks::file::unified_diff(&path, None, &content)),
                action: Action::WriteFile {
                    path,
                    content,
                    mode,
                },
                claims: Vec::new(),
            });
        }
        Ok(changes)
    }
}
