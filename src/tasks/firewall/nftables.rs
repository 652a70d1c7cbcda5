//! Native nftables, as Debian 10+ and EL 8+ run it from `nftables.service`
//! and `/etc/nftables.conf`. Read and written with `nft --json`. portico
//! adds `tcp dport { ... } accept` rules carrying its comment to every input
//! base chain that drops what it does not accept (before a final drop or
//! reject), recognises its own rules by that comment, and never touches
//! any other rule.
//!
//! Persistence is a file portico owns, `/etc/nftables.d/portico.nft`, that
//! `/etc/nftables.conf` includes at its end (one line added, shown in
//! `--diff`; the rest of the file is never rewritten). `nft -c -f
//! /etc/nftables.conf` must accept the result before anything is loaded:
//! a boot configuration nft rejects is rolled back, since it would leave the
//! host without its firewall after the next reboot.

use crate::paths;
use std::path::Path;

use serde_json::{json, Value};

use super::{port_list, Backend, FirewallTask};
use crate::facts::firewall::Port;
use crate::facts::nftables::{self, GuardedChain, COMMENT};
use crate::host::systemd::ServiceOp;
use crate::host::Command;
use crate::task::{Action, Change, Ctx, Scope, Task, TaskError, TaskId};
use crate::tasks::file::file_changes;

const UNIT: &str = "nftables.service";
/// The line portico adds to [`paths::NFTABLES_CONF`], and the comment above it.
pub const INCLUDE_LINE: &str = "include \"/etc/nftables.d/portico.nft\"";
/// The comment portico puts above [`INCLUDE_LINE`].
pub const INCLUDE_COMMENT: &str = "# Added by portico: the ports it opens (see that file).";

/// What the nftables backend refuses, and why.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft -c` said no to the boot configuration; its own lines.
    #[error("nft rejects {conf} as it would be loaded at boot, so nothing was changed:\n{errors}")]
    Rejected {
        /// `/etc/nftables.conf`.
        conf: &'static str,
        /// What nft said.
        errors: String,
    },
    /// nft's JSON was not understood.
    #[error("`nft --json list ruleset`: {0}")]
    Json(String),
    /// A chain or table name portico cannot write back safely.
    #[error("nftables chain {chain}: the name {name:?} cannot be written safely; open the ports yourself")]
    Name {
        /// `family table chain`.
        chain: String,
        /// The offending name.
        name: String,
    },
    /// The live ruleset does not come from nftables.service.
    #[error(
        "the running nftables ruleset was not loaded by nftables.service, and portico makes its rules \
         last through /etc/nftables.conf: load your ruleset from there (systemctl enable --now nftables), \
         or set [firewall] persist = false"
    )]
    NotFromService,
}

impl NftError {
    fn into_task(self) -> TaskError {
        TaskError::Step(Box::new(self))
    }
}

/// The guarded input chains, from nft itself.
fn ruleset(ctx: &Ctx) -> Result<Vec<GuardedChain>, TaskError> {
    let out = ctx
        .runner
        .run_ok(&Command::query(["nft", "--json", "list", "ruleset"]))?;
    let r = nftables::parse(&out.stdout).map_err(|e| NftError::Json(e).into_task())?;
    for c in &r.guarded {
        for name in [&c.table, &c.name] {
            if !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch))
            {
                return Err(NftError::Name {
                    chain: c.spec(),
                    name: name.clone(),
                }
                .into_task());
            }
        }
    }
    Ok(r.guarded)
}

fn sorted(ports: &[Port]) -> Vec<Port> {
    let mut p = ports.to_vec();
    p.sort_unstable();
    p.dedup();
    p
}

/// `tcp dport { 80, 443 }`, or `tcp dport 80` for one port.
fn dport(ports: &[Port]) -> String {
    match ports {
        [one] => format!("tcp dport {one}"),
        many => format!("tcp dport {{ {} }}", port_list(many)),
    }
}

/// The JSON of the accept rule for `ports` in `chain`.
fn rule_json(chain: &GuardedChain, ports: &[Port]) -> Value {
    let right = match ports {
        [one] => json!(one),
        many => json!({ "set": many }),
    };
    json!({
        "family": chain.family,
        "table": chain.table,
        "chain": chain.name,
        "comment": COMMENT,
        "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": right}},
            {"accept": null}
        ]
    })
}

