//! The catch-all default servers ([`crate::nginx::default_server`]). Which
//! sockets are free depends on the host's own configuration once nginx is
//! installed (Debian's default site claims port 80), and whether
//! `ssl_reject_handshake` exists on its version, so both are read when the
//! task checks, not when the plan is made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::facts::nginx_conf::{self, Family, Socket};
use crate::host::Command;
use crate::nginx::default_server::{self, CatchAll};
use crate::nginx::render::Target;
use crate::task::{Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tasks::certificate::CertPaths;
use crate::tasks::file::file_changes;

/// Where the catch-all servers live (both layouts include `conf.d/*.conf`).
pub const PATH: &str = "/etc/nginx/conf.d/portico-default-server.conf";

/// The certificate the catch-all completes handshakes with on an nginx
/// without `ssl_reject_handshake`: self-signed for `invalid`. Its name
/// cannot be a playbook certificate's (those start with a letter or digit).
pub fn throwaway_paths() -> CertPaths {
    CertPaths::managed("_default-server")
}

/// The catch-all default servers, decided when checked.
pub struct DefaultServerTask {
    /// One per port portico listens on, with every socket wanted.
    pub ports: Vec<CatchAll>,
    /// The nginx the files are rendered for (version known or not).
    pub target: Target,
    /// nginx installed, and the certificates of sites serving IP addresses.
    pub after: Vec<TaskId>,
    /// The package task: nothing to read before nginx is there.
    pub reads: Vec<TaskId>,
}

impl DefaultServerTask {
    /// The wildcard sockets a server outside portico already claims.
    fn taken(&self, ctx: &Ctx) -> Result<BTreeSet<Socket>, TaskError> {
        if ctx.live_host {
            // nginx's own view, includes resolved; when the current
            // configuration does not load, the files say the same.
            let out = ctx.runner.run(&Command::query(["nginx", "-T", "-q"]))?;
            if out.success() {
                return Ok(nginx_conf::default_sockets(&out.stdout));
            }
            tracing::debug!("nginx -T failed; reading the configuration files instead");
        }
        let dump = nginx_conf::dump_from_tree(ctx.root, Path::new("/etc/nginx/nginx.conf"))?;
        Ok(nginx_conf::default_sockets(&dump))
    }

    /// The target with the installed nginx's version, once there is one.
    fn live_target(&self, ctx: &Ctx) -> Target {
        let mut t = self.target;
        if let (Some(version), true) = (ctx.facts.nginx.version(), ctx.live_host) {
            // Asked once already, when the facts were gathered.
            t.version = Some(version);
            t.http2 = ctx.facts.nginx.http2;
        } else if ctx.live_host {
            // Installed by this run: ask the nginx that is there now.
            let build = ctx
                .runner
                .run(&Command::query(["nginx", "-V"]))
                .ok()
                .and_then(|o| crate::facts::nginx::parse_v(&format!("{}{}", o.stdout, o.stderr)));
            if let Some(b) = build {
                t.version = b.version();
                t.http2 = b.http2;
            }
        }
        t
    }
}

impl Task for DefaultServerTask {
    fn id(&self) -> TaskId {
        TaskId::File(PATH.into())
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn after(&self) -> Vec<TaskId> {
        self.after.clone()
    }

    /// It reads nginx's configuration: under `--check` on a host without
    /// nginx yet there is nothing to read.
    fn reads(&self) -> Vec<TaskId> {
        self.reads.clone()
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    /// Its file, and the throwaway certificate an old nginx needs.
    fn owns(&self) -> Vec<crate::owned::Owned> {
        use crate::owned::{Owned, Thing};
        let t = throwaway_paths();
        vec![
            Owned::thing(Thing::file(PATH), "catch-all servers"),
            Owned::thing(Thing::file(t.cert), "catch-all servers"),
            Owned::thing(Thing::file(t.key), "catch-all servers"),
        ]
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let taken = self.taken(ctx)?;
        let target = self.live_target(ctx);
        let ports: Vec<CatchAll> = self
            .ports
            .iter()
            .map(|c| CatchAll {
                v4: c.v4 && !taken.contains(&(Family::V4, c.port)),
                v6: c.v6 && !taken.contains(&(Family::V6, c.port)),
                ..c.clone()
            })
            .collect();
        let needs_throwaway = !target.reject_handshake()
            && ports
                .iter()
                .any(|c| c.tls && c.cert.is_none() && (c.v4 || c.v6));
        let throwaway = throwaway_paths();
        let (cert, key) = (
            throwaway.cert.display().to_string(),
            throwaway.key.display().to_string(),
        );
        let content = default_server::render(
            &ports,
            &target,
            needs_throwaway.then_some((cert.as_str(), key.as_str())),
        );
        let mut changes = Vec::new();
        if needs_throwaway && !ctx.root.exists(&throwaway.cert) {
            let names: BTreeSet<String> = ["invalid".to_string()].into();
            let issued = crate::tls::self_signed(
                &names,
                crate::playbook::KeyType::EcdsaP256,
                3650,
                ctx.clock.unix_now(),
            )?;
            changes.extend(file_changes(
                ctx,
                &throwaway.key,
                issued.key_pem.as_bytes(),
                0o600,
                0o700,
            )?);
            changes.extend(file_changes(
                ctx,
                &throwaway.cert,
                issued.cert_pem.as_bytes(),
                0o644,
                0o755,
            )?);
        }
        changes.extend(file_changes(
            ctx,
            &PathBuf::from(PATH),
            content.as_bytes(),
            0o644,
            0o755,
        )?);
        Ok(changes)
    }
}
