//! Opens the playbook's TCP ports with the host's firewall, in every
//! address family it filters, and makes them last across a reboot. State is
//! parsed into sets of open ports and compared; a rule is never added twice,
//! a rule portico did not add is never touched, and a firewall is only ever
//! enabled after the SSH port is allowed.

mod firewalld;
mod iptables;
pub mod nftables;
mod ufw;

use std::path::Path;

use crate::facts::firewall::{self, Port};
use crate::facts::Family;
use crate::host::cmd::Output;
use crate::host::Command;
use crate::owned::{Owned, Thing};
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};

pub use iptables::{persistence_package, rules_file};

/// The firewall portico edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// ufw.
    Ufw,
    /// firewalld (runtime and permanent).
    Firewalld,
    /// iptables and ip6tables.
    Iptables,
    /// Native nftables.
    Nftables,
}

impl Backend {
    /// The backend a manifest names.
    pub fn from_name(name: &str) -> Option<Backend> {
        [
            Backend::Ufw,
            Backend::Firewalld,
            Backend::Iptables,
            Backend::Nftables,
        ]
        .into_iter()
        .find(|b| b.name() == name)
    }

    /// As the report and playbooks name it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ufw => "ufw",
            Backend::Firewalld => "firewalld",
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        }
    }
}

/// The playbook's ports open in the firewall, in every family it filters.
pub struct FirewallTask {
    /// Which firewall.
    pub backend: Backend,
    /// The TCP ports.
    pub ports: Vec<Port>,
    /// Enable an inactive ufw/firewalld.
    pub enable: bool,
    /// The distro family (where rules are saved).
    pub family: Family,
    /// Make what is opened survive a reboot (iptables, nftables); ufw and
    /// firewalld keep their own rules.
    pub persist: bool,
}

/// The manifest's name for the rule opening `port`.
pub fn port_thing(backend: Backend, port: Port) -> Thing {
    Thing::Port {
        backend: backend.name().into(),
        port,
    }
}

/// The changes that close `port`, which portico opened with `backend`:
/// only the rule portico added, in every family and configuration it
/// added it to. Never an SSH port.
pub fn close_changes(
    backend: Backend,
    port: Port,
    family: Family,
    ctx: &Ctx,
) -> Result<Vec<Change>, TaskError> {
    if ssh_ports(ctx).contains(&port) {
        // Left open, and forgotten: it is how the operator gets in.
        return Ok(Vec::new());
    }
    let closed = match backend {
        Backend::Ufw => ufw::close(port, ctx),
        Backend::Firewalld => firewalld::close(port, ctx),
        Backend::Iptables => iptables::close(port, family, ctx),
        Backend::Nftables => nftables::close(port, ctx),
    };
    match closed {
        // The firewall's tool is gone (the backend was switched and its
        // package removed): so are the rules it kept.
        Err(TaskError::Cmd(crate::host::cmd::CmdError::Spawn { source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Keeps a port's claim only when every one of the `places` it can be open
/// in (address families, runtime and permanent configuration) lacked it: a
/// rule the operator had in one of them means the port was theirs first,
/// and closing it later would take their rule too.
fn claim_only_where_missing_everywhere(changes: &mut [Change], places: usize) {
    let mut count: std::collections::BTreeMap<Thing, usize> = Default::default();
    for t in changes.iter().flat_map(|c| &c.claims) {
        *count.entry(t.clone()).or_default() += 1;
    }
    for c in changes.iter_mut() {
        c.claims
            .retain(|t| count.get(t).copied().unwrap_or(0) >= places);
    }
}

fn mutation(argv: &[&str], summary: String) -> Change {
    Change::new(
        summary,
        Action::Run(Command::mutation(argv.iter().copied())),
    )
}

fn query(ctx: &Ctx, argv: &[&str]) -> Result<Output, TaskError> {
    Ok(ctx.runner.run(&Command::query(argv.iter().copied()))?)
}

fn stdout_ok(ctx: &Ctx, argv: &[&str]) -> Result<String, TaskError> {
    Ok(ctx
        .runner
        .run_ok(&Command::query(argv.iter().copied()))?
        .stdout)
}

/// The SSH ports, from what sshd itself says (its effective config) first.
fn ssh_ports(ctx: &Ctx) -> Vec<Port> {
    let sshd_t = query(ctx, &["sshd", "-T"])
        .ok()
        .filter(Output::success)
        .map(|o| o.stdout);
    let config = ctx
        .root
        .read_to_string(Path::new(crate::paths::SSHD_CONFIG))
        .ok()
        .flatten();
    firewall::ssh_ports(sshd_t.as_deref(), config.as_deref())
}

/// The ports as nft and humans write a set: `80, 443`.
fn port_list(ports: &[Port]) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FirewallTask {
    fn wanted(&self, with_ssh: bool, ctx: &Ctx) -> Vec<Port> {
        self.wanted_with(if with_ssh { ssh_ports(ctx) } else { Vec::new() })
    }

    /// The SSH ports `ssh` first, then the playbook's.
    fn wanted_with(&self, ssh: Vec<Port>) -> Vec<Port> {
        let mut want: Vec<Port> = ssh;
        for p in &self.ports {
            if !want.contains(p) {
                want.push(*p);
            }
        }
        want
    }
}

impl Task for FirewallTask {
    fn id(&self) -> TaskId {
        TaskId::Firewall {
            backend: self.backend.name(),
            ports: self.ports.clone(),
        }
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    /// The rules for the playbook's ports; the manifest records only the
    /// ones portico added (claimed by the change that added them).
    fn owns(&self) -> Vec<Owned> {
        self.ports
            .iter()
            .map(|p| Owned::thing(port_thing(self.backend, *p), "firewall"))
            .collect()
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let mut changes = match self.backend {
            Backend::Ufw => ufw::check(self, ctx)?,
            Backend::Firewalld => firewalld::check(self, ctx)?,
            Backend::Iptables => iptables::check(self, ctx)?,
            Backend::Nftables => nftables::check_runtime(self, ctx)?,
        };
        if changes.iter().any(|c| !c.claims.is_empty()) {
            // The SSH port is never portico's to close later.
            let ssh: Vec<Thing> = ssh_ports(ctx)
                .into_iter()
                .map(|p| port_thing(self.backend, p))
                .collect();
            for c in &mut changes {
                c.claims.retain(|t| !ssh.contains(t));
            }
        }
        Ok(changes)
    }

    fn notes(&self, ctx: &Ctx) -> Vec<String> {
        match self.backend {
            Backend::Iptables => iptables::notes(self, ctx),
            Backend::Nftables if !self.persist => vec![format!(
                "[firewall] persist = false: the nftables rules opening {} are not saved, so they \
                 are gone after the next reboot or `systemctl restart nftables`",
                port_list(&self.ports)
            )],
            _ => Vec::new(),
        }
    }
}
