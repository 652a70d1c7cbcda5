//! iptables and ip6tables: every rule in both families, each checked on
//! its own (`-C`), inserted at the top of INPUT so a final DROP cannot hide
//! it, and saved where the distro's boot service restores it from. That
//! service (netfilter-persistent, or iptables-services on EL) is installed
//! by the plan and enabled here, unless the playbook says `persist = false`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{port_list, port_thing, query, Backend, FirewallTask};
use crate::facts::firewall::Port;
use crate::facts::Family;
use crate::host::systemd::ServiceOp;
use crate::host::Command;
use crate::task::{Action, Change, Ctx, TaskError};

/// The package whose boot service restores saved rules.
pub fn persistence_package(family: Family) -> &'static str {
    match family {
        Family::Rhel => "iptables-services",
        _ => "iptables-persistent",
    }
}

use crate::facts::firewall::persistence_units;

/// One address family's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    V4,
    V6,
}

impl Ip {
    fn tool(self) -> &'static str {
        match self {
            Ip::V4 => "iptables",
            Ip::V6 => "ip6tables",
        }
    }

    fn save(self) -> &'static str {
        match self {
            Ip::V4 => "iptables-save",
            Ip::V6 => "ip6tables-save",
        }
    }
}

/// The file the distro's boot service restores a family's rules from.
pub fn rules_file(family: Family, ip: Ip) -> &'static str {
    match (family, ip) {
        (Family::Rhel, Ip::V4) => crate::paths::IPTABLES_RULES_EL_V4,
        (Family::Rhel, Ip::V6) => crate::paths::IPTABLES_RULES_EL_V6,
        (_, Ip::V4) => crate::paths::IPTABLES_RULES_DEBIAN_V4,
        (_, Ip::V6) => crate::paths::IPTABLES_RULES_DEBIAN_V6,
    }
}

fn rule(p: Port) -> Vec<String> {
    [
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        &p.to_string(),
        "-j",
        "ACCEPT",
    ]
    .map(String::from)
    .to_vec()
}

/// The families this host filters: IPv4 always; IPv6 unless ip6tables
/// cannot run (a kernel without IPv6).
fn families(ctx: &Ctx) -> Result<Vec<Ip>, TaskError> {
    let mut out = vec![Ip::V4];
    if query(ctx, &["ip6tables", "-S", "INPUT"])?.success() {
        out.push(Ip::V6);
    }
    Ok(out)
}

fn family_changes(task: &FirewallTask, ctx: &Ctx, ip: Ip) -> Result<Vec<Change>, TaskError> {
    let tool = ip.tool();
    let mut changes = Vec::new();
    let mut missing = BTreeSet::new();
    for p in &task.ports {
        let mut check: Vec<String> = vec![tool.into(), "-C".into(), "INPUT".into()];
        check.extend(rule(*p));
        if !ctx.runner.run(&Command::query(check))?.success() {
            missing.insert(*p);
            let mut insert: Vec<String> = vec![tool.into(), "-I".into(), "INPUT".into()];
            insert.extend(rule(*p));
            changes.push(
                Change::new(
                    format!("{tool}: accept tcp port {p}"),
                    Action::Run(Command::mutation(insert)),
                )
                .claiming(vec![port_thing(Backend::Iptables, *p)]),
            );
        }
    }
    // Saved when the file has every rule (as the save tool writes it).
    let file = PathBuf::from(rules_file(task.family, ip));
    let saved = ctx.root.read_to_string(&file)?.unwrap_or_default();
    let persisted = task.ports.iter().all(|p| {
        let line = format!("-A INPUT {}", rule(*p).join(" "));
        saved.lines().any(|l| l.trim() == line)
    });
    if !missing.is_empty() || !persisted {
        changes.push(Change::new(
            format!("save the {tool} rules to {}", file.display()),
            Action::Capture {
                cmd: Command::query([ip.save()]),
                path: file,
                mode: 0o600,
            },
        ));
    }
    Ok(changes)
}

/// The boot units that restore the saved rules and are not enabled.
fn units_to_enable(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<&'static str>, TaskError> {
    let mut out = Vec::new();
    for unit in persistence_units(task.family) {
        if !ctx.systemd.state(unit)?.is_enabled() {
            out.push(*unit);
        }
    }
    Ok(out)
}

/// The rules missing in each address family, saving them, and the boot
/// units that restore them.
pub(super) fn check(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let mut changes = Vec::new();
    let families = families(ctx)?;
    for ip in &families {
        changes.extend(family_changes(task, ctx, *ip)?);
    }
    super::claim_only_where_missing_everywhere(&mut changes, families.len());
    if task.persist && ctx.facts.systemd {
        for unit in units_to_enable(task, ctx)? {
            changes.push(Change::new(format!(
                    "enable {unit}, which restores the saved rules at boot (ports {} stay open after a reboot)",
                    port_list(&task.ports)
                ), Action::Service {
                    op: ServiceOp::Enable,
                    unit: unit.to_string(),
                }));
        }
    }
    Ok(changes)
}

/// What the operator should know: rules that will not survive a reboot.
pub(super) fn notes(task: &FirewallTask, ctx: &Ctx) -> Vec<String> {
    if task.persist && ctx.facts.systemd {
        return Vec::new();
    }
    let restored =
        ctx.facts.systemd && units_to_enable(task, ctx).is_ok_and(|missing| missing.is_empty());
    if restored {
        return Vec::new();
    }
    let why = if task.persist {
        "this host has no systemd to restore them at boot"
    } else {
        "[firewall] persist = false, and nothing restores them at boot"
    };
    vec![format!(
        "the iptables rules opening {} are saved to {} but {why}: they are gone after the next reboot",
        port_list(&task.ports),
        rules_file(task.family, Ip::V4)
    )]
}

/// Deletes portico's accept rule for `port` in each family that has it,
/// and saves the rules where the boot service restores them from.
pub(super) fn close(port: Port, family: Family, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let mut changes = Vec::new();
    for ip in families(ctx)? {
        let tool = ip.tool();
        let with = |verb: &str| -> Vec<String> {
            let mut argv: Vec<String> = vec![tool.into(), verb.into(), "INPUT".into()];
            argv.extend(rule(port));
            argv
        };
        if !ctx.runner.run(&Command::query(with("-C")))?.success() {
            continue;
        }
        changes.push(Change::new(
            format!("{tool}: delete the accept rule for tcp port {port}"),
            Action::Run(Command::mutation(with("-D"))),
        ));
        let file = PathBuf::from(rules_file(family, ip));
        if ctx.root.exists(&file) {
            changes.push(Change::new(
                format!("save the {tool} rules to {}", file.display()),
                Action::Capture {
                    cmd: Command::query([ip.save()]),
                    path: file,
                    mode: 0o600,
                },
            ));
        }
    }
    Ok(changes)
}
