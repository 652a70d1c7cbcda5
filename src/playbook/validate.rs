//! Checks that serde cannot express: ranges, URLs, names, and references
//! between sections. Every problem names the field it is about.
//!
//! Every string that ends up in a file name or an nginx directive is checked
//! here with the rules in [`super::names`] and [`super::url`], the same code
//! rendering uses, so nothing unchecked reaches nginx.

use core::net::IpAddr;
use std::collections::{BTreeSet, HashMap};

use super::model::*;
use super::names::{self, RESERVED_HEADERS};
use super::span::FieldPath;
use super::url::BackendUrl;

/// One thing wrong with a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field it is about.
    pub path: FieldPath,
    /// What is wrong, for people.
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
    check_renewal(&mut p, &pb.renewal);
    check_metrics(&mut p, &pb.metrics);
    check_proxy(&mut p, &pb.proxy);
    let cas = unique_names(&mut p, "ca", pb.cas.iter().map(|c| c.name.as_str()));
    for (i, ca) in pb.cas.iter().enumerate() {
        check_days(&mut p, root.item("ca", i).key("days"), ca.days, 36500);
    }
    let oauth2 = unique_names(&mut p, "oauth2", pb.oauth2.iter().map(|o| o.name.as_str()));
    for (i, o) in pb.oauth2.iter().enumerate() {
        check_oauth2(&mut p, root.item("oauth2", i), o);
    }
    let dns = unique_names(&mut p, "dns", pb.dns.iter().map(|d| d.name.as_str()));
    for (i, d) in pb.dns.iter().enumerate() {
        check_dns(&mut p, root.item("dns", i), d);
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
            &dns,
        );
    }
    check_acme_wildcards(&mut p, pb);
    if let Some(acme) = &pb.acme {
        check_acme(&mut p, acme);
    }
    check_sites(&mut p, pb, &certs, &cas, &oauth2);
    p.0
}

fn check_days(p: &mut Problems, path: FieldPath, days: u32, max: u32) {
    if !(1..=max).contains(&days) {
        p.add(path, format!("{days} days is out of range (1-{max})"));
    }
}

/// A file the operator gives portico to read (a certificate and key, a
/// TSIG or EAB secret, a CA bundle): a usable path, and not inside
/// portico's own directories, which `remove --purge` deletes whole.
fn check_path(p: &mut Problems, path: FieldPath, value: &str) {
    if let Some(why) = names::safe_path_problem(value) {
        p.add(path, format!("{value:?} is not a usable path: {why}"));
    } else if let Some(dir) = [crate::paths::CERT_DIR, crate::paths::STATE_DIR]
        .into_iter()
        .find(|d| std::path::Path::new(value).starts_with(d))
    {
        p.add(
            path,
            format!(
                "{value:?} is inside {dir}, which portico owns and `remove --purge` deletes: keep \
                 your own files elsewhere (/etc/ssl/private, /etc/portico)"
            ),
        );
    }
}

