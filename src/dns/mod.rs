//! DNS-01 challenges: the TXT records a CA looks up at
//! `_acme-challenge.NAME`, published through a `[[dns]]` provider (RFC 2136
//! or hooks), checked at every authoritative server before the CA is told
//! to look, and removed afterwards whatever happened.

pub mod hook;
pub mod lookup;
pub mod rfc2136;
pub mod wire;

use core::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use thiserror::Error;

use crate::host::Root;
use crate::playbook::{Dns, DnsProvider};
use crate::timing;
use lookup::{shown, Resolver};

/// Why a DNS-01 record could not be published, seen or removed.
#[derive(Debug, Error)]
pub enum DnsError {
    /// A lookup through the resolver failed.
    #[error("DNS lookup of the {what} of {name}: {reason}")]
    Lookup {
        /// The name asked about.
        name: String,
        /// The record type.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The TSIG secret file.
    #[error("{path}: cannot use as the TSIG secret: {reason}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// Why not (never the secret).
        reason: String,
    },
    /// A dynamic update failed or was refused.
    #[error("RFC 2136 update at {server} (zone {zone}) for {records}: {reason}")]
    Update {
        /// The primary server.
        server: SocketAddr,
        /// The zone updated.
        zone: String,
        /// The record names.
        records: String,
        /// What the server said, or what went wrong.
        reason: String,
    },
    /// A hook call failed.
    #[error("DNS hook {step} {program} for {record}: {reason}")]
    Hook {
        /// `present` or `cleanup`.
        step: &'static str,
        /// The program.
        program: String,
        /// The TXT name.
        record: String,
        /// Exit status and the end of stderr, or why it did not run.
        reason: String,
    },
    /// A record leads out of the zone the playbook names.
    #[error(
        "{record} is not in the zone {zone} ([[dns]] zone){via}; leave zone out to find it from the SOA"
    )]
    OutsideZone {
        /// Where the record goes.
        record: String,
        /// The playbook's zone.
        zone: String,
        /// The CNAME that led there, if one did.
        via: String,
    },
    /// Not every authoritative server answers the record in time.
    #[error(
        "{record}: the TXT record is not answered by {servers} within {secs} s (propagation_timeout){last}"
    )]
    NotPropagated {
        /// The TXT name.
        record: String,
        /// The servers still without it.
        servers: String,
        /// How long it waited.
        secs: u64,
        /// The last error a server gave, if any.
        last: String,
    },
}

/// The name a CA looks up for `domain` (a wildcard's base name).
pub fn challenge_name(domain: &str) -> String {
    format!("_acme-challenge.{}", domain.trim_start_matches("*."))
}

/// One challenge's record, before and after its CNAMEs were followed.
#[derive(Debug, Clone)]
struct Placed {
    /// The name being validated.
    domain: String,
    /// Where the TXT goes.
    name: Name,
    /// The same, as hooks get it: ASCII, no final dot.
    txt_name: String,
    /// Its value.
    value: String,
    /// The zone holding `name`.
    zone: Name,
    /// The zone's authoritative servers.
    servers: Vec<lookup::NsHost>,
}

/// The records a run added, so that exactly those are removed.
#[derive(Debug, Default)]
pub struct Published {
    placed: Vec<Placed>,
    /// The names, for timings and messages.
    of: String,
}

impl Published {
    /// Nothing was added.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }
}

/// The records of one order, removed by [`Cleanup::now`] or, when the order
/// is dropped half-way (its time limit, a panic), on drop.
pub struct Cleanup<'p, 'a> {
    provider: &'p Provider<'a>,
    published: Published,
    done: bool,
}

/// A TXT question to one address.
type Question = (SocketAddr, Name);

/// Propagation questions in flight at once.
const IN_FLIGHT: usize = 16;

/// How long removal may take when it happens on drop.
const DROP_CLEANUP: Duration = Duration::from_secs(30);

