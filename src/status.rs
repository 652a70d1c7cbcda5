//! `portico status`: the front end as it is, like `certbot certificates`
//! for the whole host. Each certificate as it is on disk (issuer, validity,
//! when it renews and by which rule, back-off, the last error), each site,
//! and whether nginx and the renewal daemon run. Reads only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::acme::policy::{self, Window};
use crate::acme::state::State;
use crate::facts::cert::{inspect_pem, CertInfo};
use crate::playbook::{Playbook, Source};
use crate::task::Ctx;
use crate::tasks::certificate::CertPaths;
use crate::when::rfc3339;

/// Failures in a row after which a certificate counts as failing.
pub const FAILING_AFTER: u32 = 2;

/// The front end's state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The playbook it was read against.
    pub playbook: String,
    /// When it was read (RFC 3339).
    pub now: String,
    /// nginx's unit.
    pub nginx: Service,
    /// The renewal daemon's unit (present when the playbook has ACME certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Daemon>,
    /// The ACME account's order budget and hold (src/acme/ledger.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountQueue>,
    /// Every certificate of the playbook.
    pub certificates: Vec<Certificate>,
    /// Every site of the playbook.
    pub sites: Vec<Site>,
    /// What makes the exit code non-zero: expired, missing or failing
    /// certificates, a stopped nginx.
    pub problems: Vec<String>,
}

/// A unit's state.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The unit.
    pub unit: String,
    /// Running.
    pub active: bool,
    /// systemd's ActiveState (`active`, `inactive`, `failed`, ...), or why it is unknown.
    pub state: String,
}

/// The renewal daemon.
#[derive(Debug, Clone, Serialize)]
pub struct Daemon {
    /// Its unit.
    #[serde(flatten)]
    pub service: Service,
    /// Its schedule as cron runs it.
    pub schedule: String,
    /// Its next run (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// The ACME account's queue: what it sent in the last hour, what waits.
#[derive(Debug, Clone, Serialize)]
pub struct AccountQueue {
    /// The directory URL.
    pub directory: String,
    /// New orders sent in the last hour.
    pub orders_last_hour: usize,
    /// At most this many an hour (`[acme] max_orders_per_hour`, or the
    /// CA's published limit); none when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_orders_per_hour: Option<u32>,
    /// ACME certificates due now or missing.
    pub due: usize,
    /// Of those, how many wait for a slot or the end of a hold.
    pub queued: usize,
    /// When the next order may go, if not now (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_order_at: Option<String>,
    /// The CA rate-limited the account until then (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<String>,
    /// What it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_because: Option<String>,
    /// `held_until` in Unix seconds (for the metrics).
    #[serde(skip)]
    pub held_until_unix: Option<i64>,
}

/// One certificate.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// Its `[[certificate]]` name.
    pub name: String,
    /// `acme`, `self-signed`, `ca`, `files`.
    pub source: String,
    /// The file.
    pub path: String,
    /// The names the playbook asks it to cover.
    pub names: Vec<String>,
    /// What is on disk; `None` when there is no readable certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
    /// When it renews; `None` for files portico does not renew.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal: Option<Renewal>,
    /// Failures in a row (ACME).
    pub failures: u32,
    /// No attempt before this (RFC 3339), while backing off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_off_until: Option<String>,
    /// `backing_off_until` in Unix seconds (for the metrics).
    #[serde(skip)]
    pub backing_off_until_unix: Option<i64>,
    /// What the last failed attempt said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was last obtained (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// Whether nginx serves the certificate on disk, asked over TLS on
    /// loopback (the first site using it, its first name); `None` when not
    /// asked: under --root, nginx not running, or no site served with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_matches_file: Option<bool>,
}

/// The certificate on disk.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    /// Its subjectAltNames.
    pub names: Vec<String>,
    /// Its issuer's distinguished name.
    pub issuer: String,
    /// Its serial number (`0a:1b:...`).
    pub serial: String,
    /// SHA-256 of its DER (`AB:CD:...`, as openssl prints it).
    pub fingerprint: String,
    /// Its key type (`ecdsa-p256`, `rsa2048`, ...).
    pub key: String,
    /// Valid from (RFC 3339).
    pub not_before: String,
    /// Valid until (RFC 3339).
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// Past `not_after`.
    pub expired: bool,
    /// `not_before` in Unix seconds (for the metrics).
    #[serde(skip)]
    pub not_before_unix: i64,
    /// `not_after` in Unix seconds (for the metrics).
    #[serde(skip)]
    pub not_after_unix: i64,
}

