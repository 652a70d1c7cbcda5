//! The metrics as Prometheus' text exposition format: pure, from the
//! status, the CAs' figures and the runs on record. Names follow
//! Prometheus' conventions (base units, `_seconds`, `_timestamp_seconds`);
//! every family gets its `# HELP` and `# TYPE`.

use std::fmt::Write;

use crate::playbook::{Playbook, Source};
use crate::status::Status;

use super::runs::Runs;

/// A private CA's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaFigures {
    /// The `[[ca]]` name.
    pub name: String,
    /// The CA certificate's notAfter (Unix seconds), when it is readable.
    pub not_after: Option<i64>,
    /// Client certificates neither revoked nor expired.
    pub valid_clients: u64,
    /// The earliest notAfter among them.
    pub next_client_expiry: Option<i64>,
}

/// What the metrics are made of.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The playbook (for each certificate's challenge), when there is one.
    pub pb: Option<&'a Playbook>,
    /// The front end's state, when there is a playbook.
    pub status: Option<&'a Status>,
    /// The playbook's CAs.
    pub cas: &'a [CaFigures],
    /// Each command's last run.
    pub runs: &'a Runs,
    /// portico's version.
    pub version: &'a str,
}

/// One metric family: its samples as (labels, value).
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, String)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: impl ToString) {
        self.samples.push((labels, value.to_string()));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
}

/// A label value as the exposition format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole text.
pub fn render(s: &Snapshot<'_>) -> String {
    let mut build = Family::new(
        "portico_build_info",
        "portico's version, as a label; the value is always 1.",
    );
    build.add(vec![("version", s.version.to_string())], 1);
    let mut families = vec![build];
    families.extend(certificates(s));
    families.extend(account(s));
    families.extend(runs(s.runs));
    families.extend(cas(s.cas));
    let mut out = String::new();
    for f in &families {
        f.write(&mut out);
    }
    out
}

/// The ACME account's queue (src/acme/ledger.rs).
fn account(s: &Snapshot<'_>) -> Vec<Family> {
    let Some(a) = s.status.and_then(|st| st.account.as_ref()) else {
        return Vec::new();
    };
    let labels = || vec![("directory", a.directory.clone())];
    let mut orders = Family::new(
        "portico_acme_orders_last_hour",
        "New orders the ACME account sent in the last hour.",
    );
    orders.add(labels(), a.orders_last_hour as i64);
    let mut queued = Family::new(
        "portico_acme_certificates_queued",
        "Due ACME certificates waiting for the account's order limit or rate-limit hold.",
    );
    queued.add(labels(), a.queued as i64);
    let mut held = Family::new(
        "portico_acme_account_held_until_timestamp_seconds",
        "The CA rate-limited the account until then (Unix seconds); absent when it does not.",
    );
    if let Some(t) = a.held_until_unix {
        held.add(labels(), t);
    }
    vec![orders, queued, held]
}

fn certificates(s: &Snapshot<'_>) -> Vec<Family> {
    let mut not_after = Family::new(
        "portico_certificate_not_after_timestamp_seconds",
        "When the certificate on disk expires (its notAfter), in Unix seconds.",
    );
    let mut not_before = Family::new(
        "portico_certificate_not_before_timestamp_seconds",
        "When the certificate on disk became valid (its notBefore), in Unix seconds.",
    );
    let mut readable = Family::new(
        "portico_certificate_readable",
        "1 when the certificate's file holds a readable certificate, else 0.",
    );
    let mut served = Family::new(
        "portico_certificate_served_matches_file",
        "1 when nginx serves the certificate on disk (asked over TLS on loopback), else 0.",
    );
    let mut failures = Family::new(
        "portico_certificate_renewal_failures",
        "Renewals of the certificate that failed in a row since the last success.",
    );
    let mut next = Family::new(
        "portico_certificate_next_attempt_timestamp_seconds",
        "When portico next tries to renew the certificate (its due time, or the end of its back-off), in Unix seconds.",
    );
    let Some(status) = s.status else {
        return Vec::new();
    };
    let by_name = s.pb.map(|pb| pb.certificates_by_name()).unwrap_or_default();
    for c in &status.certificates {
        let source = by_name.get(c.name.as_str()).map(|p| &p.source);
        let mut labels = vec![
            ("certificate", c.name.clone()),
            ("source", c.source.clone()),
        ];
        if let Some(Source::Acme { challenge, .. }) = source {
            labels.push(("challenge", challenge.name().to_string()));
        }
        readable.add(labels.clone(), u8::from(c.current.is_some()));
        if let Some(cur) = &c.current {
            not_after.add(labels.clone(), cur.not_after_unix);
            not_before.add(labels.clone(), cur.not_before_unix);
        }
        if let Some(m) = c.served_matches_file {
            served.add(vec![("certificate", c.name.clone())], u8::from(m));
        }
        if c.source != "files" {
            failures.add(labels.clone(), c.failures);
        }
        let due = c.renewal.as_ref().map(|r| r.at_unix);
        if let Some(at) = due.into_iter().chain(c.backing_off_until_unix).max() {
            next.add(labels, at);
        }
    }
    vec![not_after, not_before, readable, served, failures, next]
}

