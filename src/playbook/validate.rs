//! Checks that serde cannot express: ranges, URLs, names, and references
//! between sections. Every problem names the field it is about.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::model::*;
use super::span::FieldPath;

/// One thing wrong with a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: FieldPath,
    pub message: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: FieldPath, message: impl Into<String>) {
        self.0.push(Problem {
            path,
            message: message.into(),
        });
    }
}

/// Returns every problem found (empty when the playbook is valid).
pub fn validate(pb: &Playbook) -> Vec<Problem> {
    let mut p = Problems::default();
    let root = FieldPath::root();
    if pb.version != 1 {
        p.add(
            root.key("version"),
            format!(
                "unsupported version {}; this portico reads version 1",
                pb.version
            ),
        );
    }
    for (i, port) in pb.firewall.ports.iter().flatten().enumerate() {
        check_port(&mut p, root.key("firewall").item("ports", i), *port);
    }
    check_renewal(&mut p, &pb.renewal);
    let cas = unique_names(&mut p, "ca", pb.cas.iter().map(|c| c.name.as_str()));
    for (i, ca) in pb.cas.iter().enumerate() {
        check_days(&mut p, root.item("ca", i).key("days"), ca.days, 36500);
    }
    let oauth2 = unique_names(&mut p, "oauth2", pb.oauth2.iter().map(|o| o.name.as_str()));
    for (i, o) in pb.oauth2.iter().enumerate() {
        check_url(&mut p, root.item("oauth2", i).key("upstream"), &o.upstream);
    }
    let certs = unique_names(
        &mut p,
        "certificate",
        pb.certificates.iter().map(|c| c.name.as_str()),
    );
    for (i, c) in pb.certificates.iter().enumerate() {
        check_certificate(
            &mut p,
            root.item("certificate", i),
            c,
            pb.acme.as_ref(),
            &cas,
        );
    }
    if let Some(acme) = &pb.acme {
        check_acme(&mut p, acme);
    }
    check_sites(&mut p, pb, &certs, &cas, &oauth2);
    p.0
}

fn check_port(p: &mut Problems, path: FieldPath, port: i64) {
    if !(1..=65535).contains(&port) {
        p.add(path, format!("port {port} is out of range (1-65535)"));
    }
}

fn check_days(p: &mut Problems, path: FieldPath, days: i64, max: i64) {
    if !(1..=max).contains(&days) {
        p.add(path, format!("{days} days is out of range (1-{max})"));
    }
}

fn check_renewal(p: &mut Problems, r: &Renewal) {
    let path = FieldPath::root().key("renewal");
    if !(r.remaining_fraction > 0.0 && r.remaining_fraction < 1.0) {
        p.add(
            path.key("remaining_fraction"),
            format!(
                "{} must be between 0 and 1 (exclusive)",
                r.remaining_fraction
            ),
        );
    }
    if r.schedule != "daily" {
        if let Err(e) = crate::daemon::valid_cron(&r.schedule) {
            p.add(
                path.key("schedule"),
                format!(
                    "{:?} is neither \"daily\" nor a cron expression with seconds (\"0 17 3 * * *\"): {e}",
                    r.schedule
                ),
            );
        }
    }
}

/// Reports duplicate names; returns the set of names.
fn unique_names<'a>(
    p: &mut Problems,
    section: &str,
    names: impl Iterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        let path = FieldPath::root().item(section, i).key("name");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            p.add(
                path,
                format!("{name:?} is not a valid name (letters, digits, '-', '_', '.')"),
            );
        } else if !seen.insert(name.to_string()) {
            p.add(path, format!("duplicate {section} name {name:?}"));
        }
    }
    seen
}

