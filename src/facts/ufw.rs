//! ufw's state from its own files, not its CLI: every `ufw` command is a
//! Python start of about 85 ms, and a run used to make three of them just
//! to look. `ufw.conf` says whether it is enabled; `user.rules` and
//! `user6.rules` keep each rule as a `### tuple ###` comment that ufw
//! itself reads back (`ufw show added` prints them).

use crate::paths;
use std::collections::BTreeSet;
use std::path::Path;

use super::firewall::Port;
use crate::host::root::RootError;
use crate::host::Root;

/// There when the kernel has IPv6 (ufw's own test).
pub const KERNEL_IPV6: &str = "/proc/sys/net/ipv6";
/// The chain `ufw enable` loads: `iptables -S` of it succeeds only then.
/// `ENABLED=yes` alone may outlive the rules (`iptables -F`, a failed boot).
pub const LOADED_CHAIN: &str = "ufw-user-input";

/// `ufw.conf`: `ENABLED=yes`. `ufw enable` writes it as it loads the rules
/// and `ufw disable` as it unloads them, so on a running host it says what
/// `ufw status` says ("Status: active").
pub fn enabled(conf: &str) -> bool {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("ENABLED="))
        .next_back()
        .is_some_and(|v| v.trim().trim_matches('"').eq_ignore_ascii_case("yes"))
}

/// `/etc/default/ufw`: `IPV6=yes`.
pub fn ipv6(defaults: &str) -> bool {
    defaults
        .lines()
        .filter_map(|l| l.trim().strip_prefix("IPV6="))
        .next_back()
        .is_some_and(|v| v.trim().trim_matches('"').eq_ignore_ascii_case("yes"))
}

/// One rule as ufw records it:
/// `### tuple ### ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION [comment=HEX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// `allow`, `deny`, `reject`, `limit`, `allow_log`, ...
    pub action: String,
    /// `tcp`, `udp`, `any`.
    pub proto: String,
    /// `80`, `80,443`, `6000:6007`, `any`.
    pub dport: String,
    /// The destination address (`0.0.0.0/0`, `::/0` for any).
    pub dst: String,
    /// The source port.
    pub sport: String,
    /// The source address.
    pub src: String,
    /// The application profile (`Nginx Full`), when the rule names one.
    pub app: Option<String>,
    /// `in`, `out`, `in_eth0` (an interface), `fwd`.
    pub direction: String,
    /// The rule has a comment.
    pub commented: bool,
}

/// Every rule in a `user.rules`/`user6.rules` file, in order; lines that
/// are not a well-formed tuple are skipped.
pub fn tuples(rules: &str) -> Vec<Tuple> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("### tuple ###"))
        .filter_map(|t| {
            let mut words: Vec<&str> = t.split_whitespace().collect();
            let commented = words.last().is_some_and(|w| w.starts_with("comment="));
            if commented {
                words.pop();
            }
            let (fields, app) = match words.len() {
                7 => (words, None),
                9 => {
                    let app = (words[6] != "-").then(|| words[6].replace("%20", " "));
                    ([&words[..6], &words[8..]].concat(), app)
                }
                _ => return None,
            };
            let [action, proto, dport, dst, sport, src, direction] = fields[..] else {
                return None;
            };
            Some(Tuple {
                action: action.into(),
                proto: proto.into(),
                dport: dport.into(),
                dst: dst.into(),
                sport: sport.into(),
                src: src.into(),
                app,
                direction: direction.into(),
                commented,
            })
        })
        .collect()
}

fn anywhere(addr: &str) -> bool {
    matches!(addr, "0.0.0.0/0" | "::/0" | "any")
}

/// The ports a `dport` field names: `80`, `80,443`, `6000:6007`.
fn ports(dport: &str) -> Vec<Port> {
    let mut out = Vec::new();
    for part in dport.split(',') {
        match part.split_once(':') {
            Some((lo, hi)) => {
                if let (Ok(lo), Ok(hi)) = (lo.parse::<Port>(), hi.parse::<Port>()) {
                    out.extend(lo..=hi);
                }
            }
            None => out.extend(part.parse::<Port>().ok()),
        }
    }
    out
}

impl Tuple {
    /// Decides for every inbound TCP connection to `port`: it names the
    /// port (or any), TCP (or any protocol), every interface, any source
    /// and destination. A narrower rule decides for some traffic only.
    fn decides_for_everyone(&self, port: Port) -> bool {
        self.direction == "in"
            && matches!(self.proto.as_str(), "tcp" | "any")
            && (self.dport == "any" || ports(&self.dport).contains(&port))
            && anywhere(&self.dst)
            && anywhere(&self.src)
            && self.sport == "any"
    }

    /// Lets the traffic in (`limit` too: rate-limited, but in).
    fn lets_in(&self) -> bool {
        self.action.starts_with("allow") || self.action.starts_with("limit")
    }

    /// Exactly what `ufw allow PORT/tcp` records: portico's own rule.
    fn is_plain_allow_tcp(&self, port: Port) -> bool {
        self.action == "allow"
            && self.decides_for_everyone(port)
            && self.proto == "tcp"
            && self.app.is_none()
            && !self.commented
            && self.dport == port.to_string()
    }

    /// The rule as an operator reads it.
    fn describe(&self) -> String {
        match &self.app {
            Some(app) => format!("{} '{app}'", self.action),
            None => format!("{} {}/{}", self.action, self.dport, self.proto),
        }
    }
}

/// What ufw does with a TCP connection to a port from anywhere: the first
/// rule that decides for all of them wins (ufw's rules match in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let in.
    Open,
    /// Turned away by this rule (`deny 443/tcp`).
    Denied(String),
    /// No rule decides: ufw's default policy (deny incoming) applies.
    NoRule,
}