/// The live changes: per chain, portico's rule with exactly these ports,
/// before the chain's final drop or reject (or at its end under a drop
/// policy). Rules portico added for other ports are replaced. Every port
/// in portico's rule is portico's: the ones it adds are claimed.
pub fn check_runtime(task: &FirewallTask, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let want = sorted(&task.ports);
    let mut changes = Vec::new();
    for chain in ruleset(ctx)? {
        if let Some(mut change) = replace_rules(&chain, &want) {
            change.claims = want
                .iter()
                .filter(|p| !chain.portico.iter().any(|(_, ours)| ours.contains(p)))
                .map(|p| super::port_thing(Backend::Nftables, *p))
                .collect();
            changes.push(change);
        }
    }
    Ok(changes)
}

/// Takes `port` out of portico's rules, keeping the rest of their ports.
pub fn close(port: Port, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
    let mut changes = Vec::new();
    for chain in ruleset(ctx)? {
        if !chain.portico.iter().any(|(_, ports)| ports.contains(&port)) {
            continue;
        }
        let rest: Vec<Port> = chain
            .portico
            .iter()
            .flat_map(|(_, ports)| ports.iter().copied())
            .filter(|p| *p != port)
            .collect();
        changes.extend(replace_rules(&chain, &sorted(&rest)));
    }
    Ok(changes)
}

/// The change that leaves `chain` with one portico rule for exactly
/// `want` (none when `want` is empty); `None` when it has that already.
fn replace_rules(chain: &GuardedChain, want: &[Port]) -> Option<Change> {
    let ours = &chain.portico;
    let have_exactly = match ours.as_slice() {
        [] => want.is_empty(),
        [one] => one.1.iter().copied().collect::<Vec<_>>() == want,
        _ => false,
    };
    if have_exactly {
        return None;
    }
    let mut commands: Vec<Value> = ours
        .iter()
        .map(|(handle, _)| {
            json!({"delete": {"rule": {
                "family": chain.family, "table": chain.table, "chain": chain.name, "handle": handle
            }}})
        })
        .collect();
    let replaced = if ours.is_empty() {
        String::new()
    } else {
        format!(", replacing portico's earlier rule for {}", ours.len())
    };
    let summary = if want.is_empty() {
        format!("nftables {}: delete portico's rules", chain.spec())
    } else {
        let mut rule = rule_json(chain, want);
        let (verb, place) = match chain.terminal {
            Some(handle) => {
                rule["handle"] = json!(handle);
                ("insert", "before its final drop")
            }
            None => ("add", "under its drop policy"),
        };
        commands.push(json!({ verb: { "rule": rule } }));
        format!(
            "nftables {}: accept {} {place}{replaced}",
            chain.spec(),
            dport(want)
        )
    };
    let document = json!({ "nftables": commands }).to_string();
    Some(Change::new(
        summary,
        Action::Run(Command::mutation(["nft", "--json", "-f", "-"]).stdin(&document)),
    ))
}

/// The boot file: the same rules, placed by index (handles do not exist
/// yet when `/etc/nftables.conf` is loaded).
pub fn boot_file(chains: &[GuardedChain], ports: &[Port]) -> String {
    let mut s = String::from(crate::nginx::render::HEADER);
    s.push_str(
        "# The ports portico opens, added to the input chains /etc/nftables.conf\n\
         # defines; that file includes this one at its end.\n",
    );
    let ports = sorted(ports);
    for c in chains {
        let rule = format!("{} accept comment \"{COMMENT}\"", dport(&ports));
        match c.terminal_index {
            Some(i) => s.push_str(&format!("insert rule {} index {i} {rule}\n", c.spec())),
            None => s.push_str(&format!("add rule {} {rule}\n", c.spec())),
        }
    }
    s
}

/// Does `conf` already include `path` (itself or through a glob)?
pub fn includes(conf: &str, path: &str) -> bool {
    conf.lines().any(|l| {
        let l = l.trim();
        let Some(rest) = l.strip_prefix("include") else {
            return false;
        };
        let pattern = rest.trim().trim_end_matches(';').trim().trim_matches('"');
        let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
        let (pdir, pname) = path.rsplit_once('/').unwrap_or(("", path));
        dir == pdir && crate::facts::nginx_conf::glob_match(name, pname)
    })
}

/// The boot file, the include line and `nftables.service` enabled.
pub struct NftBootTask {
    /// The ports.
    pub ports: Vec<Port>,
}

impl Task for NftBootTask {
    fn id(&self) -> TaskId {
        TaskId::File(paths::NFTABLES_BOOT_FILE.into())
    }