fn check_certificate(
    p: &mut Problems,
    path: FieldPath,
    c: &Certificate,
    acme: Option<&Acme>,
    cas: &BTreeSet<String>,
) {
    if let Some(names) = &c.names {
        if names.is_empty() {
            p.add(
                path.key("names"),
                "must list at least one name (or be left out)",
            );
        }
        for (i, n) in names.iter().enumerate() {
            check_server_name(p, path.item("names", i), n);
        }
    }
    if let Some(days) = c.days {
        check_days(p, path.key("days"), days, 3650);
    }
    match c.source {
        CertSource::Acme => match acme {
            None => p.add(
                path.key("source"),
                "an ACME certificate needs an [acme] section with agree_terms = true",
            ),
            Some(a) if !a.agree_terms => p.add(
                path.key("source"),
                "an ACME certificate needs [acme] agree_terms = true (read the CA's terms of service first)",
            ),
            Some(_) => {}
        },
        CertSource::Ca => match &c.ca {
            None => p.add(path.key("source"), "source = \"ca\" needs ca = \"NAME\" of a [[ca]]"),
            Some(name) if !cas.contains(name) => {
                p.add(path.key("ca"), format!("unknown ca {name:?}"))
            }
            Some(_) => {}
        },
        CertSource::Files => {
            for (field, value) in [("cert_file", &c.cert_file), ("key_file", &c.key_file)] {
                match value {
                    None => p.add(path.key("source"), format!("source = \"files\" needs {field}")),
                    Some(f) if !f.starts_with('/') => {
                        p.add(path.key(field), format!("{f:?} is not an absolute path"))
                    }
                    Some(_) => {}
                }
            }
        }
        CertSource::SelfSigned => {}
    }
    if c.ca.is_some() && c.source != CertSource::Ca {
        p.add(path.key("ca"), "ca is only used with source = \"ca\"");
    }
    if c.source != CertSource::Files && (c.cert_file.is_some() || c.key_file.is_some()) {
        p.add(
            path.key("source"),
            "cert_file/key_file are only used with source = \"files\"",
        );
    }
}

fn check_acme(p: &mut Problems, a: &Acme) {
    let path = FieldPath::root().key("acme");
    if !matches!(a.directory.as_str(), "letsencrypt" | "letsencrypt-staging")
        && !a.directory.starts_with("https://")
    {
        p.add(
            path.key("directory"),
            format!(
                "{:?} is not \"letsencrypt\", \"letsencrypt-staging\" or an https:// directory URL",
                a.directory
            ),
        );
    }
    if let Some(email) = &a.email {
        let ok = email.split_once('@').is_some_and(|(u, d)| {
            !u.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
        });
        if !ok {
            p.add(
                path.key("email"),
                format!("{email:?} is not an email address"),
            );
        }
    }
    if !a.webroot.starts_with('/') {
        p.add(
            path.key("webroot"),
            format!("{:?} is not an absolute path", a.webroot),
        );
    }
}