/// The verdict of a rules file for `port`.
pub fn verdict(rules: &str, port: Port) -> Verdict {
    match tuples(rules)
        .into_iter()
        .find(|t| t.decides_for_everyone(port))
    {
        Some(t) if t.lets_in() => Verdict::Open,
        Some(t) => Verdict::Denied(t.describe()),
        None => Verdict::NoRule,
    }
}

/// The TCP ports a rules file lets in from anywhere, of those its rules name.
pub fn allowed(rules: &str) -> BTreeSet<Port> {
    tuples(rules)
        .iter()
        .flat_map(|t| ports(&t.dport))
        .filter(|p| verdict(rules, *p) == Verdict::Open)
        .collect()
}

/// ufw as its files describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ufw {
    /// The `ufw` tool is installed.
    pub installed: bool,
    /// Enabled (`ENABLED=yes`).
    pub enabled: bool,
    /// Rules are kept for IPv6 too: `IPV6=yes`, and the kernel has IPv6
    /// (without it ufw writes no IPv6 rules).
    pub ipv6: bool,
    /// `user.rules`.
    pub v4: String,
    /// `user6.rules`.
    pub v6: String,
}

impl Ufw {
    /// Reads the files under `root`. A missing file is empty; one that
    /// cannot be read (not root) is an error, never taken as empty.
    pub fn read(root: &Root) -> Result<Ufw, RootError> {
        let read = |p: &str| -> Result<String, RootError> {
            Ok(root.read_to_string(Path::new(p))?.unwrap_or_default())
        };
        Ok(Ufw {
            installed: paths::UFW_BINARIES
                .iter()
                .any(|b| root.exists(Path::new(b))),
            enabled: enabled(&read(paths::UFW_CONF)?),
            ipv6: ipv6(&read(paths::UFW_DEFAULTS)?) && root.exists(Path::new(KERNEL_IPV6)),
            v4: read(paths::UFW_USER_RULES)?,
            v6: read(paths::UFW_USER6_RULES)?,
        })
    }

    /// Installed and enabled (whether its rules are loaded is for the
    /// caller to confirm: see [`LOADED_CHAIN`]).
    pub fn active(&self) -> bool {
        self.installed && self.enabled
    }

    /// The verdict for `port` in every family ufw keeps: a port open for
    /// IPv4 only is not open for IPv6 clients (and `ufw allow` adds just
    /// the missing family); a deny in either family is a deny.
    pub fn verdict(&self, port: Port) -> Verdict {
        let v4 = verdict(&self.v4, port);
        let v6 = if self.ipv6 {
            verdict(&self.v6, port)
        } else {
            Verdict::Open
        };
        match (v4, v6) {
            (Verdict::Denied(r), _) | (_, Verdict::Denied(r)) => Verdict::Denied(r),
            (Verdict::Open, Verdict::Open) => Verdict::Open,
            _ => Verdict::NoRule,
        }
    }

    /// The TCP ports open from anywhere in every family, of those its
    /// rules name.
    pub fn allowed(&self) -> BTreeSet<Port> {
        allowed(&self.v4)
            .into_iter()
            .filter(|p| self.verdict(*p) == Verdict::Open)
            .collect()
    }

    /// The rule `ufw allow PORT/tcp` adds is there (in either family).
    pub fn has_plain_allow_tcp(&self, port: Port) -> bool {
        [&self.v4, &self.v6]
            .iter()
            .any(|rules| tuples(rules).iter().any(|t| t.is_plain_allow_tcp(port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tuple_with_an_app_and_a_comment() {
        let t = tuples(
            "### tuple ### allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 Nginx%20Full - in comment=6869\n",
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].app.as_deref(), Some("Nginx Full"));
        assert_eq!(t[0].direction, "in");
        assert!(t[0].commented);
        assert_eq!(ports(&t[0].dport), vec![80, 443]);
    }

    #[test]
    fn the_first_rule_that_decides_for_everyone_wins() {
        let rules = "### tuple ### deny tcp 22 0.0.0.0/0 any 10.0.0.0/8 in\n\
                     ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n\
                     ### tuple ### reject any 443 0.0.0.0/0 any 0.0.0.0/0 in\n\
                     ### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in\n\
                     ### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in\n\
                     ### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_eth0\n\
                     ### tuple ### deny any any 0.0.0.0/0 any 0.0.0.0/0 in\n";
        // A deny for one network does not decide for everyone; the allow does.
        assert_eq!(verdict(rules, 22), Verdict::Open);
        // An earlier reject wins over the later allow.
        assert_eq!(
            verdict(rules, 443),
            Verdict::Denied("reject 443/any".into())
        );
        // Rate-limited is let in.
        assert_eq!(verdict(rules, 2222), Verdict::Open);
        // One interface only: the catch-all deny after it decides.
        assert_eq!(verdict(rules, 80), Verdict::Denied("deny any/any".into()));
        assert_eq!(verdict("", 80), Verdict::NoRule);
        // A logged allow is let in, but is not portico's plain rule.
        let logged = "### tuple ### allow_log tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in\n";
        assert_eq!(verdict(logged, 8080), Verdict::Open);
        assert!(!tuples(logged)[0].is_plain_allow_tcp(8080));
    }

    #[test]
    fn malformed_tuples_are_skipped() {
        assert!(tuples("### tuple ### allow tcp 80\n### tuple ###\n").is_empty());
        assert_eq!(ports("6000:6002,x,9"), vec![6000, 6001, 6002, 9]);
    }

    #[test]
    fn the_last_enabled_line_wins_and_quotes_are_allowed() {
        assert!(enabled("ENABLED=no\nENABLED=\"yes\"\n"));
        assert!(!enabled("#ENABLED=yes\n"));
        assert!(!enabled(""));
    }
}