fn check_metrics(p: &mut Problems, m: &Metrics) {
    let Some(file) = m.textfile.as_deref().filter(|f| !f.is_empty()) else {
        return;
    };
    let path = FieldPath::root().key("metrics").key("textfile");
    if let Some(why) = names::metrics_file_problem(file) {
        p.add(path, format!("{file:?}: {why}"));
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
    if let Some(argv) = &r.deploy_hook {
        check_argv(p, &path, "deploy_hook", argv);
    }
    let max = crate::limits::DEPLOY_HOOK_MAX.as_secs();
    if !(1..=max).contains(&u64::from(r.deploy_hook_timeout)) {
        p.add(
            path.key("deploy_hook_timeout"),
            format!(
                "{} seconds is out of range (1-{max}: a renewal run has {} minutes in all)",
                r.deploy_hook_timeout,
                crate::limits::RUN_MAX.as_secs() / 60
            ),
        );
    }
}

/// A program to run: an argv list whose first item is an absolute path
/// (no shell finds it) and no item holds a NUL byte.
fn check_argv(p: &mut Problems, parent: &FieldPath, field: &str, argv: &[String]) {
    match argv.first() {
        None => p.add(
            parent.key(field),
            "is empty; give the program and its arguments, [\"/usr/local/bin/notify\", \"arg\"]",
        ),
        Some(program) => {
            if let Some(why) = names::safe_path_problem(program) {
                // Up to the first blank only: a command line written as one
                // string may carry a token after it.
                let shown = match program.split_once(char::is_whitespace) {
                    Some((first, _)) => format!("{first:?} (and the rest, not shown)"),
                    None => format!("{program:?}"),
                };
                p.add(
                    parent.item(field, 0),
                    format!(
                        "{shown} is not a usable program path: {why} (an argv list runs no shell, \
                         so name the program by its absolute path and each argument as its own item)"
                    ),
                );
            }
        }
    }
    for (i, arg) in argv.iter().enumerate().skip(1) {
        if arg.contains('\0') {
            p.add(parent.item(field, i), "contains a NUL byte");
        }
    }
}

/// `[proxy]`: trusted proxies are addresses or CIDRs (`10.0.0.0/8`,
/// `::1`), extra cleared headers are header names portico does not set
/// itself, the backend CA is a path.
fn check_proxy(p: &mut Problems, proxy: &ProxySettings) {
    let path = FieldPath::root().key("proxy");
    for (i, h) in proxy.clear_headers.iter().enumerate() {
        if let Some(why) = header_problem(h) {
            p.add(path.item("clear_headers", i), why);
        }
    }
    if let Some(ca) = &proxy.backend_ca {
        check_path(p, path.key("backend_ca"), ca);
    }
    for (i, cidr) in proxy.trusted_proxies.iter().enumerate() {
        if !cidr_ok(cidr) {
            p.add(
                FieldPath::root().key("proxy").item("trusted_proxies", i),
                format!(
                    "{cidr:?} is not an IP address or CIDR (\"10.0.0.0/8\", \"2001:db8::/32\")"
                ),
            );
        }
    }
}

fn cidr_ok(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| !b.starts_with('+') && b.parse::<u8>().is_ok_and(|n| n <= max))
}

/// Reports bad and duplicate names; returns the set of names.
fn unique_names<'a>(
    p: &mut Problems,
    section: &str,
    names: impl Iterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        let path = FieldPath::root().item(section, i).key("name");
        if !names::object_name_ok(name) {
            p.add(
                path,
                format!(
                    "{name:?} is not a valid name: a letter or digit, then letters, digits, '.', '_', '-' (at most 64)"
                ),
            );
        } else if !seen.insert(name.to_string()) {
            p.add(path, format!("duplicate {section} name {name:?}"));
        }
    }
    seen
}

fn check_oauth2(p: &mut Problems, path: FieldPath, o: &Oauth2) {
    match BackendUrl::parse(&o.upstream) {
        Err(e) => p.add(path.key("upstream"), e.to_string()),
        // The pages live under /oauth2/ on oauth2-proxy itself: a path here
        // would be glued onto every request URI.
        Ok(u) if !matches!(u.path.as_str(), "" | "/") => p.add(
            path.key("upstream"),
            format!(
                "{:?} has a path; give oauth2-proxy's address only (\"{}\")",
                o.upstream,
                u.origin()
            ),
        ),
        Ok(_) => {}
    }
    if let Some(d) = &o.cookie_domain {
        if names::dns_name_problem(d.strip_prefix('.').unwrap_or(d), false).is_some() {
            p.add(
                path.key("cookie_domain"),
                format!("{d:?} is not a domain (\".example.com\")"),
            );
        }
    }
    for (header, field) in &o.headers {
        let hp = path.key("headers").key(header);
        if let Some(why) = header_problem(header) {
            p.add(hp, why);
        } else if IdentityField::ALL
            .iter()
            .any(|f| f.header().eq_ignore_ascii_case(header))
        {
            p.add(
                hp,
                format!("{header} is always set from oauth2-proxy's answer; name another header"),
            );
        } else if *field == IdentityField::AccessToken && !o.pass_access_token {
            p.add(
                hp,
                "the access token is passed only with pass_access_token = true",
            );
        }
    }
}

/// Why `header` cannot be an identity header portico sets, if it cannot.
fn header_problem(header: &str) -> Option<String> {
    if !names::header_name_ok(header) {
        return Some(format!(
            "{header:?} is not a header name (letters, digits, '-')"
        ));
    }
    RESERVED_HEADERS
        .iter()
        .find(|r| r.eq_ignore_ascii_case(header))
        .map(|r| format!("{r} is set by portico itself; name another header"))
}