fn check_sites(
    p: &mut Problems,
    pb: &Playbook,
    certs: &BTreeSet<String>,
    cas: &BTreeSet<String>,
    oauth2: &BTreeSet<String>,
) {
    // (port, server name) → the site that claimed it first.
    let mut claimed: HashMap<(i64, String), usize> = HashMap::new();
    let mut site_names: HashMap<String, usize> = HashMap::new();
    for (i, s) in pb.sites.iter().enumerate() {
        let path = FieldPath::root().item("site", i);
        if s.server_names.is_empty() {
            p.add(
                path.key("server_names"),
                "must list at least one server name",
            );
        }
        for (j, n) in s.server_names.iter().enumerate() {
            check_server_name(p, path.item("server_names", j), n);
            if let Some(first) = claimed.insert((s.listen, n.to_lowercase()), i) {
                p.add(
                    path.item("server_names", j),
                    format!(
                        "duplicate server name {n:?}: site[{first}] already serves it on port {}",
                        s.listen
                    ),
                );
            }
        }
        let name = s
            .name
            .clone()
            .or_else(|| s.server_names.first().cloned())
            .unwrap_or_default();
        if let Some(first) = site_names.insert(name.clone(), i) {
            p.add(
                path.key("name"),
                format!("duplicate site name {name:?} (also site[{first}])"),
            );
        }
        if !certs.contains(&s.certificate) {
            p.add(
                path.key("certificate"),
                format!(
                    "unknown certificate {:?}; define it in a [[certificate]]",
                    s.certificate
                ),
            );
        }
        if !matches!(s.redirect_code, 301 | 308) {
            p.add(
                path.key("redirect_code"),
                format!("{} is not 301 or 308", s.redirect_code),
            );
        }
        check_port(p, path.key("listen"), s.listen);
        if s.hsts < 0 {
            p.add(path.key("hsts"), "max-age cannot be negative");
        }
        if let Some(size) = &s.client_max_body_size {
            let digits = size.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
            if digits.is_empty()
                || !digits.chars().all(|c| c.is_ascii_digit())
                || size.len() - digits.len() > 1
            {
                p.add(
                    path.key("client_max_body_size"),
                    format!("{size:?} is not a size like \"10m\""),
                );
            }
        }
        if let Some(ca) = &s.client_auth {
            if !cas.contains(&ca.ca) {
                p.add(
                    path.key("client_auth").key("ca"),
                    format!("unknown ca {:?}", ca.ca),
                );
            }
            for (field, h) in [
                ("verify_header", &ca.verify_header),
                ("dn_header", &ca.dn_header),
            ] {
                if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    p.add(
                        path.key("client_auth").key(field),
                        format!("{h:?} is not a header name"),
                    );
                }
            }
        }
        if let Some(o) = &s.oauth2 {
            if !oauth2.contains(o) {
                p.add(path.key("oauth2"), format!("unknown oauth2 {o:?}"));
            }
        }
        let used: BTreeSet<&str> = s
            .oauth2
            .iter()
            .map(String::as_str)
            .chain(s.locations.iter().filter_map(|l| l.oauth2.as_deref()))
            .filter(|o| *o != "none")
            .collect();
        if used.len() > 1 {
            p.add(
                path.key("oauth2"),
                format!(
                    "a site can use one oauth2-proxy; this one names {}",
                    used.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if !used.is_empty() {
            for (j, l) in s.locations.iter().enumerate() {
                if l.path.starts_with("/oauth2") {
                    p.add(
                        path.item("location", j).key("path"),
                        format!(
                            "{:?} is where oauth2-proxy's pages are served on this site",
                            l.path
                        ),
                    );
                }
            }
        }
        if s.locations.is_empty() {
            p.add(
                path.key("location"),
                "a site needs at least one [[site.location]]",
            );
        }
        let mut paths = BTreeSet::new();
        for (j, l) in s.locations.iter().enumerate() {
            let lp = path.item("location", j);
            if !l.path.starts_with('/')
                || l.path.contains(char::is_whitespace)
                || l.path.contains(['{', '}', ';'])
            {
                p.add(
                    lp.key("path"),
                    format!("{:?} is not a URL path starting with '/'", l.path),
                );
            } else if !paths.insert(l.path.as_str()) {
                p.add(
                    lp.key("path"),
                    format!("duplicate location {:?} in this site", l.path),
                );
            }
            check_url(p, lp.key("proxy"), &l.proxy);
            if l.require_client_cert && s.client_auth.is_none() {
                p.add(
                    lp.key("require_client_cert"),
                    "needs client_auth on the site",
                );
            }
            if let Some(o) = &l.oauth2 {
                if o != "none" && !oauth2.contains(o) {
                    p.add(
                        lp.key("oauth2"),
                        format!("unknown oauth2 {o:?} (or \"none\")"),
                    );
                }
            }
        }
    }
}

/// A DNS name (`*.` allowed in front), an IP address, or `{hostname}`.
fn check_server_name(p: &mut Problems, path: FieldPath, name: &str) {
    if name == "{hostname}" || name.parse::<IpAddr>().is_ok() {
        return;
    }
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        p.add(path, format!("{name:?} is not a DNS name or IP address"));
    }
}

/// An `http://` or `https://` URL with a host and an optional valid port.
fn check_url(p: &mut Problems, path: FieldPath, url: &str) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else {
        p.add(path, format!("{url:?} is not an http or https URL"));
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && !url.contains(char::is_whitespace)
        && !url.contains([';', '{', '}', '"', '\''])
        && host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !host_ok || !port_ok {
        p.add(path, format!("{url:?} is not an http or https URL"));
    }
}