    fn owns(&self) -> Vec<crate::owned::Owned> {
        use crate::owned::{Owned, Thing};
        vec![
            Owned::thing(Thing::file(paths::NFTABLES_BOOT_FILE), "firewall"),
            Owned::thing(
                Thing::Line {
                    path: paths::NFTABLES_CONF.into(),
                    line: INCLUDE_LINE.into(),
                },
                "firewall",
            ),
        ]
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        if !ctx.systemd.state(UNIT)?.is_active() {
            return Err(NftError::NotFromService.into_task());
        }
        let chains = ruleset(ctx)?;
        let mut changes = file_changes(
            ctx,
            Path::new(paths::NFTABLES_BOOT_FILE),
            boot_file(&chains, &self.ports).as_bytes(),
            0o644,
            0o755,
        )?;
        let conf = ctx
            .root
            .read_to_string(Path::new(paths::NFTABLES_CONF))?
            .unwrap_or_default();
        if !includes(&conf, paths::NFTABLES_BOOT_FILE) {
            let mode = ctx
                .root
                .meta(Path::new(paths::NFTABLES_CONF))?
                .map_or(0o755, |m| m.mode);
            let mut new = conf.clone();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&format!("{INCLUDE_COMMENT}\n{INCLUDE_LINE}\n"));
            let mut add = file_changes(
                ctx,
                Path::new(paths::NFTABLES_CONF),
                new.as_bytes(),
                mode,
                0o755,
            )?;
            if let Some(first) = add.first_mut() {
                first.summary = format!("{} [one include line added]", first.summary);
            }
            // The line is portico's because portico adds it (one the
            // operator wrote, or a glob include, stays theirs).
            for c in &mut add {
                c.claims = vec![crate::owned::Thing::Line {
                    path: paths::NFTABLES_CONF.into(),
                    line: INCLUDE_LINE.into(),
                }];
            }
            changes.extend(add);
        }
        if !ctx.systemd.state(UNIT)?.is_enabled() {
            changes.push(Change::new(
                format!(
                    "enable {UNIT}, which loads {} at boot",
                    paths::NFTABLES_CONF
                ),
                Action::Service {
                    op: ServiceOp::Enable,
                    unit: UNIT.into(),
                },
            ));
        }
        Ok(changes)
    }
}

/// The gate between the boot configuration and the live rules: nft must
/// accept `/etc/nftables.conf` as it will be loaded at boot.
pub struct NftCheckTask {
    /// The boot file.
    pub after: Vec<TaskId>,
}

impl Task for NftCheckTask {
    fn id(&self) -> TaskId {
        TaskId::NftCheck
    }

    fn scope(&self) -> Scope {
        Scope::Host
    }

    fn after(&self) -> Vec<TaskId> {
        self.after.clone()
    }

    fn reads(&self) -> Vec<TaskId> {
        self.after.clone()
    }

    fn rolls_back_on_failure(&self) -> bool {
        true
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let out = ctx
            .runner
            .run(&Command::query(["nft", "-c", "-f", paths::NFTABLES_CONF]))?;
        if out.success() {
            return Ok(Vec::new());
        }
        Err(NftError::Rejected {
            conf: paths::NFTABLES_CONF,
            errors: out.stderr.trim_end().to_string(),
        }
        .into_task())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains(fixture: &str) -> Vec<GuardedChain> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firewall");
        nftables::parse(&std::fs::read_to_string(dir.join(fixture)).unwrap())
            .unwrap()
            .guarded
    }

    #[test]
    fn the_boot_file_appends_under_a_drop_policy_and_inserts_before_a_final_drop() {
        let f = boot_file(&chains("nft-json-hardened.json"), &[443, 80, 443]);
        assert!(
            f.ends_with(
                "add rule inet filter input tcp dport { 80, 443 } accept comment \"portico\"\n"
            ),
            "{f}"
        );
        let f = boot_file(&chains("nft-json-end-drop.json"), &[8443]);
        assert!(
            f.ends_with(
                "insert rule ip filter INPUT index 2 tcp dport 8443 accept comment \"portico\"\n"
            ),
            "{f}"
        );
    }

    #[test]
    fn includes_are_found_literally_or_by_glob() {
        assert!(includes(
            "include \"/etc/nftables.d/portico.nft\"\n",
            paths::NFTABLES_BOOT_FILE
        ));
        assert!(includes(
            "  include \"/etc/nftables.d/*.nft\";\n",
            paths::NFTABLES_BOOT_FILE
        ));
        assert!(!includes(
            "# include \"/etc/nftables.d/portico.nft\"\n",
            paths::NFTABLES_BOOT_FILE
        ));
        assert!(!includes(
            "include \"/etc/other/*.nft\"\n",
            paths::NFTABLES_BOOT_FILE
        ));
    }
}