/// When and why a certificate renews.
#[derive(Debug, Clone, Serialize)]
pub struct Renewal {
    /// The moment it becomes due (RFC 3339).
    pub at: String,
    /// `ari` (the CA's suggested window) or `lifetime` (a fraction of it left).
    pub rule: String,
    /// The CA's window, for `ari`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<(String, String)>,
    /// Who renews it: `daemon` (ACME) or `apply` (made by portico).
    pub by: String,
    /// For `lifetime`: the fraction of the lifetime left when it renews.
    pub remaining_fraction: f64,
    /// Due now.
    pub due: bool,
    /// `at` in Unix seconds (for the metrics).
    #[serde(skip)]
    pub at_unix: i64,
}

/// One site.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Its name.
    pub name: String,
    /// The names it serves.
    pub server_names: Vec<String>,
    /// Its HTTPS port.
    pub port: u16,
    /// Its certificate.
    pub certificate: String,
    /// What port 80 does (`redirect`, `serve`).
    pub http: String,
    /// `path -> backend` for each location.
    pub backends: Vec<String>,
}

/// Reads the front end's state. `seed` is what the daemon draws its daily
/// minute from (the machine ID).
pub fn gather(pb: &Playbook, ctx: &Ctx, playbook: &str, seed: &str) -> Status {
    let now = ctx.clock.unix_now();
    let mut problems = Vec::new();
    let state = match State::load(ctx.root) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("renewal state: {e}"));
            State::default()
        }
    };
    let nginx = service(ctx, "nginx.service");
    if !nginx.active && ctx.live_host {
        problems.push(format!("nginx.service is not running ({})", nginx.state));
    }
    let daemon = daemon(pb, ctx, seed, now, &mut problems);
    let live = crate::tasks::generation::current(ctx.root)
        .ok()
        .flatten()
        .map(|(_, g)| g);
    let served = |site: &crate::playbook::Site| {
        live.as_ref()
            .is_some_and(|g| g.files.contains_key(&https_file(site)))
    };
    // Where nginx is asked what it serves: each certificate's first site
    // that is live.
    let mut first_site: BTreeMap<&str, &crate::playbook::Site> = BTreeMap::new();
    if ctx.live_host && nginx.active {
        for site in pb.sites.iter().filter(|s| served(s)) {
            first_site.entry(site.certificate.as_str()).or_insert(site);
        }
    }
    let presented = presented(ctx, &first_site);
    let names = crate::plan::CertificateShared::of(pb);
    let certificates: Vec<Certificate> = pb
        .certificates
        .iter()
        .map(|c| {
            let mut cert = certificate(pb, &names, c, ctx, &state, now, &mut problems);
            if let (Some(site), Some(current)) =
                (first_site.get(c.name.as_str()), cert.current.as_ref())
            {
                let answer = presented.get(&c.name).and_then(Option::as_deref);
                cert.served_matches_file = Some(served_matches(
                    site,
                    answer,
                    current,
                    &c.name,
                    &mut problems,
                ));
            }
            cert
        })
        .collect();
    let sites = sites(pb, &served, &mut problems);
    let account = account_queue(pb, ctx, &certificates, now, &mut problems);
    Status {
        playbook: playbook.to_string(),
        now: rfc3339(now),
        nginx,
        daemon,
        account,
        certificates,
        sites,
        problems,
    }
}

/// The account's queue, when the playbook has ACME certificates: a hold
/// while certificates are due is a problem (nothing renews before it
/// ends); a queue is not (it drains on its own, the daemon wakes for it).
fn account_queue(
    pb: &Playbook,
    ctx: &Ctx,
    certificates: &[Certificate],
    now: i64,
    problems: &mut Vec<String>,
) -> Option<AccountQueue> {
    let acme = pb.acme.as_ref()?;
    let due = certificates
        .iter()
        .filter(|c| c.source == "acme")
        .filter(|c| c.current.is_none() || c.renewal.as_ref().is_some_and(|r| r.due))
        .count();
    if !pb.certificates.iter().any(|c| c.source.is_acme()) {
        return None;
    }
    let ledger = match crate::acme::ledger::Ledger::load_read_only(ctx.root) {
        Ok(l) => l,
        Err(e) => {
            problems.push(format!("order ledger: {e}"));
            crate::acme::ledger::Ledger::default()
        }
    };
    let directory = crate::acme::issue::directory_url(&acme.directory);
    let limit = crate::acme::ledger::limit(acme);
    let account = ledger.accounts.get(&directory).cloned().unwrap_or_default();
    let free = account.free(now, limit);
    let next = account.next_chance(now, limit);
    let held = account.held(now);
    if let (Some(until), true) = (held, due > 0) {
        problems.push(format!(
            "the CA rate-limited the ACME account until {} ({}): {due} due certificate(s) wait",
            rfc3339(until),
            account.held_because.as_deref().unwrap_or("rateLimited")
        ));
    }
    Some(AccountQueue {
        directory,
        orders_last_hour: account.recent(now),
        max_orders_per_hour: limit,
        due,
        queued: due.saturating_sub(free),
        next_order_at: (next > now).then(|| rfc3339(next)),
        held_until: held.map(rfc3339),
        held_because: held.and(account.held_because.clone()),
        held_until_unix: held,
    })
}