impl<'p, 'a> Cleanup<'p, 'a> {
    /// Nothing published yet.
    pub fn new(provider: &'p Provider<'a>) -> Self {
        Cleanup {
            provider,
            published: Published::default(),
            done: false,
        }
    }

    /// What was published, for [`Provider::publish`] to add to.
    pub fn records(&mut self) -> &mut Published {
        &mut self.published
    }

    /// Removes the records now; a failure is logged (the certificate does
    /// not depend on it, but a stale record should be known).
    pub async fn now(mut self, of: &str) {
        self.done = true;
        if let Err(e) = self.provider.remove(&self.published).await {
            tracing::warn!("removing the DNS-01 records of {of}: {e}");
        }
    }
}

impl Drop for Cleanup<'_, '_> {
    fn drop(&mut self) {
        if self.done || self.published.is_empty() {
            return;
        }
        // The runtime that ran the order may be unwinding or dropping it:
        // a thread of its own, with a runtime of its own, bounded.
        let (provider, published) = (self.provider, &self.published);
        std::thread::scope(|s| {
            s.spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                match rt.block_on(tokio::time::timeout(
                    DROP_CLEANUP,
                    provider.remove(published),
                )) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!("removing the DNS-01 records of {}: {e}", published.of)
                    }
                    Err(_) => tracing::warn!(
                        "removing the DNS-01 records of {}: no answer within {} s",
                        published.of,
                        DROP_CLEANUP.as_secs()
                    ),
                }
            });
        });
    }
}

/// A `[[dns]]` provider at work for one order.
pub struct Provider<'a> {
    root: &'a Root,
    dns: &'a Dns,
}

impl<'a> Provider<'a> {
    /// The provider the playbook describes; files are read when used.
    pub fn new(root: &'a Root, dns: &'a Dns) -> Self {
        Provider { root, dns }
    }

    /// The resolver: the playbook's, else /etc/resolv.conf's, else (RFC
    /// 2136) the primary server itself.
    fn resolver(&self) -> Resolver {
        if let Some(addr) = self
            .dns
            .resolver
            .as_deref()
            .and_then(crate::playbook::dns::server_addr)
        {
            return Resolver::new(vec![addr]);
        }
        let conf = self
            .root
            .read_to_string(std::path::Path::new(crate::paths::RESOLV_CONF))
            .ok()
            .flatten()
            .map(|t| lookup::resolv_conf(&t))
            .unwrap_or_default();
        if !conf.is_empty() {
            return Resolver::new(conf);
        }
        match &self.dns.provider {
            DnsProvider::Rfc2136 { server, .. } => Resolver::new(
                crate::playbook::dns::server_addr(server)
                    .into_iter()
                    .collect(),
            ),
            DnsProvider::Hook { .. } => Resolver::new(Vec::new()),
        }
    }

    /// Finds where each `(domain, value)` record goes and adds them all.
    /// What was added is in `out` even when this fails, for [`Self::remove`].
    pub async fn publish(
        &self,
        wanted: &[(String, String)],
        out: &mut Published,
    ) -> Result<(), DnsError> {
        out.of = wanted
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let placed = self.place(wanted, &out.of).await?;
        let _t = timing::step("dns publish", &out.of);
        match &self.dns.provider {
            DnsProvider::Rfc2136 { .. } => {
                let (server, signer) = self.primary()?;
                for (zone, of_zone) in by_zone(&placed) {
                    // Listed before the update: a server may apply it and
                    // the answer still be lost or unverifiable; removing a
                    // record that is not there is a no-op (RFC 2136 3.4.2.4).
                    out.placed.extend(of_zone.iter().map(|p| (*p).clone()));
                    rfc2136::update(server, &signer, &zone, &records(&of_zone), true).await?;
                }
            }
            DnsProvider::Hook {
                present, timeout, ..
            } => {
                for p in placed {
                    // Listed before the call: a hook that fails half-way
                    // may have added it, and cleanup is harmless if not.
                    out.placed.push(p.clone());
                    hook::run(&self.call("present", present, *timeout, &p)).await?;
                }
            }
        }
        Ok(())
    }

