//! Which firewall is active, from the tools' own status output.

use serde::Serialize;

/// The firewall in charge of the host's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// ufw is active.
    Ufw,
    /// firewalld is running.
    Firewalld,
    /// iptables rules are in use (any rule, or a policy other than ACCEPT).
    Iptables,
    /// An nftables ruleset that drops input, loaded by `nftables.service`.
    Nftables,
    /// The same, but not from `nftables.service`: how it comes back at
    /// boot is unknown.
    #[serde(rename = "nftables-unmanaged")]
    NftablesUnmanaged,
    /// Nothing filters input.
    None,
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

/// The tools' answers; `None` where the tool is not installed (or, for
/// firewalld, not running: `firewall-cmd` is only asked then).
#[derive(Debug, Default, Clone)]
pub struct Probes<'a> {
    /// ufw is installed and enabled (its files; see [`super::ufw`]).
    pub ufw_active: bool,
    /// `firewall-cmd --state`.
    pub firewalld_state: Option<&'a str>,
    /// `iptables -S`.
    pub iptables_rules: Option<&'a str>,
    /// `nft --json list ruleset`.
    pub nft_json: Option<&'a str>,
    /// `systemctl is-active nftables.service` said "active".
    pub nftables_service: bool,
}

/// Does the nft ruleset turn input away (a drop policy or a final drop)?
pub fn nftables_guards_input(json: &str) -> bool {
    super::nftables::parse(json).is_ok_and(|r| !r.guarded.is_empty())
}

/// The front end in charge: ufw and firewalld drive iptables/nftables
/// themselves, so they win over the raw tables they create; iptables rules
/// (iptables-nft writes nftables tables too) win over native nftables.
pub fn active_backend(p: &Probes) -> Backend {
    if p.ufw_active {
        Backend::Ufw
    } else if p.firewalld_state.is_some_and(firewalld_running) {
        Backend::Firewalld
    } else if p.iptables_rules.is_some_and(iptables_in_use) {
        Backend::Iptables
    } else if p.nft_json.is_some_and(nftables_guards_input) {
        if p.nftables_service {
            Backend::Nftables
        } else {
            Backend::NftablesUnmanaged
        }
    } else {
        Backend::None
    }
}

/// The units that restore saved iptables rules at boot: netfilter-persistent
/// (rules.v4, rules.v6) on Debian/Ubuntu, iptables-services on EL.
pub fn persistence_units(family: super::Family) -> &'static [&'static str] {
    match family {
        super::Family::Rhel => &["iptables.service", "ip6tables.service"],
        _ => &["netfilter-persistent.service"],
    }
}

/// A TCP port.
pub type Port = u16;

/// Well-known names the firewall front ends use for ports.
fn service_ports(name: &str) -> &'static [Port] {
    match name {
        "http" | "Nginx HTTP" | "WWW" => &[80],
        "https" | "Nginx HTTPS" | "WWW Secure" => &[443],
        "Nginx Full" | "WWW Full" => &[80, 443],
        "ssh" | "OpenSSH" => &[22],
        _ => &[],
    }
}

/// `firewall-cmd [--permanent] --list-services` and `--list-ports` → TCP ports open.
pub fn firewalld_open(services: &str, ports: &str) -> std::collections::BTreeSet<Port> {
    let mut open: std::collections::BTreeSet<Port> = services
        .split_whitespace()
        .flat_map(|s| service_ports(s).iter().copied())
        .collect();
    for p in ports.split_whitespace() {
        if let Some((port, "tcp")) = p.split_once('/') {
            if let Ok(n) = port.parse() {
                open.insert(n);
            } else if let Some((lo, hi)) = port.split_once('-') {
                if let (Ok(lo), Ok(hi)) = (lo.parse::<Port>(), hi.parse::<Port>()) {
                    open.extend(lo..=hi);
                }
            }
        }
    }
    open
}

/// The firewalld service name for a port, where one exists.
pub fn firewalld_service(port: Port) -> Option<&'static str> {
    match port {
        80 => Some("http"),
        443 => Some("https"),
        22 => Some("ssh"),
        _ => None,
    }
}

/// `sshd -T` (`port 22` lines) or, failing that, `sshd_config` (`Port 22`):
/// the ports SSH listens on; 22 when neither says.
pub fn ssh_ports(sshd_t: Option<&str>, sshd_config: Option<&str>) -> Vec<Port> {
    let parse = |text: &str| -> Vec<Port> {
        text.lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let key = words.next()?;
                if !key.eq_ignore_ascii_case("port") {
                    return None;
                }
                words.next()?.parse().ok()
            })
            .collect()
    };
    for text in [sshd_t, sshd_config].into_iter().flatten() {
        let ports = parse(text);
        if !ports.is_empty() {
            return ports;
        }
    }
    vec![22]
}