fn check_certificate(
    p: &mut Problems,
    path: FieldPath,
    c: &Certificate,
    acme: Option<&Acme>,
    cas: &BTreeSet<String>,
    dns: &BTreeSet<String>,
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
    if let Some(Challenge::Dns01 { dns: name }) = c.source.challenge() {
        for (i, n) in c.names.iter().flatten().enumerate() {
            if n.parse::<IpAddr>().is_ok() {
                p.add(
                    path.item("names", i),
                    format!("{n:?} is an IP address, which DNS-01 cannot validate (no name to hold a TXT record)"),
                );
            }
        }
        if !dns.contains(name) {
            p.add(
                path.key("dns"),
                format!("unknown dns {name:?}: name a [[dns]] provider of this playbook"),
            );
        }
    }
    match &c.source {
        Source::Acme { .. } => match acme {
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
        Source::Ca { ca, days } => {
            check_days(p, path.key("days"), *days, 3650);
            if !cas.contains(ca) {
                p.add(path.key("ca"), format!("unknown ca {ca:?}"));
            }
        }
        Source::SelfSigned { days } => check_days(p, path.key("days"), *days, 3650),
        // Written into ssl_certificate(_key) directives.
        Source::Files {
            cert_file,
            key_file,
        } => {
            check_path(p, path.key("cert_file"), cert_file);
            check_path(p, path.key("key_file"), key_file);
        }
    }
}

/// A CA issues a wildcard only over DNS-01: an HTTP-01 certificate with
/// one is refused now, not after nginx has started.
fn check_acme_wildcards(p: &mut Problems, pb: &Playbook) {
    let why = |name: &str, cert: &str| {
        format!(
            "{name:?} is a wildcard, and certificate {cert:?} comes from ACME over HTTP-01, which \
             cannot validate wildcards: give it challenge = \"dns-01\" and a [[dns]] provider, \
             list each name, or use source = \"files\" with a wildcard certificate you obtain elsewhere"
        )
    };
    for (i, c) in pb.certificates.iter().enumerate() {
        if c.source.challenge() != Some(&Challenge::Http01) {
            continue;
        }
        if let Some(names) = &c.names {
            for (j, n) in names.iter().enumerate() {
                if n.starts_with("*.") {
                    let path = FieldPath::root().item("certificate", i).item("names", j);
                    p.add(path, why(n, &c.name));
                }
            }
            continue;
        }
        for (k, s) in pb.sites.iter().enumerate() {
            if s.certificate != c.name {
                continue;
            }
            for (j, n) in s.server_names.iter().enumerate() {
                if n.starts_with("*.") {
                    let path = FieldPath::root().item("site", k).item("server_names", j);
                    p.add(path, why(n, &c.name));
                }
            }
        }
    }
}

/// `[[dns]]`: addresses that parse, names that are DNS names, a secret
/// that lives in a file, programs given as argv lists.
fn check_dns(p: &mut Problems, path: FieldPath, d: &Dns) {
    // The daemon's renewal child is stopped after 30 minutes; an order
    // must end, records removed, well before.
    check_seconds(
        p,
        path.key("propagation_timeout"),
        d.propagation_timeout,
        crate::limits::PROPAGATION_MAX,
    );
    if let Some(r) = &d.resolver {
        if super::dns::server_addr(r).is_none() {
            p.add(
                path.key("resolver"),
                format!("{r:?} is not an IP address or IP:PORT"),
            );
        }
    }
    match &d.provider {
        DnsProvider::Rfc2136 {
            server,
            zone,
            key_name,
            algorithm,
            secret_file,
        } => check_rfc2136(
            p,
            &path,
            server,
            zone.as_deref(),
            key_name,
            algorithm,
            secret_file,
        ),
        DnsProvider::Hook {
            present,
            cleanup,
            timeout: secs,
        } => {
            check_argv(p, &path, "present", present);
            check_argv(p, &path, "cleanup", cleanup);
            check_seconds(
                p,
                path.key("hook_timeout"),
                *secs,
                crate::limits::DNS_HOOK_MAX,
            );
        }
    }
}

/// A number of seconds from 1 to `max`.
fn check_seconds(p: &mut Problems, field: FieldPath, secs: u32, max: std::time::Duration) {
    let max = max.as_secs();
    if !(1..=max).contains(&u64::from(secs)) {
        p.add(field, format!("{secs} seconds is out of range (1-{max})"));
    }
}

/// RFC 2136 updates: the primary by address, DNS names, a TSIG algorithm
/// portico signs with, and its secret in a file.
fn check_rfc2136(
    p: &mut Problems,
    path: &FieldPath,
    server: &str,
    zone: Option<&str>,
    key_name: &str,
    algorithm: &str,
    secret_file: &str,
) {
    if super::dns::server_addr(server).is_none() {
        p.add(
            path.key("server"),
            format!(
                "{server:?} is not an IP address or IP:PORT of the primary server (a name would need DNS to find the DNS server)"
            ),
        );
    }
    if let Some(z) = zone {
        if !names::dns_name_ok(z.trim_end_matches('.')) {
            p.add(path.key("zone"), format!("{z:?} is not a DNS name"));
        }
    }
    if !names::key_name_ok(key_name.trim_end_matches('.')) {
        p.add(
            path.key("key_name"),
            format!("{key_name:?} is not a TSIG key name (a DNS name, as in `key \"NAME\"` of named.conf)"),
        );
    }
    if super::dns::tsig_algorithm(algorithm).is_none() {
        p.add(
            path.key("algorithm"),
            format!(
                "{algorithm:?} is not a TSIG algorithm portico signs with: hmac-sha256, hmac-sha384 or hmac-sha512"
            ),
        );
    }
    if !secret_file.starts_with('/') {
        p.add(
            path.key("secret_file"),
            format!("{secret_file:?} is not an absolute path"),
        );
    } else {
        check_path(p, path.key("secret_file"), secret_file);
    }
}

fn check_acme(p: &mut Problems, a: &Acme) {
    let path = FieldPath::root().key("acme");
    if let Some(n) = a.max_orders_per_hour {
        if !(1..=1_000_000).contains(&n) {
            p.add(
                path.key("max_orders_per_hour"),
                format!("{n} is out of range (1-1000000; leave it out for the CA's own limit)"),
            );
        }
    }
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
            !u.is_empty()
                && d.contains('.')
                && !email.contains(|c: char| c.is_whitespace() || c.is_control())
        });
        if !ok {
            p.add(
                path.key("email"),
                format!("{email:?} is not an email address"),
            );
        }
    }
    // Written into the port-80 server's `root` directive and the daemon's
    // unit, which may write there.
    if let Some(why) =
        names::safe_path_problem(&a.webroot).or_else(|| names::webroot_problem(&a.webroot))
    {
        p.add(
            path.key("webroot"),
            format!("{:?} is not a usable webroot: {why}", a.webroot),
        );
    }
    for (field, value) in [
        ("ca_root", a.ca_root.as_deref()),
        (
            "eab.hmac_key_file",
            a.eab.as_ref().map(|e| e.hmac_key_file.as_str()),
        ),
    ] {
        if let Some(v) = value {
            if !v.starts_with('/') {
                p.add(path.key(field), format!("{v:?} is not an absolute path"));
            } else {
                check_path(p, path.key(field), v);
            }
        }
    }
}

