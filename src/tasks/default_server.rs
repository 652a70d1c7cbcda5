//! The catch-all default servers ([`crate::nginx::default_server`]). Which
//! sockets are free depends on the host's own configuration once nginx is
//! installed (Debian's default site claims port 80), and whether
//! `ssl_reject_handshake` exists on its version, so both are read when the
//! task checks, not when the plan is made.

use std::collections::BTreeSet;
use std::path::Path;

use crate::facts::nginx_conf::{self, Family, Socket};
use crate::host::Command;
use crate::nginx::default_server::{self, CatchAll};
use crate::nginx::render::Target;
use crate::task::{Action, Change, Ctx, TaskError};
use crate::tasks::certificate::CertPaths;

/// The catch-all servers' file, inside the generation.
pub const FILE: &str = "portico-default-server.conf";

/// The name of the certificate the catch-all completes handshakes with on
/// an nginx without `ssl_reject_handshake`: self-signed for `invalid`. It
/// cannot be a playbook certificate's (those start with a letter or digit).
pub const THROWAWAY: &str = "_default-server";

/// Its files.
pub fn throwaway_paths() -> CertPaths {
    CertPaths::managed(THROWAWAY)
}

/// nginx's whole configuration as `nginx -T` prints it (includes
/// resolved); when the current configuration does not load, or nginx is
/// not installed yet (a check before the package), or under `--root`, the
/// files say the same. Empty without nginx.
pub fn dump(ctx: &Ctx) -> Result<String, TaskError> {
    let main = Path::new(crate::paths::NGINX_CONF);
    if ctx.live_host {
        match ctx.runner.run(&Command::query(["nginx", "-T", "-q"])) {
            Ok(out) if out.success() => return Ok(nginx_conf::without_portico_files(&out.stdout)),
            Ok(_) => tracing::debug!("nginx -T failed; reading the configuration files instead"),
            Err(e) => tracing::debug!("{e}; reading the configuration files instead"),
        }
    }
    if !ctx.root.exists(main) {
        return Ok(String::new());
    }
    Ok(nginx_conf::dump_from_tree(ctx.root, main)?)
}

/// The target with the installed nginx's version, once there is one.
fn live_target(ctx: &Ctx, target: Target) -> Target {
    let mut t = target;
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

/// The catch-all servers as they must be on this host now (which sockets
/// are free depends on the host's own configuration once nginx is
/// installed: Debian's default site claims port 80; whether
/// `ssl_reject_handshake` exists, on its version): the file inside the
/// generation, its text, and the throwaway certificate when an old nginx
/// needs one and it is not there yet.
pub fn decide(
    ctx: &Ctx,
    ports: &[CatchAll],
    target: Target,
    dump: &str,
) -> Result<(String, String, Vec<Change>), TaskError> {
    // The wildcard sockets a server outside portico already claims.
    let taken: BTreeSet<Socket> = nginx_conf::default_sockets(dump);
    let target = live_target(ctx, target);
    let ports: Vec<CatchAll> = ports
        .iter()
        .map(|c| CatchAll {
            v4: c.v4 && !taken.contains(&(Family::V4, c.port)),
            v6: c.v6 && !taken.contains(&(Family::V6, c.port)),
            // A site's certificate not obtained yet: refused like any other.
            cert: c.cert.clone().filter(|(cert, key)| {
                ctx.mode == crate::task::Mode::Check
                    || (ctx.root.resolves(Path::new(cert)) && ctx.root.resolves(Path::new(key)))
            }),
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
    if needs_throwaway && !ctx.root.resolves(&throwaway.cert) {
        let names: BTreeSet<String> = ["invalid".to_string()].into();
        let issued = crate::tls::self_signed(
            &names,
            crate::playbook::KeyType::EcdsaP256,
            3650,
            ctx.clock.unix_now(),
        )?;
        changes.push(Change::new(
            format!(
                "write {} and its key (self-signed for the catch-all servers)",
                throwaway.cert.display()
            ),
            Action::WritePair {
                name: THROWAWAY.into(),
                cert: issued.cert_pem.into_bytes(),
                key: issued.key_pem.into_bytes(),
            },
        ));
    }
    Ok((FILE.to_string(), content, changes))
}
