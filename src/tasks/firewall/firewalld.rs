//! firewalld: the runtime and the permanent configuration, each compared
//! on its own; offline (`firewall-offline-cmd`) when it is not running.

use super::{mutation, query, stdout_ok, FirewallTask};
use crate::facts::firewall::{self, Port};
use crate::host::systemd::ServiceOp;
use crate::task::{Action, Change, Ctx, TaskError};

/// The commands that open the missing ports (runtime and permanent, or
/// offline when firewalld is not running), and enabling it when asked to.
pub(super) fn check(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let running = query(ctx, &["firewall-cmd", "--state"])?;
    let running = firewall::firewalld_running(&running.stdout);
    let add = |p: Port| match firewall::firewalld_service(p) {
        Some(s) => format!("--add-service={s}"),
        None => format!("--add-port={p}/tcp"),
    };
    let mut changes = Vec::new();
    if running {
        for (permanent, what) in [(true, "permanent"), (false, "runtime")] {
            let flag = |args: &[&'static str]| -> Vec<&'static str> {
                let mut v = vec!["firewall-cmd"];
                if permanent {
                    v.push("--permanent");
                }
                v.extend_from_slice(args);
                v
            };
            let open = firewall::firewalld_open(
                &stdout_ok(ctx, &flag(&["--list-services"]))?,
                &stdout_ok(ctx, &flag(&["--list-ports"]))?,
            );
            for p in task.ports.iter().filter(|p| !open.contains(p)) {
                let arg = add(*p);
                let mut argv = flag(&[]);
                argv.push(&arg);
                changes.push(mutation(&argv, format!("firewalld {what}: {arg}")));
            }
        }
        return Ok(changes);
    }
    // Not running: the permanent configuration is edited offline.
    let open = firewall::firewalld_open(
        &stdout_ok(ctx, &["firewall-offline-cmd", "--list-services"])?,
        &stdout_ok(ctx, &["firewall-offline-cmd", "--list-ports"])?,
    );
    for p in task
        .wanted(task.enable, ctx)
        .into_iter()
        .filter(|p| !open.contains(p))
    {
        let arg = add(p);
        changes.push(mutation(
            &["firewall-offline-cmd", &arg],
            format!("firewalld permanent (offline): {arg}"),
        ));
    }
    if task.enable {
        for op in [ServiceOp::Enable, ServiceOp::Start] {
            changes.push(Change {
                summary: format!("{} firewalld.service (SSH allowed first)", op.name()),
                action: Action::Service {
                    op,
                    unit: "firewalld.service".into(),
                },
                diff: None,
            });
        }
    }
    Ok(changes)
}