fn runs(runs: &Runs) -> Vec<Family> {
    let mut last = Family::new(
        "portico_last_run_timestamp_seconds",
        "When a command's run last ended with this result, in Unix seconds.",
    );
    let mut duration = Family::new(
        "portico_run_duration_seconds",
        "How long the command's last run took.",
    );
    let mut changed = Family::new(
        "portico_run_changed_tasks",
        "Tasks the command's last run changed.",
    );
    let mut failed = Family::new(
        "portico_run_failed_tasks",
        "Tasks that failed in the command's last run.",
    );
    for (command, r) in &runs.commands {
        let cmd = || vec![("command", command.clone())];
        for (result, at) in [("success", r.last_success), ("failure", r.last_failure)] {
            if let Some(at) = at {
                last.add(
                    vec![("command", command.clone()), ("result", result.to_string())],
                    at,
                );
            }
        }
        duration.add(cmd(), format_seconds(r.duration_seconds));
        changed.add(cmd(), r.changed);
        failed.add(cmd(), r.failed);
    }
    vec![last, duration, changed, failed]
}

fn cas(cas: &[CaFigures]) -> Vec<Family> {
    let mut not_after = Family::new(
        "portico_ca_not_after_timestamp_seconds",
        "When the private CA's own certificate expires, in Unix seconds.",
    );
    let mut clients = Family::new(
        "portico_ca_client_certificates",
        "Client certificates the private CA issued that are neither revoked nor expired.",
    );
    let mut next = Family::new(
        "portico_ca_client_certificate_next_expiry_timestamp_seconds",
        "When the first of the private CA's valid client certificates expires, in Unix seconds.",
    );
    for ca in cas {
        let labels = || vec![("ca", ca.name.clone())];
        if let Some(t) = ca.not_after {
            not_after.add(labels(), t);
        }
        clients.add(labels(), ca.valid_clients);
        if let Some(t) = ca.next_client_expiry {
            next.add(labels(), t);
        }
    }
    vec![not_after, clients, next]
}

/// Seconds with millisecond precision, as Prometheus reads them.
fn format_seconds(s: f64) -> String {
    format!("{:.3}", s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::runs::Outcome;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn runs_and_cas_render_with_help_and_type() {
        let mut runs = Runs::default();
        runs.record(
            "apply",
            Outcome {
                at: 1_700_000_000,
                duration_seconds: 0.25,
                changed: 3,
                failed: 0,
                succeeded: true,
            },
        );
        let cas = [CaFigures {
            name: "clients".into(),
            not_after: Some(1_800_000_000),
            valid_clients: 2,
            next_client_expiry: Some(1_750_000_000),
        }];
        let text = render(&Snapshot {
            pb: None,
            status: None,
            cas: &cas,
            runs: &runs,
            version: "9.9.9",
        });
        for line in [
            "# TYPE portico_build_info gauge",
            "portico_build_info{version=\"9.9.9\"} 1",
            "portico_last_run_timestamp_seconds{command=\"apply\",result=\"success\"} 1700000000",
            "portico_run_duration_seconds{command=\"apply\"} 0.250",
            "portico_run_changed_tasks{command=\"apply\"} 3",
            "portico_run_failed_tasks{command=\"apply\"} 0",
            "portico_ca_client_certificates{ca=\"clients\"} 2",
            "portico_ca_client_certificate_next_expiry_timestamp_seconds{ca=\"clients\"} 1750000000",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        // No result that never happened.
        assert!(!text.contains("result=\"failure\""));
        // Every sample's family has HELP and TYPE before it.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
