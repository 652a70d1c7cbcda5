//! `generate_dhparam = true`: fresh parameters from `openssl dhparam`, for
//! operators whose policy insists. It costs seconds to minutes of CPU (6-17 s
//! for 2048 bits on the build machine, far more for 4096) and buys nothing
//! over the RFC 7919 groups written by default. Generated once, then kept.

use std::path::PathBuf;

use crate::engine::{Action, Change, Ctx, Handler, Scope, Task, TaskError};
use crate::host::Command;
use crate::playbook::DhGroup;
use crate::tls::dhparam::{rfc7919_pem, PATH};

pub struct GeneratedDhparam {
    pub group: DhGroup,
    pub after: Vec<String>,
}

fn bits(group: DhGroup) -> &'static str {
    match group {
        DhGroup::Ffdhe2048 => "2048",
        DhGroup::Ffdhe3072 => "3072",
        DhGroup::Ffdhe4096 => "4096",
    }
}

impl Task for GeneratedDhparam {
    fn name(&self) -> String {
        format!("file {PATH}")
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn after(&self) -> Vec<String> {
        self.after.clone()
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let path = PathBuf::from(PATH);
        let current = ctx.root.read_to_string(&path)?.unwrap_or_default();
        let published = [DhGroup::Ffdhe2048, DhGroup::Ffdhe3072, DhGroup::Ffdhe4096]
            .iter()
            .any(|g| rfc7919_pem(*g) == current);
        // Already generated (and not one of the published groups): keep it.
        if current.contains("BEGIN DH PARAMETERS") && !published {
            return Ok(Vec::new());
        }
        let b = bits(self.group);
        Ok(vec![Change {
            summary: format!(
                "generate {b}-bit DH parameters into {PATH} (openssl dhparam: seconds of CPU)"
            ),
            action: Action::Capture {
                cmd: Command::query(["openssl", "dhparam", b]),
                path,
                mode: 0o644,
            },
            diff: None,
        }])
    }
}