/// A unit's state, as the service manager tells it.
fn service(ctx: &Ctx, name: &str) -> Service {
    match ctx.systemd.state(name) {
        // A tree under --root has no running services to ask about.
        _ if !ctx.live_host => Service {
            unit: name.into(),
            active: false,
            state: "not checked under --root".into(),
        },
        Ok(s) => Service {
            unit: name.into(),
            active: s.is_active(),
            state: s.active,
        },
        Err(e) => Service {
            unit: name.into(),
            active: false,
            state: format!("unknown ({e})"),
        },
    }
}

/// The renewal daemon, when the playbook has ACME certificates to renew.
fn daemon(
    pb: &Playbook,
    ctx: &Ctx,
    seed: &str,
    now: i64,
    problems: &mut Vec<String>,
) -> Option<Daemon> {
    if !pb.certificates.iter().any(|c| c.source.is_acme()) {
        return None;
    }
    let service = service(ctx, "portico.service");
    if !service.active && ctx.live_host {
        problems.push(format!(
            "portico.service is not running ({}): nothing renews the ACME certificates",
            service.state
        ));
    }
    Some(Daemon {
        next_run: pb.renewal.schedule.next_after(seed, now).map(rfc3339),
        schedule: pb.renewal.schedule.cron_expression(seed),
        service,
    })
}

/// A site's HTTPS server file in a generation.
fn https_file(site: &crate::playbook::Site) -> String {
    format!(
        "{}.https.conf",
        crate::playbook::names::site_file_stem(&site.id())
    )
}

/// The name a site is asked for: its first, a wildcard's with a label of
/// its own.
fn probe_name(site: &crate::playbook::Site) -> Option<String> {
    let first = site.server_names.first()?;
    Some(match first.strip_prefix("*.") {
        Some(parent) => format!("portico-probe.{parent}"),
        None => first.clone(),
    })
}