fn check_sites(
    p: &mut Problems,
    pb: &Playbook,
    certs: &BTreeSet<String>,
    cas: &BTreeSet<String>,
    oauth2: &BTreeSet<String>,
) {
    let mut claims = SiteClaims::default();
    for (i, s) in pb.sites.iter().enumerate() {
        let path = FieldPath::root().item("site", i);
        check_site_fields(p, &path, s, certs);
        claims.server_names(p, &path, i, s);
        claims.files(p, &path, i, s);
        check_site_auth(p, &path, s, pb, cas, oauth2);
        check_locations(p, &path, s, oauth2);
        for (j, l) in s.locations.iter().enumerate() {
            if let Ok(url) = BackendUrl::parse(&l.proxy) {
                claims.upstream(p, &path.item("location", j), i, s, &url);
            }
        }
    }
}

/// What the sites seen so far claim, that two sites may not share.
#[derive(Default)]
struct SiteClaims {
    /// (port, server name) → the site that claimed it first. Every site
    /// also answers its names on port 80.
    served: HashMap<(u16, String), usize>,
    /// nginx identifier a site's name folds to → the site.
    idents: HashMap<String, usize>,
    /// Site file stem (lower case) → the site that has it.
    stems: HashMap<String, usize>,
    /// Upstream block name → (site, backend) that defines it.
    upstreams: HashMap<String, (usize, String)>,
}

