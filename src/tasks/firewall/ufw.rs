//! ufw: rules from `ufw show added`, which lists them whether ufw is active
//! or not; ufw keeps its own rules across reboots.

use super::{mutation, port_thing, stdout_ok, Backend, FirewallTask};
use crate::facts::firewall::{self, Port};
use crate::task::{Change, Ctx, TaskError};

/// The `ufw allow` rules still missing, and enabling ufw when asked to.
pub(super) fn check(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let active = firewall::ufw_active(&stdout_ok(ctx, &["ufw", "status"])?);
    let allowed = firewall::ufw_allowed(&stdout_ok(ctx, &["ufw", "show", "added"])?);
    let enabling = !active && task.enable;
    let mut changes: Vec<Change> = task
        .wanted(enabling, ctx)
        .into_iter()
        .filter(|p| !allowed.contains(p))
        .map(|p| {
            let rule = format!("{p}/tcp");
            let mut change = mutation(&["ufw", "allow", &rule], format!("ufw allow {rule}"));
            // The SSH rule added before enabling is never portico's to remove.
            if task.ports.contains(&p) {
                change.claims = vec![port_thing(Backend::Ufw, p)];
            }
            change
        })
        .collect();
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
pub(super) fn close(port: Port, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let rule = format!("{port}/tcp");
    let added = stdout_ok(ctx, &["ufw", "show", "added"])?;
    let ours = format!("ufw allow {rule}");
    if !added.lines().any(|l| l.trim() == ours) {
        return Ok(Vec::new());
    }
    Ok(vec![mutation(
        &["ufw", "delete", "allow", &rule],
        format!("ufw delete allow {rule}"),
    )])
}
