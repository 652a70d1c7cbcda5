//! `nft --json list ruleset`, parsed: the input base chains that drop what
//! they do not accept, and the rules portico added to them (its comment).
//! Pure: the task decides what to add from this.

use std::collections::BTreeSet;

use serde_json::Value;

/// The comment every rule portico adds carries; nothing else is touched.
pub const COMMENT: &str = "portico";

/// One base chain on the input hook that turns away what it does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedChain {
    /// `inet`, `ip` or `ip6`.
    pub family: String,
    /// The table it belongs to.
    pub table: String,
    /// The chain's name.
    pub name: String,
    /// The handle of the chain's final drop or reject rule, when the chain
    /// ends in one (new rules go before it); `None` for a drop policy.
    pub terminal: Option<u64>,
    /// Its position among the chain's rules that are not portico's (for
    /// the boot file, where handles do not exist yet).
    pub terminal_index: Option<usize>,
    /// portico's rules already in the chain: (handle, ports).
    pub portico: Vec<(u64, BTreeSet<u16>)>,
}

impl GuardedChain {
    /// `family table name`, as nft writes it.
    pub fn spec(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.name)
    }

    /// The address families the chain filters.
    pub fn families(&self) -> &'static [&'static str] {
        match self.family.as_str() {
            "inet" => &["ipv4", "ipv6"],
            "ip" => &["ipv4"],
            "ip6" => &["ipv6"],
            _ => &[],
        }
    }
}

/// What `nft --json list ruleset` said, as far as portico cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The input base chains that turn away what they do not accept.
    pub guarded: Vec<GuardedChain>,
}

/// The verdict a rule ends in (`accept`, `drop`, `reject`, `jump`...).
fn verdict(expr: &[Value]) -> Option<&str> {
    let last = expr.last()?.as_object()?;
    last.keys().next().map(String::as_str)
}

/// The TCP destination ports a rule matches, when that is all it matches
/// (`tcp dport 80` or `tcp dport { 80, 443 }`) and it accepts.
fn accepted_tcp_ports(expr: &[Value]) -> Option<BTreeSet<u16>> {
    if expr.len() != 2 || verdict(expr) != Some("accept") {
        return None;
    }
    let m = expr[0].get("match")?;
    let payload = m.get("left")?.get("payload")?;
    if payload.get("protocol")? != "tcp" || payload.get("field")? != "dport" {
        return None;
    }
    let right = m.get("right")?;
    let ports = match right.get("set") {
        Some(set) => set
            .as_array()?
            .iter()
            .map(|v| v.as_u64())
            .collect::<Option<Vec<_>>>()?,
        None => vec![right.as_u64()?],
    };
    ports.into_iter().map(|p| u16::try_from(p).ok()).collect()
}

/// Parses the JSON; `Err` names what was not understood.
pub fn parse(json: &str) -> Result<Ruleset, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not nft JSON: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no \"nftables\" array")?;
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let mut guarded = Vec::new();
    for item in items {
        let Some(c) = item.get("chain") else { continue };
        if c.get("hook").and_then(Value::as_str) != Some("input")
            || !matches!(text(c, "family").as_deref(), Some("inet" | "ip" | "ip6"))
        {
            continue;
        }
        let (Some(family), Some(table), Some(name)) =
            (text(c, "family"), text(c, "table"), text(c, "name"))
        else {
            continue;
        };
        let rules: Vec<&Value> = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| {
                text(r, "family").as_deref() == Some(&family)
                    && text(r, "table").as_deref() == Some(&table)
                    && text(r, "chain").as_deref() == Some(&name)
            })
            .collect();
        let is_portico = |r: &&Value| r.get("comment").and_then(Value::as_str) == Some(COMMENT);
        let theirs: Vec<&Value> = rules.iter().copied().filter(|r| !is_portico(r)).collect();
        let expr = |r: &Value| {
            r.get("expr")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let ends_in_refusal = theirs
            .last()
            .is_some_and(|r| matches!(verdict(&expr(r)), Some("drop" | "reject")));
        let drop_policy = c.get("policy").and_then(Value::as_str) == Some("drop");
        if !drop_policy && !ends_in_refusal {
            continue;
        }
        let (terminal, terminal_index) = if ends_in_refusal {
            (
                theirs.last().and_then(|r| r.get("handle")?.as_u64()),
                Some(theirs.len() - 1),
            )
        } else {
            (None, None)
        };
        let portico = rules
            .iter()
            .filter(|r| is_portico(r))
            .filter_map(|r| {
                let handle = r.get("handle")?.as_u64()?;
                Some((handle, accepted_tcp_ports(&expr(r)).unwrap_or_default()))
            })
            .collect();
        guarded.push(GuardedChain {
            family,
            table,
            name,
            terminal,
            terminal_index,
            portico,
        });
    }
    Ok(Ruleset { guarded })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firewall");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn a_hardened_inet_table_with_a_drop_policy() {
        let r = parse(&fixture("nft-json-hardened.json")).unwrap();
        assert_eq!(r.guarded.len(), 1, "{r:?}");
        let c = &r.guarded[0];
        assert_eq!(c.spec(), "inet filter input");
        assert_eq!((c.terminal, c.terminal_index), (None, None));
        assert!(c.portico.is_empty());
        assert_eq!(c.families(), ["ipv4", "ipv6"]);
    }

    #[test]
    fn portico_rules_are_found_by_their_comment() {
        let r = parse(&fixture("nft-json-hardened-opened.json")).unwrap();
        let c = &r.guarded[0];
        assert_eq!(c.portico.len(), 1);
        assert_eq!(c.portico[0].1, [80, 443].into());
    }

    #[test]
    fn a_chain_that_ends_in_drop_under_an_accept_policy() {
        let r = parse(&fixture("nft-json-end-drop.json")).unwrap();
        let c = &r.guarded[0];
        assert_eq!(c.spec(), "ip filter INPUT");
        assert_eq!(c.terminal_index, Some(2));
        assert!(c.terminal.is_some());
        assert_eq!(c.families(), ["ipv4"]);
    }

    #[test]
    fn nothing_guarded_in_an_empty_or_open_ruleset() {
        assert!(parse(&fixture("nft-json-empty.json"))
            .unwrap()
            .guarded
            .is_empty());
        assert!(parse("{}").is_err());
        assert!(parse("not json").is_err());
    }
}