impl SiteClaims {
    /// Each server name, valid, and served on each port by one site only.
    fn server_names(&mut self, p: &mut Problems, path: &FieldPath, i: usize, s: &Site) {
        for (j, n) in s.server_names.iter().enumerate() {
            check_server_name(p, path.item("server_names", j), n);
            for port in [s.listen, 80] {
                let Some(first) = self.served.insert((port, n.to_lowercase()), i) else {
                    continue;
                };
                if first == i {
                    continue;
                }
                let why = if port == 80 && s.listen != 80 {
                    " (every site answers its names on port 80: redirects, ACME)"
                } else {
                    ""
                };
                p.add(
                    path.item("server_names", j),
                    format!(
                        "duplicate server name {n:?}: site[{first}] already serves it on port {port}{why}"
                    ),
                );
                break;
            }
        }
    }

    /// The site's files and nginx names are its own.
    fn files(&mut self, p: &mut Problems, path: &FieldPath, i: usize, s: &Site) {
        let id = s.id();
        let stem = names::site_file_stem(&id).to_lowercase();
        let field = if s.name.is_some() {
            path.key("name")
        } else {
            path.item("server_names", 0)
        };
        if let Some(first) = self.stems.insert(stem.clone(), i) {
            p.add(
                field,
                format!(
                    "site[{first}] already writes the files {stem}.*; give one of them a distinct name = \"...\""
                ),
            );
        } else if let Some(first) = self.idents.insert(names::nginx_ident(&id), i) {
            p.add(
                field,
                format!(
                    "site[{first}]'s name folds to the same nginx name ({}); give one of them a distinct name = \"...\"",
                    names::nginx_ident(&id)
                ),
            );
        }
    }

    /// A plain-HTTP backend's upstream block name is the site's own.
    fn upstream(&mut self, p: &mut Problems, lp: &FieldPath, i: usize, s: &Site, url: &BackendUrl) {
        if url.scheme != crate::playbook::url::Scheme::Http {
            return;
        }
        let up = names::upstream_name(&s.id(), &url.host_port());
        let this = (i, url.host_port());
        match self.upstreams.get(&up) {
            Some(other) if *other != this => p.add(
                lp.key("proxy"),
                format!(
                    "its nginx upstream would be named {up}, like site[{}]'s backend {}; \
                     give one of the sites a distinct name = \"...\"",
                    other.0, other.1
                ),
            ),
            Some(_) => {}
            None => {
                self.upstreams.insert(up, this);
            }
        }
    }
}

