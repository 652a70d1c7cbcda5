//! SELinux, as its files and tools say it (EL: enforcing by default). Pure
//! parsers of `getsebool`, `semanage port -l`, `semanage fcontext -l -C`
//! and `restorecon -n -v`, and the mode from `/sys/fs/selinux/enforce`.

use std::collections::BTreeMap;

use serde::Serialize;

/// The mode the kernel runs SELinux in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Not there (no `/sys/fs/selinux`), or switched off.
    #[default]
    Disabled,
    /// Denials are logged, not enforced.
    Permissive,
    /// Denials are enforced.
    Enforcing,
}

/// The mode from `/sys/fs/selinux/enforce` (`1` or `0`), `None` without
/// the file.
pub fn mode(enforce: Option<&str>) -> Mode {
    match enforce.map(str::trim) {
        Some("1") => Mode::Enforcing,
        Some("0") => Mode::Permissive,
        _ => Mode::Disabled,
    }
}

/// `httpd_can_network_connect --> on`: is the boolean on?
pub fn boolean_on(getsebool: &str) -> Option<bool> {
    let value = getsebool.trim().rsplit_once("-->")?.1.trim();
    match value {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A port's label in `semanage port -l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLabel {
    /// The type (`http_port_t`).
    pub kind: String,
    /// Named on its own, not inside a range: semanage then refuses `-a`
    /// for it and wants `-m`; a port that only falls in a range (as
    /// `unreserved_port_t 1024-32767`) takes `-a`, which overrides it.
    pub exact: bool,
}

/// `semanage port -l`: each TCP port with the types it is labelled with
/// (`http_port_t tcp 80, 81, 443, 8000-8010`).
pub fn tcp_ports(listing: &str) -> BTreeMap<u16, Vec<PortLabel>> {
    let mut ports: BTreeMap<u16, Vec<PortLabel>> = BTreeMap::new();
    for line in listing.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some("tcp")) = (words.next(), words.next()) else {
            continue;
        };
        let rest: String = words.collect::<Vec<_>>().join(" ");
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
                continue;
            };
            for p in lo..=hi {
                ports.entry(p).or_default().push(PortLabel {
                    kind: kind.to_string(),
                    exact: lo == hi,
                });
            }
        }
    }
    ports
}

/// Whether a port's labels include `kind`.
pub fn labelled(labels: Option<&Vec<PortLabel>>, kind: &str) -> bool {
    labels.is_some_and(|l| l.iter().any(|l| l.kind == kind))
}

/// `semanage fcontext -l -C` (the local rules): does `spec` have `kind`?
pub fn has_fcontext(listing: &str, spec: &str, kind: &str) -> bool {
    listing.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some(spec) && l.contains(&format!(":{kind}:"))
    })
}

/// `restorecon -R -n -v PATH`: the files it would relabel. EL 8 and later
/// say "Would relabel X from a to b"; EL 7's policycoreutils 2.5 says
/// "restorecon reset X context a->b" for the same.
pub fn would_relabel(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.contains("Would relabel") || l.starts_with("restorecon reset "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_booleans_and_ports() {
        assert_eq!(mode(Some("1\n")), Mode::Enforcing);
        assert_eq!(mode(Some("0")), Mode::Permissive);
        assert_eq!(mode(None), Mode::Disabled);
        assert_eq!(
            boolean_on("httpd_can_network_connect --> off\n"),
            Some(false)
        );
        assert_eq!(boolean_on("httpd_can_network_connect --> on"), Some(true));
        let ports = tcp_ports(
            "SELinux Port Type              Proto    Port Number\n\n\
             http_port_t                    tcp      80, 81, 443, 488, 8008, 8009, 8443, 9000\n\
             http_port_t                    udp      80, 443\n\
             jboss_management_port_t        tcp      4447, 4712, 7600, 9123, 9990, 9999, 18001\n\
             unreserved_port_t              tcp      61000-65535, 1024-32767\n",
        );
        let kinds = |p: u16| -> Vec<(&str, bool)> {
            ports[&p]
                .iter()
                .map(|l| (l.kind.as_str(), l.exact))
                .collect()
        };
        assert_eq!(kinds(443), [("http_port_t", true)]);
        assert_eq!(
            kinds(9999),
            [
                ("jboss_management_port_t", true),
                ("unreserved_port_t", false)
            ]
        );
        assert_eq!(kinds(9443), [("unreserved_port_t", false)]);
        assert!(labelled(ports.get(&443), "http_port_t"));
        assert!(!labelled(ports.get(&9443), "http_port_t"));
        assert!(!ports.contains_key(&23));
        // EL 8+ and EL 7 wordings of the same dry run.
        assert_eq!(
            would_relabel(
                "Would relabel /srv/a from unconfined_u:object_r:var_t:s0 to \
                 unconfined_u:object_r:httpd_sys_content_t:s0\n\
                 restorecon reset /srv/b context a->b\nother\n"
            )
            .len(),
            2
        );
    }
}
