//! ufw: rules read from ufw's own files (`user.rules`, `user6.rules`,
//! kept whether ufw is active or not, and across reboots); the `ufw` CLI
//! runs only to change them.

use super::{mutation, port_thing, ssh_ports, Backend, FirewallTask};
use crate::facts::firewall::Port;
use crate::facts::ufw::{Ufw, Verdict};
use crate::facts::FirewallBackend;
use crate::task::{Change, Ctx, TaskError};

/// ufw turns a wanted port away by a rule that comes before any allow.
#[derive(Debug, thiserror::Error)]
#[error(
    "ufw turns TCP port {port} away by an earlier rule of its own (`{rule}` in \
     /etc/ufw/user.rules or user6.rules), and `ufw allow` would add a rule after it that \
     never matches: {what}"
)]
pub(super) struct UfwDenies {
    /// The port.
    pub(super) port: u16,
    /// The rule, as ufw shows it.
    pub(super) rule: String,
    /// What it means here and what to do.
    pub(super) what: &'static str,
}

/// The `ufw allow` rules still missing, and enabling ufw when asked to.
/// A port ufw denies by an earlier rule is the operator's decision: it is
/// reported, never papered over (and ufw is never enabled with SSH denied).
pub(super) fn check(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let ufw = Ufw::read(ctx.root)?;
    if !ufw.installed {
        // What running it would have said.
        return Err(TaskError::Cmd(crate::host::cmd::CmdError::Spawn {
            command: "ufw".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not installed (no /usr/sbin/ufw); install ufw or choose another [firewall] backend",
            ),
        }));
    }
    // Active as the facts found it: enabled, with its rules loaded.
    let active = ctx.facts.firewall == FirewallBackend::Ufw;
    let enabling = !active && task.enable;
    let ssh = if enabling { ssh_ports(ctx) } else { Vec::new() };
    let mut changes = Vec::new();
    for p in task.wanted_with(ssh.clone()) {
        match ufw.verdict(p) {
            Verdict::Open => continue,
            Verdict::Denied(rule) => {
                return Err(TaskError::Step(Box::new(UfwDenies {
                    port: p,
                    rule,
                    what: if ssh.contains(&p) {
                        "it is the SSH port, so ufw is not enabled (it would lock you out); \
                         remove that rule or set [firewall] enable = false"
                    } else {
                        "remove that rule (`ufw delete ...`) or take the port out of [firewall] ports"
                    },
                })));
            }
            Verdict::NoRule => {}
        }
        let rule = format!("{p}/tcp");
        let mut change = mutation(&["ufw", "allow", &rule], format!("ufw allow {rule}"));
        // The SSH rule added before enabling is never portico's to remove.
        if task.ports.contains(&p) {
            change.claims = vec![port_thing(Backend::Ufw, p)];
        }
        changes.push(change);
    }
    if enabling {
        changes.push(mutation(
            &["ufw", "--force", "enable"],
            "enable ufw (SSH allowed first)".into(),
        ));
    }
    Ok(changes)
}

/// `ufw delete allow PORT/tcp`, when exactly the rule portico added is
/// there (an operator's `allow 'Nginx Full'` or `allow 443` is theirs).
/// Nothing when the tool is gone (the backend was switched and its package
/// removed): so are the rules it kept.
pub(super) fn close(port: Port, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let rule = format!("{port}/tcp");
    let ufw = Ufw::read(ctx.root)?;
    if !ufw.installed || !ufw.has_plain_allow_tcp(port) {
        return Ok(Vec::new());
    }
    Ok(vec![mutation(
        &["ufw", "delete", "allow", &rule],
        format!("ufw delete allow {rule}"),
    )])
}