    /// Where each record goes: CNAMEs followed, the zone and its servers.
    async fn place(&self, wanted: &[(String, String)], of: &str) -> Result<Vec<Placed>, DnsError> {
        let _t = timing::step("dns lookup", of);
        let resolver = self.resolver();
        let configured = match &self.dns.provider {
            DnsProvider::Rfc2136 { zone: Some(z), .. } => Some(fqdn(z)?),
            _ => None,
        };
        let mut zones: Vec<(Name, Vec<lookup::NsHost>)> = Vec::new();
        let mut placed = Vec::new();
        for (domain, value) in wanted {
            let asked = fqdn(&challenge_name(domain))?;
            let name = resolver.follow_cnames(&asked).await?;
            // A CNAME must not make portico write a wildcard node (a TXT
            // record that answers for every name below it).
            if name.iter().any(|label| label == b"*") {
                return Err(DnsError::Lookup {
                    name: shown(&asked),
                    what: "CNAME".into(),
                    reason: format!(
                        "it leads to {}, a wildcard name; records are never written there",
                        shown(&name)
                    ),
                });
            }
            let zone = match &configured {
                Some(z) if z.zone_of(&name) => z.clone(),
                Some(z) => {
                    return Err(DnsError::OutsideZone {
                        record: shown(&name),
                        zone: shown(z),
                        via: if name == asked {
                            String::new()
                        } else {
                            format!(" (the CNAME at {} leads there)", shown(&asked))
                        },
                    })
                }
                None => resolver.zone_of(&name).await?,
            };
            let servers = match zones.iter().find(|(z, _)| *z == zone) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = resolver.name_servers(&zone).await?;
                    zones.push((zone.clone(), s.clone()));
                    s
                }
            };
            placed.push(Placed {
                domain: domain.trim_start_matches("*.").to_string(),
                txt_name: name.to_ascii().trim_end_matches('.').to_string(),
                name,
                value: value.clone(),
                zone,
                servers,
            });
        }
        Ok(placed)
    }

    /// Waits until every authoritative server answers every record: asked
    /// at once, then after 5 ms, 10 ms, ... up to a second apart, for at
    /// most `propagation_timeout`. A server counts when any of its
    /// addresses answers; one question per address and name per round
    /// (an apex and its wildcard share one), at most [`IN_FLIGHT`] at once.
    pub async fn wait(&self, published: &Published) -> Result<(), DnsError> {
        use futures_util::StreamExt;
        let _t = timing::step("dns propagation", &published.of);
        let start = Instant::now();
        let limit = Duration::from_secs(u64::from(self.dns.propagation_timeout));
        let mut pending: Vec<(&Placed, &lookup::NsHost)> = published
            .placed
            .iter()
            .flat_map(|p| p.servers.iter().map(move |h| (p, h)))
            .collect();
        let mut wait = Duration::from_millis(5);
        let mut last_error: Option<(SocketAddr, String)> = None;
        loop {
            let mut questions: Vec<(SocketAddr, Name)> = Vec::new();
            for (p, host) in &pending {
                for addr in &host.addrs {
                    let q = (*addr, p.name.clone());
                    if !questions.contains(&q) {
                        questions.push(q);
                    }
                }
            }
            let answers: Vec<(Question, Result<Vec<String>, String>)> =
                futures_util::stream::iter(questions)
                    .map(|(addr, name)| async move {
                        let answer = lookup::txt_values(addr, &name).await;
                        ((addr, name), answer)
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect()
                    .await;
            for ((addr, _), answer) in &answers {
                if let Err(e) = answer {
                    last_error = Some((*addr, e.clone()));
                }
            }
            pending.retain(|(p, host)| {
                !host.addrs.iter().any(|addr| {
                    answers.iter().any(|((a, n), answer)| {
                        a == addr
                            && *n == p.name
                            && answer.as_ref().is_ok_and(|v| v.contains(&p.value))
                    })
                })
            });
            let Some((first, _)) = pending.first() else {
                return Ok(());
            };
            if start.elapsed() >= limit {
                let hosts: Vec<String> = pending
                    .iter()
                    .filter(|(p, _)| p.name == first.name)
                    .map(|(_, h)| {
                        let addrs: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
                        format!("{} ({})", h.name, addrs.join(", "))
                    })
                    .collect();
                return Err(DnsError::NotPropagated {
                    record: shown(&first.name),
                    servers: hosts.join(", "),
                    secs: limit.as_secs(),
                    last: last_error
                        .map(|(a, e)| format!("; {a}: {e}"))
                        .unwrap_or_default(),
                });
            }
            // The last look is at the limit itself.
            tokio::time::sleep(wait.min(limit.saturating_sub(start.elapsed()))).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    /// Removes what [`Self::publish`] added; every record is tried, the
    /// first failure is returned.
    pub async fn remove(&self, published: &Published) -> Result<(), DnsError> {
        if published.placed.is_empty() {
            return Ok(());
        }
        let _t = timing::step("dns cleanup", &published.of);
        let mut first_error = None;
        match &self.dns.provider {
            DnsProvider::Rfc2136 { .. } => {
                let (server, signer) = self.primary()?;
                for (zone, of_zone) in by_zone(&published.placed) {
                    let removed =
                        rfc2136::update(server, &signer, &zone, &records(&of_zone), false).await;
                    if let Err(e) = removed {
                        first_error.get_or_insert(e);
                    }
                }
            }
            DnsProvider::Hook {
                cleanup, timeout, ..
            } => {
                for p in &published.placed {
                    if let Err(e) = hook::run(&self.call("cleanup", cleanup, *timeout, p)).await {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The RFC 2136 primary (validated before any run) and the signer of
    /// its key, read from the secret file now.
    fn primary(&self) -> Result<(SocketAddr, hickory_proto::dnssec::tsig::TSigner), DnsError> {
        let DnsProvider::Rfc2136 {
            server,
            key_name,
            algorithm,
            secret_file,
            ..
        } = &self.dns.provider
        else {
            unreachable!("only the rfc2136 provider has a primary");
        };
        let addr = crate::playbook::dns::server_addr(server).ok_or_else(|| DnsError::Lookup {
            name: server.to_string(),
            what: "address".into(),
            reason: "not an IP address or IP:PORT".into(),
        })?;
        Ok((
            addr,
            rfc2136::signer(self.root, secret_file, key_name, algorithm)?,
        ))
    }

    fn call<'c>(
        &self,
        step: &'static str,
        argv: &'c [String],
        timeout: u32,
        p: &'c Placed,
    ) -> hook::Call<'c> {
        hook::Call {
            step,
            argv,
            domain: &p.domain,
            txt_name: &p.txt_name,
            value: &p.value,
            timeout: Duration::from_secs(u64::from(timeout)),
        }
    }
}

/// The records grouped by zone, zones in order of first appearance.
fn by_zone(placed: &[Placed]) -> Vec<(Name, Vec<&Placed>)> {
    let mut zones: Vec<(Name, Vec<&Placed>)> = Vec::new();
    for p in placed {
        match zones.iter_mut().find(|(z, _)| *z == p.zone) {
            Some((_, of_zone)) => of_zone.push(p),
            None => zones.push((p.zone.clone(), vec![p])),
        }
    }
    zones
}

/// What an update carries: each record's name and value.
fn records(placed: &[&Placed]) -> Vec<(Name, String)> {
    placed
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

/// A name from the playbook or a challenge, absolute.
fn fqdn(s: &str) -> Result<Name, DnsError> {
    let with_dot = if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&with_dot).map_err(|e| DnsError::Lookup {
        name: s.to_string(),
        what: "name".into(),
        reason: format!("not a DNS name: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_names() {
        assert_eq!(
            challenge_name("*.example.test"),
            "_acme-challenge.example.test"
        );
        assert_eq!(
            challenge_name("a.example.test"),
            "_acme-challenge.a.example.test"
        );
    }
}