/// A site's own fields, each on its own.
fn check_site_fields(p: &mut Problems, path: &FieldPath, s: &Site, certs: &BTreeSet<String>) {
    if let Some(name) = &s.name {
        if let Some(why) = names::dns_name_problem(name, false) {
            p.add(
                path.key("name"),
                format!("{name:?} is not a valid site name (it names files): {why}"),
            );
        }
    }
    if s.server_names.is_empty() {
        p.add(
            path.key("server_names"),
            "must list at least one server name",
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
    if s.listen == 80 {
        p.add(
            path.key("listen"),
            "port 80 is the plain-HTTP port every site has; choose another HTTPS port",
        );
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
}

/// Client certificates and oauth2-proxy: known, one proxy per site, and
/// never undone by plain HTTP or a location in oauth2-proxy's way.
fn check_site_auth(
    p: &mut Problems,
    path: &FieldPath,
    s: &Site,
    pb: &Playbook,
    cas: &BTreeSet<String>,
    oauth2: &BTreeSet<String>,
) {
    let site_oauth2 =
        crate::playbook::site_oauth2(s).and_then(|name| pb.oauth2.iter().find(|o| o.name == name));
    if let Some(ca) = &s.client_auth {
        check_client_auth(p, path, ca, cas, site_oauth2);
        // A client certificate is a TLS thing: plain HTTP serving the
        // same locations would serve them to anyone.
        if s.http == HttpMode::Serve {
            p.add(
                path.key("http"),
                "http = \"serve\" would serve this site's locations on port 80, where no client \
                 certificate can be asked for; use http = \"redirect\" with client_auth",
            );
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
    if used.is_empty() {
        return;
    }
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

/// The site's locations: at least one, distinct usable paths, backends
/// that parse, and what each asks for defined on the site.
fn check_locations(p: &mut Problems, path: &FieldPath, s: &Site, oauth2: &BTreeSet<String>) {
    if s.locations.is_empty() {
        p.add(
            path.key("location"),
            "a site needs at least one [[site.location]]",
        );
    }
    let mut paths = BTreeSet::new();
    for (j, l) in s.locations.iter().enumerate() {
        let lp = path.item("location", j);
        if let Some(why) = names::location_path_problem(&l.path) {
            p.add(
                lp.key("path"),
                format!("{:?} is not a usable location: {why}", l.path),
            );
        } else if !paths.insert(l.path.as_str()) {
            p.add(
                lp.key("path"),
                format!("duplicate location {:?} in this site", l.path),
            );
        }
        match BackendUrl::parse(&l.proxy) {
            Err(e) => p.add(lp.key("proxy"), e.to_string()),
            Ok(url) => check_prefix_rewrite(p, &lp, &l.path, &url),
        }
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

fn check_client_auth(
    p: &mut Problems,
    path: &FieldPath,
    ca: &ClientAuth,
    cas: &BTreeSet<String>,
    oauth2: Option<&Oauth2>,
) {
    let cp = path.key("client_auth");
    if !cas.contains(&ca.ca) {
        p.add(cp.key("ca"), format!("unknown ca {:?}", ca.ca));
    }
    for (field, h) in [
        ("verify_header", &ca.verify_header),
        ("dn_header", &ca.dn_header),
    ] {
        if let Some(why) = header_problem(h) {
            p.add(cp.key(field), why);
            continue;
        }
        let oauth2_header = IdentityField::ALL
            .iter()
            .map(|f| f.header())
            .chain(
                oauth2
                    .iter()
                    .flat_map(|o| o.headers.keys().map(String::as_str)),
            )
            .find(|o| o.eq_ignore_ascii_case(h));
        if let Some(o) = oauth2_header {
            p.add(
                cp.key(field),
                format!("{o} carries the oauth2 identity; name another header"),
            );
        }
    }
    if ca.verify_header.eq_ignore_ascii_case(&ca.dn_header) {
        p.add(cp.key("dn_header"), "must differ from verify_header");
    }
}

/// nginx replaces the location prefix with the backend's path: `/x` to
/// `http://b/` sends `/x/foo` as `//foo`, and `/x/` to `http://b/app` sends
/// `/x/foo` as `/appfoo`. Both ends must agree on the trailing slash.
fn check_prefix_rewrite(p: &mut Problems, lp: &FieldPath, prefix: &str, url: &BackendUrl) {
    if url.path.is_empty() || prefix.is_empty() {
        return;
    }
    let (loc_slash, url_slash) = (prefix.ends_with('/'), url.path.ends_with('/'));
    if loc_slash != url_slash {
        let example = format!("{}{}foo", prefix, if loc_slash { "" } else { "/" });
        let sent = format!("{}{}", url.path, &example[prefix.len()..]);
        p.add(
            lp.key("proxy"),
            format!(
                "the path {:?} replaces the prefix {prefix:?}, so {example} would reach the backend as {sent}; \
                 end both with '/' or neither",
                url.path
            ),
        );
    }
}

/// A DNS name (`*.` allowed in front), an IP address, or `{hostname}`.
fn check_server_name(p: &mut Problems, path: FieldPath, name: &str) {
    if name == "{hostname}" || names::server_name_ok(name) {
        return;
    }
    p.add(path, format!("{name:?} is not a DNS name or IP address"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        for ok in [
            "10.0.0.0/8",
            "192.0.2.1",
            "::1",
            "2001:db8::/32",
            "0.0.0.0/0",
        ] {
            assert!(cidr_ok(ok), "{ok}");
        }
        for bad in [
            "10.0.0.0/33",
            "x",
            "10.0.0.0/",
            "::/129",
            "1.2.3.4/+8",
            "1.2.3.4 /8",
        ] {
            assert!(!cidr_ok(bad), "{bad}");
        }
    }

    #[test]
    fn identity_and_reserved_headers_do_not_overlap() {
        for h in names::IDENTITY_HEADERS {
            assert!(header_problem(h).is_none(), "{h}");
        }
    }
}
