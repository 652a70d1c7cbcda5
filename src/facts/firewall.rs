//! Which firewall is active, from the tools' own status output.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Ufw,
    Firewalld,
    Iptables,
    Nftables,
    None,
}

/// `ufw status`: "Status: active".
pub fn ufw_active(status: &str) -> bool {
    status
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("status: active"))
}

/// `firewall-cmd --state`: "running".
pub fn firewalld_running(state: &str) -> bool {
    state.trim() == "running"
}

/// `iptables -S`: any rule, or a policy other than ACCEPT, means it is in use.
pub fn iptables_in_use(rules: &str) -> bool {
    rules.lines().map(str::trim).any(|l| {
        l.starts_with("-A ")
            || (l.starts_with("-P ") && !l.ends_with(" ACCEPT"))
            || l.starts_with("-N ")
    })
}

/// `nft list ruleset`: a chain with a rule or a drop policy means it is in use.
pub fn nftables_in_use(ruleset: &str) -> bool {
    ruleset.lines().map(str::trim).any(|l| {
        !(l.is_empty()
            || l.starts_with("table ")
            || l.starts_with("chain ")
            || l == "}"
            || l.starts_with('#'))
            && (!l.starts_with("type ") || l.contains("policy drop"))
    })
}

/// The tools' answers; `None` where the tool is not installed.
#[derive(Debug, Default, Clone)]
pub struct Probes<'a> {
    pub ufw_status: Option<&'a str>,
    pub firewalld_state: Option<&'a str>,
    pub iptables_rules: Option<&'a str>,
    pub nft_ruleset: Option<&'a str>,
}

/// The front end in charge: ufw and firewalld drive iptables/nftables
/// themselves, so they win over the raw tables they create.
pub fn active_backend(p: &Probes) -> Backend {
    if p.ufw_status.is_some_and(ufw_active) {
        Backend::Ufw
    } else if p.firewalld_state.is_some_and(firewalld_running) {
        Backend::Firewalld
    } else if p.iptables_rules.is_some_and(iptables_in_use) {
        Backend::Iptables
    } else if p.nft_ruleset.is_some_and(nftables_in_use) {
        Backend::Nftables
    } else {
        Backend::None
    }
}
