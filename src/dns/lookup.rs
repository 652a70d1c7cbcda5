//! What DNS-01 needs to know before and after publishing a record: where a
//! `_acme-challenge` name really lives (CNAMEs followed), which zone holds
//! it (from the SOA), which servers are authoritative for that zone (NS
//! records and their addresses), and what each of those servers answers.
//! Every step is a query plus a pure reading of the answer, so the readings
//! are tested on captured answers.

use core::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{wire, DnsError};

/// How many CNAMEs are followed before the chain counts as a loop.
const MAX_CNAMES: usize = 8;

/// How long one question may take (resent over UDP in between).
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// Recursive resolvers, asked in order until one answers.
#[derive(Debug, Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
}

impl Resolver {
    /// Asks these servers.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Resolver { servers }
    }

    /// The servers asked.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<Message, DnsError> {
        let mut last = String::from("no resolver configured");
        for &server in &self.servers {
            let q = wire::query(name, rtype, true);
            match wire::ask(server, &q, QUERY_TIMEOUT).await {
                Ok(m)
                    if matches!(
                        m.response_code(),
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    return Ok(m)
                }
                Ok(m) => last = format!("{server} answered {}", m.response_code()),
                Err(e) => last = format!("{server}: {e}"),
            }
        }
        Err(DnsError::Lookup {
            name: shown(name),
            what: rtype.to_string(),
            reason: last,
        })
    }

    /// Where `name` leads after its CNAMEs (itself when it has none).
    pub async fn follow_cnames(&self, name: &Name) -> Result<Name, DnsError> {
        let mut at = name.clone();
        for _ in 0..MAX_CNAMES {
            let answer = self.ask(&at, RecordType::CNAME).await?;
            match cname_target(&answer, &at) {
                Some(next) => at = next,
                None => return Ok(at),
            }
        }
        Err(DnsError::Lookup {
            name: shown(name),
            what: "CNAME".into(),
            reason: format!("more than {MAX_CNAMES} CNAMEs in a row (a loop?)"),
        })
    }

    /// The zone `name` belongs to: the owner of the SOA the answer carries
    /// (in the answer at an apex, in the authority section below one).
    pub async fn zone_of(&self, name: &Name) -> Result<Name, DnsError> {
        let mut at = name.clone();
        loop {
            let answer = self.ask(&at, RecordType::SOA).await?;
            if let Some(zone) = soa_owner(&answer, name) {
                return Ok(zone);
            }
            if at.is_root() {
                return Err(DnsError::Lookup {
                    name: shown(name),
                    what: "SOA".into(),
                    reason: "no zone above it answers with an SOA".into(),
                });
            }
            at = at.base_name();
        }
    }

    /// The zone's authoritative servers, each with its addresses (port
    /// 53). A server whose addresses cannot be found is left out while
    /// another one has some (it cannot be asked; the CA's resolver will
    /// not reach it either).
    pub async fn name_servers(&self, zone: &Name) -> Result<Vec<NsHost>, DnsError> {
        let answer = self.ask(zone, RecordType::NS).await?;
        let hosts = ns_hosts(&answer, zone);
        if hosts.is_empty() {
            return Err(DnsError::Lookup {
                name: shown(zone),
                what: "NS".into(),
                reason: "the zone has no NS records".into(),
            });
        }
        let mut found_hosts = Vec::new();
        let mut last = String::new();
        for host in &hosts {
            let mut found = addresses(&answer, host);
            if found.is_empty() {
                for rtype in [RecordType::A, RecordType::AAAA] {
                    match self.ask(host, rtype).await {
                        Ok(a) => found.extend(addresses(&a, host)),
                        Err(e) => last = format!("; {e}"),
                    }
                }
            }
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for ip in found {
                let addr = SocketAddr::new(ip, 53);
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            if !addrs.is_empty() && !found_hosts.iter().any(|h: &NsHost| h.name == shown(host)) {
                found_hosts.push(NsHost {
                    name: shown(host),
                    addrs,
                });
            }
        }
        if found_hosts.is_empty() {
            return Err(DnsError::Lookup {
                name: shown(zone),
                what: "NS".into(),
                reason: format!(
                    "none of its name servers ({}) has an address{last}",
                    hosts.iter().map(shown).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(found_hosts)
    }
}

/// An authoritative server of a zone: its name and addresses. It has the
/// record when any of its addresses answers it (a host may have an IPv6
/// address this host cannot reach).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsHost {
    /// Its name, for messages.
    pub name: String,
    /// Its addresses, port 53.
    pub addrs: Vec<SocketAddr>,
}

/// The TXT values an authoritative server gives for `name` right now
/// (recursion not asked: its own data, not a cache's).
pub async fn txt_values(server: SocketAddr, name: &Name) -> Result<Vec<String>, String> {
    let q = wire::query(name, RecordType::TXT, false);
    let answer = wire::ask(server, &q, QUERY_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    match answer.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(txt_of(&answer, name)),
        code => Err(format!("answered {code}")),
    }
}

/// A name as shown in messages: ASCII, without the root's dot.
pub fn shown(name: &Name) -> String {
    let s = name.to_ascii();
    crate::untrusted::shown(s.strip_suffix('.').unwrap_or(&s))
}

/// The CNAME target of `name` in an answer.
fn cname_target(answer: &Message, name: &Name) -> Option<Name> {
    answer.answers().iter().find_map(|r| match r.data() {
        RData::CNAME(target) if r.name() == name => Some(target.0.clone()),
        _ => None,
    })
}

/// The owner of the SOA in the answer or authority section, when it is
/// `name` or above it (a server's SOA for an unrelated zone is no answer).
fn soa_owner(answer: &Message, name: &Name) -> Option<Name> {
    answer
        .answers()
        .iter()
        .chain(answer.name_servers())
        .find(|r| matches!(r.data(), RData::SOA(_)) && r.name().zone_of(name))
        .map(|r| r.name().clone())
}

/// The NS host names of `zone` in an answer.
fn ns_hosts(answer: &Message, zone: &Name) -> Vec<Name> {
    answer
        .answers()
        .iter()
        .filter(|r| r.name() == zone)
        .filter_map(|r| match r.data() {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect()
}

/// The addresses of `host` anywhere in an answer (glue included).
fn addresses(answer: &Message, host: &Name) -> Vec<IpAddr> {
    answer
        .answers()
        .iter()
        .chain(answer.additionals())
        .filter(|r| r.name() == host)
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The TXT values of `name` in an answer, each one's strings joined (a
/// long value may come split in 255-byte strings).
fn txt_of(answer: &Message, name: &Name) -> Vec<String> {
    answer
        .answers()
        .iter()
        .filter(|r| r.name() == name)
        .filter_map(|r| match r.data() {
            RData::TXT(txt) => Some(
                txt.txt_data()
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// The nameservers of a resolv.conf, in order (a scope suffix `%eth0` is
/// dropped; such an address is not usable outside its link).
pub fn resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, TXT};
    use hickory_proto::rr::Record;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(zone: &str) -> Record {
        Record::from_rdata(
            name(zone),
            60,
            RData::SOA(SOA::new(
                name(&format!("ns.{zone}")),
                name(&format!("admin.{zone}")),
                1,
                60,
                60,
                60,
                60,
            )),
        )
    }

    #[test]
    fn resolv_conf_nameservers() {
        let conf = "# generated\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n";
        assert_eq!(
            resolv_conf(conf),
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn the_zone_is_the_soa_owner_above_the_name() {
        let asked = name("_acme-challenge.app.example.test.");
        // Below an apex: the SOA comes in the authority section.
        let mut m = Message::new();
        m.add_name_server(soa("example.test."));
        assert_eq!(soa_owner(&m, &asked), Some(name("example.test.")));
        // At the apex: in the answer.
        let mut m = Message::new();
        m.add_answer(soa("example.test."));
        assert_eq!(
            soa_owner(&m, &name("example.test.")),
            Some(name("example.test."))
        );
        // An SOA of a zone that does not hold the name is no answer.
        let mut m = Message::new();
        m.add_name_server(soa("other.test."));
        assert_eq!(soa_owner(&m, &asked), None);
    }

    #[test]
    fn cnames_ns_and_addresses_are_read_for_the_asked_name_only() {
        let at = name("_acme-challenge.app.example.test.");
        let mut m = Message::new();
        m.add_answer(Record::from_rdata(
            name("_acme-challenge.other.example.test."),
            60,
            RData::CNAME(CNAME(name("evil.test."))),
        ));
        assert_eq!(cname_target(&m, &at), None);
        m.add_answer(Record::from_rdata(
            at.clone(),
            60,
            RData::CNAME(CNAME(name("app.validation.test."))),
        ));
        assert_eq!(cname_target(&m, &at), Some(name("app.validation.test.")));

        let zone = name("validation.test.");
        let mut m = Message::new();
        m.add_answer(Record::from_rdata(
            zone.clone(),
            60,
            RData::NS(NS(name("ns1.validation.test."))),
        ));
        m.add_answer(Record::from_rdata(
            name("x.test."),
            60,
            RData::NS(NS(name("ns9.x.test."))),
        ));
        m.add_additional(Record::from_rdata(
            name("ns1.validation.test."),
            60,
            RData::A(A("127.0.0.1".parse().unwrap())),
        ));
        assert_eq!(ns_hosts(&m, &zone), vec![name("ns1.validation.test.")]);
        assert_eq!(
            addresses(&m, &name("ns1.validation.test.")),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn txt_strings_of_one_record_are_joined() {
        let at = name("_acme-challenge.example.test.");
        let mut m = Message::new();
        m.add_answer(Record::from_rdata(
            at.clone(),
            60,
            RData::TXT(TXT::new(vec!["abc".into(), "def".into()])),
        ));
        m.add_answer(Record::from_rdata(
            at.clone(),
            60,
            RData::TXT(TXT::new(vec!["xyz".into()])),
        ));
        assert_eq!(txt_of(&m, &at), vec!["abcdef", "xyz"]);
    }
}
