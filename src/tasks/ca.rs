//! A `[[ca]]` of the playbook exists (created once, never rotated silently).

use std::path::Path;

use crate::engine::{Action, Change, Ctx, Handler, Scope, Task, TaskError};
use crate::tls::ca::{Ca, CA_BASE};

pub struct CaTask {
    pub name: String,
    pub days: i64,
}

impl Task for CaTask {
    fn name(&self) -> String {
        format!("ca {}", self.name)
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let ca = Ca::new(ctx.root, &self.name);
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
            })
            .collect();
        let files = ca
            .new_files(self.days)
            .map_err(|e| TaskError::Other(e.to_string()))?;
        for (path, content, mode) in files {
            changes.push(Change {
                summary: format!("create {} (mode {mode:04o})", path.display()),
                diff: Some(crate::tasks::file::unified_diff(&path, None, &content)),
                action: Action::WriteFile {
                    path,
                    content,
                    mode,
                },
            });
        }
        Ok(changes)
    }
}