/// The certificate (DER) nginx presents for each certificate's site, by
/// certificate name; `None` where nothing answered. Asked on a few threads
/// at once: each is a TLS handshake on loopback, and a host with thousands
/// of certificates should not wait for them one by one.
fn presented(
    ctx: &Ctx,
    sites: &BTreeMap<&str, &crate::playbook::Site>,
) -> BTreeMap<String, Option<Vec<u8>>> {
    let jobs: Vec<(&str, u16, String)> = sites
        .iter()
        .filter_map(|(name, site)| Some((*name, site.listen, probe_name(site)?)))
        .collect();
    if jobs.is_empty() {
        return BTreeMap::new();
    }
    let probe = ctx.probe;
    let per_thread = jobs.len().div_ceil(PROBE_THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = jobs
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(name, port, sni)| {
                            (name.to_string(), probe.served_certificate(*port, sni))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// How many TLS handshakes `status` makes at once.
const PROBE_THREADS: usize = 8;

/// Whether `site`'s port presented (`answer`) the certificate on disk; a
/// mismatch or no answer is a problem.
fn served_matches(
    site: &crate::playbook::Site,
    answer: Option<&[u8]>,
    current: &Current,
    name: &str,
    problems: &mut Vec<String>,
) -> bool {
    let sni = probe_name(site).unwrap_or_default();
    match answer {
        Some(der) => {
            let fingerprint = crate::facts::cert::fingerprint_der(der);
            if fingerprint != current.fingerprint {
                problems.push(format!(
                    "certificate {name}: nginx serves another certificate on port {} for {sni} \
                     (SHA-256 {fingerprint}) than the file holds; `nginx -t` then a reload \
                     (or `portico apply`) puts the file in service",
                    site.listen
                ));
            }
            fingerprint == current.fingerprint
        }
        None => {
            problems.push(format!(
                "certificate {name}: nothing answered TLS on 127.0.0.1:{} for {sni}",
                site.listen
            ));
            false
        }
    }
}

/// The playbook's sites. What the live generation serves: a site whose
/// HTTPS server is not in it waits for its certificate (a first boot
/// before DNS pointed here).
fn sites(
    pb: &Playbook,
    served: &dyn Fn(&crate::playbook::Site) -> bool,
    problems: &mut Vec<String>,
) -> Vec<Site> {
    pb.sites
        .iter()
        .inspect(|s| {
            if !served(s) {
                problems.push(format!(
                    "site {}: not served over HTTPS (its certificate {} is not there yet, or apply has \
                     not run since the playbook changed)",
                    s.id(),
                    s.certificate
                ));
            }
        })
        .map(|s| Site {
            name: s.id(),
            server_names: s.server_names.clone(),
            port: s.listen,
            certificate: s.certificate.clone(),
            http: match s.http {
                crate::playbook::HttpMode::Redirect => "redirect",
                crate::playbook::HttpMode::Serve => "serve",
            }
            .into(),
            backends: s
                .locations
                .iter()
                .map(|l| format!("{} -> {}", l.path, l.proxy))
                .collect(),
        })
        .collect()
}

fn certificate(
    pb: &Playbook,
    names: &crate::plan::CertificateShared,
    c: &crate::playbook::Certificate,
    ctx: &Ctx,
    state: &State,
    now: i64,
    problems: &mut Vec<String>,
) -> Certificate {
    let paths = CertPaths::of(c);
    let info = ctx
        .root
        .read(Path::new(&paths.cert))
        .ok()
        .flatten()
        .and_then(|pem| inspect_pem(&pem));
    let remembered = state.certificates.get(&c.name);
    let failures = remembered.map_or(0, |s| s.failures);
    let current = info.as_ref().map(|i| Current {
        names: i.names.iter().cloned().collect(),
        issuer: i.issuer.clone(),
        serial: i.serial.clone(),
        fingerprint: i.fingerprint.clone(),
        key: i.key.clone(),
        not_before: rfc3339(i.not_before),
        not_after: rfc3339(i.not_after),
        days_left: (i.not_after - now).div_euclid(86_400),
        expired: i.not_after <= now,
        not_before_unix: i.not_before,
        not_after_unix: i.not_after,
    });
    match &current {
        None => problems.push(format!(
            "certificate {}: no readable certificate at {}",
            c.name,
            paths.cert.display()
        )),
        Some(cur) if cur.expired => problems.push(format!(
            "certificate {}: expired at {}",
            c.name, cur.not_after
        )),
        _ => {}
    }
    if failures >= FAILING_AFTER {
        problems.push(format!(
            "certificate {}: {failures} renewals in a row failed; last error: {}",
            c.name,
            remembered
                .and_then(|s| s.last_error.as_deref())
                .unwrap_or("?")
        ));
    }
    let renewal = info
        .as_ref()
        .and_then(|i| renewal(pb, c, i, remembered, now));
    let backing_off_until = state.next_attempt(&c.name, now).filter(|t| *t > now);
    Certificate {
        name: c.name.clone(),
        source: c.source.name().into(),
        path: paths.cert.display().to_string(),
        names: names.get(c).into_iter().collect(),
        current,
        renewal,
        failures,
        backing_off_until: backing_off_until.map(rfc3339),
        backing_off_until_unix: backing_off_until,
        last_error: remembered.and_then(|s| s.last_error.clone()),
        last_success: remembered.and_then(|s| s.last_success).map(rfc3339),
        served_matches_file: None,
    }
}

/// When and by what a certificate renews (files the operator provides
/// never do).
fn renewal(
    pb: &Playbook,
    c: &crate::playbook::Certificate,
    i: &CertInfo,
    remembered: Option<&crate::acme::state::CertState>,
    now: i64,
) -> Option<Renewal> {
    let source = &c.source;
    if matches!(source, Source::Files { .. }) {
        return None;
    }
    // As the renewal decides (src/tasks/certificate.rs): an ARI window and
    // the place drawn in it, else the lifetime spread by name (ACME).
    let window: Option<Window> = remembered
        .and_then(|s| s.ari_window)
        .filter(|_| source.is_acme());
    let jitter = match window {
        Some(_) => remembered.and_then(|s| s.jitter).unwrap_or(0.5),
        None if source.is_acme() => policy::lifetime_jitter(&c.name),
        None => 0.0,
    };
    let fraction = match window {
        Some(_) => pb.renewal.remaining_fraction,
        None => policy::spread_fraction(pb.renewal.remaining_fraction, jitter),
    };
    let at = policy::renew_at(
        i.not_before,
        i.not_after,
        pb.renewal.remaining_fraction,
        window,
        jitter,
    );
    Some(Renewal {
        at: rfc3339(at),
        rule: if window.is_some() { "ari" } else { "lifetime" }.into(),
        window: window.map(|w| (rfc3339(w.start), rfc3339(w.end))),
        by: if source.is_acme() { "daemon" } else { "apply" }.into(),
        remaining_fraction: fraction,
        due: now >= at,
        at_unix: at,
    })
}

impl Status {
    /// 1 when something needs an operator (see [`Status::problems`]), else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.problems.is_empty())
    }

    /// The text form.
    pub fn render_text(&self) -> String {
        let mut out = format!("playbook: {}\nnow:      {}\n", self.playbook, self.now);
        let running = |s: &Service| {
            if s.active {
                "running".to_string()
            } else if s.state.starts_with("not checked") {
                s.state.clone()
            } else {
                format!("NOT running ({})", s.state)
            }
        };
        out.push_str(&format!("nginx:    {}\n", running(&self.nginx)));
        if let Some(d) = &self.daemon {
            out.push_str(&format!(
                "renewal:  portico.service {}; next run {} (cron \"{}\")\n",
                running(&d.service),
                d.next_run.as_deref().unwrap_or("unknown"),
                d.schedule
            ));
        }
        if let Some(a) = &self.account {
            out.push_str(&format!(
                "account:  {} new orders in the last hour (limit {}); {} due, {} queued{}{}\n",
                a.orders_last_hour,
                a.max_orders_per_hour
                    .map_or("none".to_string(), |l| format!("{l} an hour")),
                a.due,
                a.queued,
                a.next_order_at
                    .as_deref()
                    .map_or(String::new(), |t| format!("; next order at {t}")),
                a.held_until.as_deref().map_or(String::new(), |t| format!(
                    "; HELD by the CA until {t} ({})",
                    a.held_because.as_deref().unwrap_or("rateLimited")
                )),
            ));
        }
        for c in &self.certificates {
            c.render_text(&mut out);
        }
        for s in &self.sites {
            out.push_str(&format!(
                "\nsite {} (port {}, certificate {}, port 80: {})\n",
                s.name, s.port, s.certificate, s.http
            ));
            out.push_str(&format!("  names:    {}\n", s.server_names.join(", ")));
            for b in &s.backends {
                out.push_str(&format!("  proxy:    {b}\n"));
            }
        }
        if self.problems.is_empty() {
            out.push_str("\nno problems\n");
        } else {
            out.push('\n');
            for p in &self.problems {
                out.push_str(&format!("problem: {p}\n"));
            }
        }
        out
    }
}

impl Certificate {
    /// Its lines of `portico status`.
    fn render_text(&self, out: &mut String) {
        out.push_str(&format!("\ncertificate {} ({})\n", self.name, self.source));
        out.push_str(&format!("  path:     {}\n", self.path));
        out.push_str(&format!("  names:    {}\n", self.names.join(", ")));
        match &self.current {
            None => out.push_str("  current:  MISSING\n"),
            Some(cur) => {
                out.push_str(&format!("  issuer:   {}\n", cur.issuer));
                out.push_str(&format!(
                    "  valid:    {} to {} ({})\n",
                    cur.not_before,
                    cur.not_after,
                    if cur.expired {
                        "EXPIRED".to_string()
                    } else {
                        format!("{} days left", cur.days_left)
                    }
                ));
                out.push_str(&format!("  key:      {}\n", cur.key));
            }
        }
        if let Some(r) = &self.renewal {
            let rule = match &r.window {
                Some((start, end)) => format!("inside the CA's window {start} to {end} (ARI)"),
                None => format!(
                    "when {:.0}% of its lifetime is left",
                    r.remaining_fraction * 100.0
                ),
            };
            out.push_str(&format!(
                "  renews:   {}{} by {}, {rule}\n",
                r.at,
                if r.due { " (due now)" } else { "" },
                if r.by == "daemon" {
                    "the daemon"
                } else {
                    "the next apply"
                }
            ));
        }
        if self.failures > 0 {
            out.push_str(&format!(
                "  failures: {} in a row{}\n",
                self.failures,
                self.backing_off_until
                    .as_deref()
                    .map(|t| format!(", backing off until {t}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(e) = &self.last_error {
            out.push_str(&format!("  error:    {e}\n"));
        }
        match self.served_matches_file {
            Some(true) => out.push_str("  served:   by nginx, the same as the file\n"),
            Some(false) => out.push_str("  served:   NOT the file's certificate\n"),
            None => {}
        }
    }
}
