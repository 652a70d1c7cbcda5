//! ufw: rules from `ufw show added`, which lists them whether ufw is active
//! or not; ufw keeps its own rules across reboots.

use super::{mutation, stdout_ok, FirewallTask};
use crate::facts::firewall;
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
            mutation(&["ufw", "allow", &rule], format!("ufw allow {rule}"))
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
