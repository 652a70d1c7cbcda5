//! Opens the playbook's TCP ports with the host's firewall. State is parsed
//! into sets of open ports and compared; a rule is never added twice, and a
//! firewall is only ever enabled after the SSH port is allowed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::engine::{Action, Change, Ctx, Scope, Task, TaskError};
use crate::facts::firewall::{self, Port};
use crate::facts::Family;
use crate::host::cmd::Output;
use crate::host::systemd::ServiceOp;
use crate::host::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ufw,
    Firewalld,
    Iptables,
}

pub struct FirewallTask {
    pub backend: Backend,
    pub ports: Vec<Port>,
    /// Enable an inactive ufw/firewalld.
    pub enable: bool,
    pub family: Family,
}

fn mutation(argv: &[&str], summary: String) -> Change {
    Change {
        summary,
        action: Action::Run(Command::mutation(argv.iter().copied())),
        diff: None,
    }
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
        .read_to_string(Path::new("/etc/ssh/sshd_config"))
        .ok()
        .flatten();
    firewall::ssh_ports(sshd_t.as_deref(), config.as_deref())
}

/// The file the distro's boot scripts restore iptables rules from.
pub fn iptables_rules_file(family: Family) -> &'static str {
    match family {
        Family::Rhel => "/etc/sysconfig/iptables",
        _ => "/etc/iptables/rules.v4",
    }
}

impl FirewallTask {
    fn wanted(&self, with_ssh: bool, ctx: &Ctx) -> Vec<Port> {
        let mut want: Vec<Port> = Vec::new();
        if with_ssh {
            want.extend(ssh_ports(ctx));
        }
        for p in &self.ports {
            if !want.contains(p) {
                want.push(*p);
            }
        }
        want
    }

    fn ufw(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let active = firewall::ufw_active(&stdout_ok(ctx, &["ufw", "status"])?);
        let allowed = firewall::ufw_allowed(&stdout_ok(ctx, &["ufw", "show", "added"])?);
        let enabling = !active && self.enable;
        let mut changes: Vec<Change> = self
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

    fn firewalld(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
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
                for p in self.ports.iter().filter(|p| !open.contains(p)) {
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
        for p in self
            .wanted(self.enable, ctx)
            .into_iter()
            .filter(|p| !open.contains(p))
        {
            let arg = add(p);
            changes.push(mutation(
                &["firewall-offline-cmd", &arg],
                format!("firewalld permanent (offline): {arg}"),
            ));
        }
        if self.enable {
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

    fn iptables(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let rule = |p: Port| -> Vec<String> {
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
        };
        let mut changes = Vec::new();
        let mut missing = BTreeSet::new();
        for p in &self.ports {
            let mut check: Vec<String> = vec!["iptables".into(), "-C".into(), "INPUT".into()];
            check.extend(rule(*p));
            if !ctx.runner.run(&Command::query(check))?.success() {
                missing.insert(*p);
                let mut insert: Vec<String> = vec!["iptables".into(), "-I".into(), "INPUT".into()];
                insert.extend(rule(*p));
                changes.push(Change {
                    summary: format!("iptables: accept tcp port {p}"),
                    action: Action::Run(Command::mutation(insert)),
                    diff: None,
                });
            }
        }
        // Persisted when the saved file has every rule (as iptables-save writes it).
        let file = PathBuf::from(iptables_rules_file(self.family));
        let saved = ctx.root.read_to_string(&file)?.unwrap_or_default();
        let persisted = self.ports.iter().all(|p| {
            let line = format!("-A INPUT {}", rule(*p).join(" "));
            saved.lines().any(|l| l.trim() == line)
        });
        if !missing.is_empty() || !persisted {
            changes.push(Change {
                summary: format!("save the rules to {}", file.display()),
                action: Action::Capture {
                    cmd: Command::query(["iptables-save"]),
                    path: file,
                    mode: 0o600,
                },
                diff: None,
            });
        }
        Ok(changes)
    }
}

impl Task for FirewallTask {
    fn name(&self) -> String {
        let ports: Vec<String> = self.ports.iter().map(|p| p.to_string()).collect();
        format!("firewall {:?} {}", self.backend, ports.join(",")).to_lowercase()
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        match self.backend {
            Backend::Ufw => self.ufw(ctx),
            Backend::Firewalld => self.firewalld(ctx),
            Backend::Iptables => self.iptables(ctx),
        }
    }
}
