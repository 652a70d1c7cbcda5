//! firewalld: the runtime and the permanent configuration, each compared
//! on its own; offline (`firewall-offline-cmd`) when it is not running.

use super::{mutation, port_thing, query, stdout_ok, Backend, FirewallTask};
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
                let mut change = mutation(&argv, format!("firewalld {what}: {arg}"));
                change.claims = vec![port_thing(Backend::Firewalld, *p)];
                changes.push(change);
            }
        }
        // Runtime and permanent: portico's only where both lacked it.
        super::claim_only_where_missing_everywhere(&mut changes, 2);
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
        let mut change = mutation(
            &["firewall-offline-cmd", &arg],
            format!("firewalld permanent (offline): {arg}"),
        );
        // The SSH port allowed before enabling is never portico's to remove.
        if task.ports.contains(&p) {
            change.claims = vec![port_thing(Backend::Firewalld, p)];
        }
        changes.push(change);
    }
    if task.enable {
        for op in [ServiceOp::Enable, ServiceOp::Start] {
            changes.push(Change::new(
                format!("{} firewalld.service (SSH allowed first)", op.name()),
                Action::Service {
                    op,
                    unit: "firewalld.service".into(),
                },
            ));
        }
    }
    Ok(changes)
}

/// Removes the service or port entry portico would have added for `port`
/// (runtime and permanent, or offline), where it is there.
pub(super) fn close(port: Port, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let running = firewall::firewalld_running(&query(ctx, &["firewall-cmd", "--state"])?.stdout);
    let tools: Vec<(Vec<&str>, &str)> = if running {
        vec![
            (vec!["firewall-cmd", "--permanent"], "permanent"),
            (vec!["firewall-cmd"], "runtime"),
        ]
    } else {
        vec![(vec!["firewall-offline-cmd"], "permanent (offline)")]
    };
    let mut changes = Vec::new();
    for (tool, what) in tools {
        let list = |flag: &str| -> Result<String, TaskError> {
            let mut argv = tool.clone();
            argv.push(flag);
            stdout_ok(ctx, &argv)
        };
        let arg = match firewall::firewalld_service(port) {
            Some(s) if list("--list-services")?.split_whitespace().any(|x| x == s) => {
                format!("--remove-service={s}")
            }
            _ if list("--list-ports")?
                .split_whitespace()
                .any(|x| x == format!("{port}/tcp")) =>
            {
                format!("--remove-port={port}/tcp")
            }
            _ => continue,
        };
        let mut argv = tool.clone();
        argv.push(&arg);
        changes.push(mutation(&argv, format!("firewalld {what}: {arg}")));
    }
    Ok(changes)
}
