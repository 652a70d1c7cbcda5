//! Turns a validated playbook and the host's facts into the ordered tasks.

use crate::paths;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::facts::Facts;
use crate::facts::FirewallBackend as Active;
use crate::manifest::{Entry, Manifest};
use crate::nginx::default_server::CatchAll;
use crate::nginx::generation::{Render, Text};
use crate::nginx::{profile, render};
use crate::owned::{Owned, Thing};
use crate::playbook::{site_oauth2, FirewallBackend, Playbook, Profile, Site};
use crate::task::{After, Handler, Task, TaskId};
use crate::tasks::certificate::{CertPaths, CertificateTask, Renewal};
use crate::tasks::file::FileTask;
use crate::tasks::firewall::nftables::{NftBootTask, NftCheckTask};
use crate::tasks::firewall::{Backend, FirewallTask};
use crate::tasks::generation::{CatchAllSpec, GenFile, GenerationTask};
use crate::tasks::packages::PackagesTask;
use crate::tasks::refused::RefusedTask;
use crate::tasks::service::ServiceTask;
use crate::tls::dhparam;

/// The package task, what almost everything waits for.
fn nginx_package() -> TaskId {
    TaskId::Packages(vec!["nginx".into()])
}

/// The tasks that bring the host to what the playbook describes, in order
/// (without installing the playbook or pruning: see [`full`]).
pub fn plan(pb: &Playbook, facts: &Facts, now: i64) -> Vec<Box<dyn Task>> {
    full(&Arc::new(pb.clone()), facts, now, None, None).tasks
}

/// What `apply` installs besides the configuration: the playbook itself
/// (which `renew`, `status` and the daemon read), and with ACME
/// certificates the renewal daemon's unit for this binary.
pub struct Install<'a> {
    /// The playbook's text, as applied.
    pub text: &'a str,
    /// This binary, as the kernel names it.
    pub exe: &'a std::path::Path,
}

/// What portico made before, and how to dispose of what is no longer asked for.
pub struct Converge<'a> {
    /// The manifest (or what a pre-manifest portico left).
    pub manifest: &'a Manifest,
    /// This run's archive directory.
    pub archive: PathBuf,
    /// Delete instead of archiving (`remove --purge`).
    pub purge: bool,
    /// Why things go, for the report (`no longer in the playbook`).
    pub reason: &'static str,
}

/// A plan: the tasks, what they own, and what they prune.
pub struct Plan {
    /// The tasks, in order.
    pub tasks: Vec<Box<dyn Task>>,
    /// Every thing the tasks own, with the task that makes it.
    pub wanted: Vec<(TaskId, Owned)>,
    /// The manifest's entries being pruned, with the task that prunes each.
    pub pruned: Vec<(TaskId, Entry)>,
    /// `remove --purge`: the state directory goes, and no manifest is
    /// written after the run (nothing of portico's is left to list).
    pub purge: bool,
}

/// The tasks that own things, paired with what they own.
fn owned_by<'t>(tasks: impl Iterator<Item = &'t Box<dyn Task>>) -> Vec<(TaskId, Owned)> {
    let mut owned: Vec<_> = tasks
        .flat_map(|t| t.owns().into_iter().map(move |o| (t.id(), o)))
        .collect();
    // Tens of thousands at 10,000 sites: the room doubling left goes.
    owned.shrink_to_fit();
    owned
}

/// Prune tasks before and after the gate, and which entry each prunes.
struct Prunes {
    before_gate: Vec<Box<dyn Task>>,
    after_gate: Vec<Box<dyn Task>>,
    pruned: Vec<(TaskId, Entry)>,
}

/// The prune tasks for everything `converge`'s manifest has that `wanted`
/// does not, and which entry each prunes.
fn prunes(converge: &Converge, wanted: &[(TaskId, Owned)], facts: &Facts, gate: &TaskId) -> Prunes {
    let unwanted = crate::manifest::unwanted(converge.manifest, wanted.iter().map(|(_, o)| o));
    let pruned = unwanted
        .iter()
        .map(|e| (TaskId::Prune(e.thing.clone()), e.clone()))
        .collect();
    let (before_gate, after_gate) = crate::tasks::prune::tasks(
        unwanted,
        &converge.archive,
        converge.purge,
        facts.distro.family,
        converge.reason,
        gate,
    );
    Prunes {
        before_gate,
        after_gate,
        pruned,
    }
}

/// The gate and the start: the playbook's nginx configuration written as
/// a new generation, `nginx -t` with it in place, and made live in one
/// rename (a configuration nginx rejects never is); then nginx started
/// and enabled, so a first start already reads it.
fn gate(nginx: NginxSpec, facts: &Facts) -> Vec<Box<dyn Task>> {
    vec![
        nginx.task(),
        After::new(
            ServiceTask {
                unit: "nginx.service".into(),
                enable: facts.systemd,
                owner: None,
            },
            vec![nginx_package(), TaskId::NginxConfig],
        ),
    ]
}

/// What the playbook's nginx configuration is made of, decided on the
/// host by [`GenerationTask`].
pub struct NginxSpec {
    /// Every file rendered, with what it needs on disk.
    pub files: Vec<GenFile>,
    /// The catch-all servers (`None` without sites).
    pub catch_all: Option<CatchAllSpec>,
    /// The renewal daemon's unit, when it is installed.
    pub daemon_unit: Option<String>,
}

impl NginxSpec {
    /// The task that makes it live.
    pub fn task(self) -> Box<After<GenerationTask>> {
        After::new(
            GenerationTask {
                files: self.files,
                catch_all: self.catch_all,
                daemon_unit: self.daemon_unit,
                dump: Default::default(),
            },
            vec![nginx_package()],
        )
    }
}

/// The playbook's nginx configuration alone, as one task: what a renewal
/// runs once a certificate a site was waiting for has arrived.
pub fn nginx_configuration(pb: &Arc<Playbook>, facts: &Facts) -> Box<After<GenerationTask>> {
    nginx_spec(pb, facts).task()
}

/// The whole run for `apply`: the configuration, the prunes of what the
/// manifest has and the playbook no longer asks for (before the gate, so
/// `nginx -t` sees the result and a rejection rolls them back too), the
/// gate, and what is installed besides.
pub fn full(
    pb: &Arc<Playbook>,
    facts: &Facts,
    now: i64,
    install: Option<Install>,
    converge: Option<Converge>,
) -> Plan {
    let (mut tasks, mut nginx) = configuration(pb, facts, now);
    // The daemon's sandbox, checked against what nginx opens (see
    // crate::tasks::daemon_sandbox).
    nginx.daemon_unit = install
        .as_ref()
        .and_then(|i| daemon_unit_text(pb, facts, i.exe));
    let installed = install
        .map(|i| {
            let restart = daemon_restart_reason(pb, converge.as_ref());
            installed_tasks(pb, i.text, i.exe, facts, restart)
        })
        .unwrap_or_default();
    let gate = gate(nginx, facts);
    let mut wanted = owned_by(tasks.iter().chain(&gate).chain(&installed));
    // The metrics file is written after the run (it tells how the run
    // went), but it is wanted like any file: a path portico did not make
    // is refused, and an old path is pruned.
    if let (true, Some(file)) = (!installed.is_empty(), pb.metrics.file()) {
        wanted.push((TaskId::File(file.to_path_buf()), metrics_file(file)));
    }
    let p = match &converge {
        Some(c) => prunes(c, &wanted, facts, &TaskId::NginxConfig),
        None => Prunes {
            before_gate: Vec::new(),
            after_gate: Vec::new(),
            pruned: Vec::new(),
        },
    };
    tasks.extend(p.before_gate);
    tasks.extend(gate);
    tasks.extend(installed);
    tasks.extend(p.after_gate);
    Plan {
        tasks,
        wanted,
        pruned: p.pruned,
        purge: false,
    }
}

/// The metrics file, as the manifest owns it.
fn metrics_file(file: &std::path::Path) -> Owned {
    Owned::thing(Thing::file(file), crate::owned::METRICS_OWNER)
}

/// `portico remove`: everything in the manifest pruned, the gate (when
/// nginx is there to ask), and with `purge` portico's own directories.
/// Without `purge` the metrics file stays (rewritten after the run, it
/// says how the removal went); with it, it goes too.
pub fn removal(facts: &Facts, converge: Converge) -> Plan {
    let keep: Vec<(TaskId, Owned)> = if converge.purge {
        Vec::new()
    } else {
        converge
            .manifest
            .entries
            .iter()
            .filter(|e| e.owner == crate::owned::METRICS_OWNER)
            .filter_map(|e| e.thing.path())
            .map(|p| (TaskId::File(p.to_path_buf()), metrics_file(p)))
            .collect()
    };
    let p = prunes(&converge, &keep, facts, &TaskId::NginxTest);
    let pruned = p.pruned;
    let mut tasks = p.before_gate;
    if facts.nginx.installed {
        // nginx -t only: remove does not start nginx.
        let reads = tasks.iter().map(|t| t.id()).collect();
        tasks.push(After::new(
            crate::tasks::nginx_test::NginxTest { reads },
            vec![nginx_package()],
        ));
    }
    tasks.extend(p.after_gate);
    if converge.purge {
        // Only once everything else went: a prune that failed leaves the
        // manifest (and what it lists) in place.
        let mut after = vec![TaskId::NginxTest];
        after.extend(pruned.iter().map(|(id, _)| id.clone()));
        tasks.push(After::new(
            crate::tasks::prune::PurgeTask {
                // portico's own directories; /etc/portico is the
                // operator's too (a TSIG key, the package's README): only
                // what the manifest lists of it went, with the prunes above.
                dirs: [paths::STATE_DIR, paths::CERT_DIR]
                    .map(PathBuf::from)
                    .to_vec(),
            },
            after,
        ));
    }
    Plan {
        tasks,
        wanted: Vec::new(),
        pruned,
        purge: converge.purge,
    }
}

/// The configuration: packages, firewall, CAs, certificates, and what
/// the nginx generation is made of.
fn configuration(pb: &Arc<Playbook>, facts: &Facts, now: i64) -> (Vec<Box<dyn Task>>, NginxSpec) {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let el7 = matches!(facts.distro.id.as_str(), "centos" | "rhel")
        && facts.distro.version.split('.').next() == Some("7");
    tasks.push(Box::new(PackagesTask {
        packages: vec!["nginx".into()],
        manager: facts.package_manager,
        needs_epel: el7,
    }));
    tasks.extend(firewall(pb, facts));
    tasks.extend(selinux(pb, facts));

    for ca in &pb.cas {
        tasks.push(Box::new(crate::tasks::ca::CaTask {
            name: ca.name.clone(),
            days: ca.days,
        }));
    }

    let needs_nginx = vec![nginx_package()];
    if pb.tls.profile == Profile::Compat {
        let task: Box<dyn Task> = if pb.tls.generate_dhparam {
            After::new(
                crate::tasks::dhparam::GeneratedDhparam {
                    group: pb.tls.dhparam,
                },
                needs_nginx.clone(),
            )
        } else {
            After::new(
                FileTask {
                    path: PathBuf::from(paths::DHPARAM),
                    content: dhparam::rfc7919_pem(pb.tls.dhparam).as_bytes().to_vec(),
                    mode: 0o644,
                    dir_mode: 0o755,
                    notify: vec![Handler::ReloadNginx],
                    owner: "tls".into(),
                },
                needs_nginx.clone(),
            )
        };
        tasks.push(task);
    }

    // Before a certificate is asked of an ACME server over HTTP-01, nginx
    // must answer challenges for its names on port 80 (DNS-01 needs
    // nothing from nginx: its port 80 may be closed).
    let shared = CertificateShared::of(pb);
    let acme_names: Vec<String> = pb
        .certificates
        .iter()
        .filter(|c| c.source.challenge() == Some(&crate::playbook::Challenge::Http01))
        .flat_map(|c| shared.get(c))
        .collect();
    if !acme_names.is_empty() {
        tasks.push(After::new(
            crate::tasks::challenge::ChallengeServed {
                names: acme_names,
                webroot: webroot(pb).to_string(),
            },
            needs_nginx.clone(),
        ));
    }
    tasks.extend(pb.certificates.iter().map(|c| {
        Box::new(certificate_task(pb, &shared, c, now, Renewal::default())) as Box<dyn Task>
    }));

    (tasks, nginx_spec(pb, facts))
}

/// Every nginx file of the playbook with what it needs, and the catch-all.
/// A site's files are kept as how to render them, not their text.
fn nginx_spec(pb: &Arc<Playbook>, facts: &Facts) -> NginxSpec {
    let shared = Arc::new(SiteSource::of(pb, facts));
    let mut files: Vec<GenFile> = Vec::with_capacity(4 + 2 * pb.sites.len());
    files.extend(snippets(pb, &shared).into_iter().map(|f| GenFile {
        rel: f.rel,
        content: f.content.into(),
        needs: Vec::new(),
        owner: "nginx snippets".to_string(),
    }));
    let certs: std::collections::HashMap<&str, usize> = pb
        .certificates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    for (i, site) in pb.sites.iter().enumerate() {
        let Some(&cert) = certs.get(site.certificate.as_str()) else {
            continue; // validation guarantees it exists
        };
        let owner = format!("site {}", site.id());
        files.extend([false, true].map(|https| GenFile {
            rel: site_file(site, https),
            content: Text::Rendered(Arc::new(LazySiteFile {
                pb: Arc::clone(pb),
                shared: Arc::clone(&shared),
                site: i,
                cert,
                https,
            })),
            needs: if https {
                https_needs(site, &pb.certificates[cert])
            } else {
                Vec::new()
            },
            owner: owner.clone(),
        }));
    }
    let ports = catch_alls(pb);
    let catch_all = (!ports.is_empty()).then(|| CatchAllSpec {
        ports,
        target: target(facts),
    });
    NginxSpec {
        files,
        catch_all,
        daemon_unit: None,
    }
}

/// Where ACME HTTP-01 challenges are answered from.
pub fn webroot(pb: &Playbook) -> &str {
    pb.acme
        .as_ref()
        .map_or(paths::DEFAULT_WEBROOT, |a| a.webroot.as_str())
}

/// What the playbook has the renewal daemon write beyond the shipped unit's
/// paths: a webroot outside portico's state directory, a metrics file
/// outside node_exporter's usual directory.
fn daemon_writes(pb: &Playbook) -> Vec<String> {
    let web = webroot(pb);
    let metrics = pb.metrics.file().and_then(|f| f.parent());
    (!std::path::Path::new(web).starts_with(paths::STATE_DIR))
        .then(|| web.to_string())
        .into_iter()
        .chain(
            metrics
                .filter(|d| *d != std::path::Path::new(paths::NODE_EXPORTER_TEXTFILE_DIR))
                .map(|d| d.display().to_string()),
        )
        .collect()
}

/// Why a running daemon must restart for this playbook, if it must: the
/// metrics file is new to it (not in the manifest), so its directory may
/// have appeared since the daemon's sandbox was made.
fn daemon_restart_reason(pb: &Playbook, converge: Option<&Converge>) -> Option<(PathBuf, String)> {
    let file = pb.metrics.file()?;
    let recorded = converge?.manifest.get(&Thing::file(file)).is_some();
    (!recorded).then(|| {
        (
            file.parent().unwrap_or(std::path::Path::new("/")).into(),
            format!(
                "its sandbox may predate the metrics file {}, which it could not write then",
                file.display()
            ),
        )
    })
}

/// The playbook, installed; with ACME certificates the renewal daemon: its
/// unit (naming this binary), enabled and running. A changed playbook
/// reaches a running daemon through SIGHUP.
fn installed_tasks(
    pb: &Playbook,
    playbook_text: &str,
    exe: &std::path::Path,
    facts: &Facts,
    restart: Option<(PathBuf, String)>,
) -> Vec<Box<dyn Task>> {
    let daemon = facts.systemd && pb.certificates.iter().any(|c| c.source.is_acme());
    let playbook = FileTask {
        path: PathBuf::from(paths::INSTALLED_PLAYBOOK),
        content: playbook_text.as_bytes().to_vec(),
        mode: 0o600,
        dir_mode: 0o700,
        notify: if daemon {
            vec![Handler::ReloadPortico]
        } else {
            Vec::new()
        },
        owner: "playbook".into(),
    };
    // Installed once nginx accepted what it describes.
    let mut tasks: Vec<Box<dyn Task>> = vec![After::new(playbook, vec![TaskId::NginxConfig])];
    if !daemon {
        return tasks;
    }
    let writable = daemon_writes(pb);
    let mut after = vec![TaskId::File(paths::INSTALLED_PLAYBOOK.into())];
    // A package's unit that names this binary is used as it is (a unit of
    // portico's own in /etc from before the package is pruned).
    let packaged = crate::tasks::daemon_unit::packaged_unit_fits(
        facts.packaged_unit.as_deref(),
        exe,
        &writable,
        facts.systemd_version,
    );
    if !packaged {
        tasks.push(Box::new(crate::tasks::daemon_unit::DaemonUnitTask {
            exe: exe.to_path_buf(),
            writable,
            systemd: facts.systemd_version,
        }));
        after.push(TaskId::File(paths::DAEMON_UNIT.into()));
    }
    // Before the service task: only a daemon that ran before this apply
    // is restarted (one started below gets its sandbox whole).
    if let Some((dir, why)) = restart {
        tasks.push(After::new(
            crate::tasks::daemon_restart::DaemonRestartTask { dir, why },
            after.clone(),
        ));
    }
    tasks.push(After::new(
        ServiceTask {
            unit: "portico.service".into(),
            enable: true,
            owner: Some("daemon".into()),
        },
        after,
    ));
    tasks
}

/// The renewal daemon's unit as it will be installed (rendered for this
/// binary, or the package's), when the playbook has one.
fn daemon_unit_text(pb: &Playbook, facts: &Facts, exe: &std::path::Path) -> Option<String> {
    if !(facts.systemd && pb.certificates.iter().any(|c| c.source.is_acme())) {
        return None;
    }
    let writable = daemon_writes(pb);
    if crate::tasks::daemon_unit::packaged_unit_fits(
        facts.packaged_unit.as_deref(),
        exe,
        &writable,
        facts.systemd_version,
    ) {
        return facts.packaged_unit.clone();
    }
    crate::tasks::daemon_unit::render_for(
        &exe.display().to_string(),
        &writable,
        facts.systemd_version,
    )
    .ok()
}

/// The names a certificate must cover: its own list, or every server name
/// of the sites using it.
pub fn certificate_names(pb: &Playbook, c: &crate::playbook::Certificate) -> BTreeSet<String> {
    names_from(c, || pb.sites.iter().filter(|s| s.certificate == c.name))
}

/// `c`'s own list, else the server names of `sites` (those using it).
fn names_from<'s, I: Iterator<Item = &'s Site>>(
    c: &crate::playbook::Certificate,
    sites: impl FnOnce() -> I,
) -> BTreeSet<String> {
    match &c.names {
        Some(n) => n.iter().cloned().collect(),
        None => sites()
            .flat_map(|s| s.server_names.iter().cloned())
            .collect(),
    }
}

/// What every certificate of a playbook is planned from, gathered once:
/// the sites by certificate, for [`certificate_names`] (scanned again for
/// each, 10,000 certificates without `names` would mean 100 million
/// comparisons), and `[acme]` and the `[[dns]]` providers, which the tasks
/// share rather than each holding a copy.
pub struct CertificateShared<'p> {
    by_certificate: std::collections::HashMap<&'p str, Vec<&'p Site>>,
    acme: Option<Arc<crate::playbook::Acme>>,
    dns: Vec<Arc<crate::playbook::Dns>>,
}

impl<'p> CertificateShared<'p> {
    /// The sites of `pb` by the certificate each uses; its `[acme]` and
    /// `[[dns]]`.
    pub fn of(pb: &'p Playbook) -> Self {
        let mut by_certificate = std::collections::HashMap::<&str, Vec<&Site>>::new();
        for s in &pb.sites {
            by_certificate.entry(&s.certificate).or_default().push(s);
        }
        CertificateShared {
            by_certificate,
            acme: pb.acme.clone().map(Arc::new),
            dns: pb.dns.iter().cloned().map(Arc::new).collect(),
        }
    }

    /// The names certificate `c` is for.
    pub fn get(&self, c: &crate::playbook::Certificate) -> BTreeSet<String> {
        names_from(c, || {
            self.by_certificate
                .get(c.name.as_str())
                .into_iter()
                .flatten()
                .copied()
        })
    }
}

/// The task that keeps one certificate right (`renewal`: how a renewal run
/// treats it).
pub fn certificate_task(
    pb: &Playbook,
    shared: &CertificateShared,
    c: &crate::playbook::Certificate,
    now: i64,
    renewal: Renewal,
) -> CertificateTask {
    CertificateTask {
        name: c.name.clone(),
        source: c.source.clone(),
        names: shared.get(c),
        key: c.key,
        remaining_fraction: pb.renewal.remaining_fraction,
        paths: CertPaths::of(c),
        now,
        acme: shared.acme.clone(),
        dns: match c.source.challenge() {
            Some(crate::playbook::Challenge::Dns01 { dns }) => {
                shared.dns.iter().find(|d| &d.name == dns).cloned()
            }
            _ => None,
        },
        renewal,
    }
}

/// The firewall tasks for the playbook's choice (`auto`: the active one):
/// What SELinux must allow for this playbook (nothing where it is off):
/// before any certificate is ordered, the webroot's label; before nginx
/// starts, its ports.
fn selinux(pb: &Playbook, facts: &Facts) -> Option<Box<dyn Task>> {
    if facts.selinux == crate::facts::selinux::Mode::Disabled {
        return None;
    }
    let mut ports: Vec<u16> = std::iter::once(80)
        .chain(pb.sites.iter().map(|s| s.listen))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let http01 = pb
        .certificates
        .iter()
        .any(|c| c.source.challenge() == Some(&crate::playbook::Challenge::Http01));
    let relabel: Vec<String> = vec![paths::NGINX_DIR.into(), paths::CERT_DIR.into()];
    let mut relabel_files = Vec::new();
    for c in &pb.certificates {
        if let crate::playbook::Source::Files {
            cert_file,
            key_file,
        } = &c.source
        {
            // The files themselves, never their directory: a key in `/`
            // or `/etc` must not relabel a whole tree.
            relabel_files.extend([cert_file.clone(), key_file.clone()]);
        }
    }
    relabel_files.sort();
    relabel_files.dedup();
    Some(After::new(
        crate::tasks::selinux::SelinuxTask {
            ports,
            webroot: http01.then(|| webroot(pb).to_string()),
            proxies: !pb.sites.is_empty(),
            relabel,
            relabel_files,
        },
        vec![nginx_package()],
    ))
}

/// what makes the rules last (the iptables restore package; the nftables
/// boot file and its check), then the rules.
fn firewall(pb: &Playbook, facts: &Facts) -> Vec<Box<dyn Task>> {
    let backend = match pb.firewall.backend {
        FirewallBackend::None => return Vec::new(),
        FirewallBackend::Ufw => Backend::Ufw,
        FirewallBackend::Firewalld => Backend::Firewalld,
        FirewallBackend::Iptables => Backend::Iptables,
        FirewallBackend::Nftables => Backend::Nftables,
        FirewallBackend::Auto => match facts.firewall {
            Active::Ufw => Backend::Ufw,
            Active::Firewalld => Backend::Firewalld,
            Active::Iptables => Backend::Iptables,
            Active::Nftables => Backend::Nftables,
            // No active firewall: nothing blocks the ports.
            Active::None => return Vec::new(),
            Active::NftablesUnmanaged => {
                return vec![Box::new(RefusedTask {
                    name: "firewall",
                    reason: "an nftables ruleset drops input, but nftables.service did not load it, so \
                             portico cannot tell how it comes back at boot; load it from \
                             /etc/nftables.conf (systemctl enable --now nftables), or set [firewall] \
                             backend = \"nftables\" with persist = false, or open the ports yourself \
                             and set backend = \"none\"",
                })]
            }
        },
    };
    let ports = pb.firewall_ports();
    let persist = pb.firewall.persist;
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let mut after = Vec::new();
    match backend {
        Backend::Iptables if persist && facts.systemd => {
            let package = PackagesTask {
                packages: vec![
                    crate::tasks::firewall::persistence_package(facts.distro.family).into(),
                ],
                manager: facts.package_manager,
                needs_epel: false,
            };
            after.push(package.id());
            tasks.push(Box::new(package));
        }
        Backend::Nftables if persist => {
            let boot = NftBootTask {
                ports: ports.clone(),
            };
            let check = NftCheckTask {
                after: vec![boot.id()],
            };
            after.push(check.id());
            tasks.push(Box::new(boot));
            tasks.push(Box::new(check));
        }
        _ => {}
    }
    tasks.push(After::new(
        FirewallTask {
            backend,
            ports,
            enable: pb.firewall.enable,
            family: facts.distro.family,
            persist,
        },
        after,
    ));
    tasks
}

/// One nginx file portico writes, inside the generation.
pub struct Rendered {
    /// Its path inside the generation (`portico-web.https.conf`,
    /// `snippets/portico-tls.conf`).
    pub rel: String,
    /// Its text.
    pub content: String,
}

impl Rendered {
    /// Where nginx reads it, through the live link.
    pub fn path(&self) -> String {
        format!("{}/{}", paths::NGINX_LIVE, self.rel)
    }
}

/// The files that must be on disk for a site's HTTPS server to be served:
/// its certificate and key, and its client CA.
fn https_needs(site: &Site, cert: &crate::playbook::Certificate) -> Vec<PathBuf> {
    let paths = CertPaths::of(cert);
    let mut needs = vec![paths.cert, paths.key];
    if let Some(a) = &site.client_auth {
        let (cert, crl) = crate::tls::ca::ca_files(&a.ca);
        needs.extend([cert, crl]);
    }
    needs
}

/// What the nginx target looks like, from the facts.
pub fn target(facts: &Facts) -> render::Target {
    render::Target {
        layout: facts.nginx.layout,
        version: facts.nginx.version(),
        http2: facts.nginx.http2 || facts.nginx.version.is_none(),
        openssl: facts
            .nginx
            .openssl
            .as_deref()
            .and_then(crate::facts::Version::parse),
    }
}

/// Every nginx file of the playbook, rendered (pure: the golden tests and
/// the plan use exactly this).
pub fn rendered(pb: &Playbook, facts: &Facts) -> Vec<Rendered> {
    let shared = SiteSource::of(pb, facts);
    let mut files = snippets(pb, &shared);
    let certs = pb.certificates_by_name();
    for site in &pb.sites {
        let Some(cert) = certs.get(site.certificate.as_str()) else {
            continue; // validation guarantees it exists
        };
        files.extend([false, true].map(|https| Rendered {
            rel: site_file(site, https),
            content: site_text(pb, &shared, site, cert, https),
        }));
    }
    files
}

/// The snippets every site includes, and the http-level settings.
fn snippets(pb: &Playbook, shared: &SiteSource) -> Vec<Rendered> {
    let dhparam_path = (pb.tls.profile == Profile::Compat).then_some(paths::DHPARAM);
    let file = |rel: &str, content: String| Rendered {
        rel: rel.to_string(),
        content,
    };
    vec![
        file(
            render::Snippets::TLS,
            render::tls_snippet(&profile::directives(
                pb.tls.profile,
                dhparam_path,
                shared.target.openssl,
            )),
        ),
        file(render::Snippets::PROXY, render::proxy_snippet()),
        file("portico-http.conf", render::http_snippet()),
        file(
            render::Snippets::IDENTITY,
            render::identity_snippet(&shared.identity_headers),
        ),
    ]
}

/// What every site's files are rendered with, worked out once for all
/// sites: the nginx rendered for, and the playbook's identity headers.
struct SiteSource {
    target: render::Target,
    identity_headers: Vec<String>,
}

impl SiteSource {
    fn of(pb: &Playbook, facts: &Facts) -> Self {
        SiteSource {
            target: target(facts),
            identity_headers: pb.identity_headers(),
        }
    }
}

/// A site's file inside the generation: its HTTP or its HTTPS servers.
fn site_file(site: &Site, https: bool) -> String {
    let suffix = if https { "https" } else { "http" };
    format!(
        "{}.{suffix}.conf",
        crate::playbook::names::site_file_stem(&site.id())
    )
}

/// The text of a site's HTTP (port 80) or HTTPS file.
fn site_text(
    pb: &Playbook,
    shared: &SiteSource,
    site: &Site,
    cert: &crate::playbook::Certificate,
    https: bool,
) -> String {
    let paths = CertPaths::of(cert);
    let (cert_path, key_path) = (
        paths.cert.display().to_string(),
        paths.key.display().to_string(),
    );
    let client_ca = site.client_auth.as_ref().map(|a| {
        let (cert, crl) = crate::tls::ca::ca_files(&a.ca);
        (cert.display().to_string(), crl.display().to_string())
    });
    let oauth2 = site_oauth2(site).and_then(|name| pb.oauth2.iter().find(|o| o.name == name));
    let input = render::SiteInput {
        site,
        cert: &cert_path,
        key: &key_path,
        client_ca,
        oauth2,
        webroot: webroot(pb),
        identity_headers: &shared.identity_headers,
        trusted_proxies: &pb.proxy.trusted_proxies,
        backend_ca: pb.proxy.backend_ca.as_deref(),
    };
    if https {
        render::site_https(&input, &shared.target)
    } else {
        render::site_http(&input, &shared.target)
    }
}

/// One of a site's two files in a plan, rendered each time it is read
/// (see [`Text`]): by index into the shared playbook.
struct LazySiteFile {
    pb: Arc<Playbook>,
    shared: Arc<SiteSource>,
    site: usize,
    cert: usize,
    https: bool,
}

impl Render for LazySiteFile {
    fn render(&self) -> String {
        let pb = &*self.pb;
        site_text(
            pb,
            &self.shared,
            &pb.sites[self.site],
            &pb.certificates[self.cert],
            self.https,
        )
    }
}

/// The catch-all server for every port the playbook's sites listen on:
/// 80 and each HTTPS port. A TLS port where a site serves an IP address
/// (clients send no SNI for those) completes handshakes with that site's
/// certificate instead of refusing them.
pub fn catch_alls(pb: &Playbook) -> Vec<CatchAll> {
    if pb.sites.is_empty() {
        return Vec::new();
    }
    let mut out = vec![CatchAll {
        port: 80,
        tls: false,
        v4: true,
        v6: true,
        cert: None,
    }];
    for site in &pb.sites {
        let port = site.listen;
        if out.iter().any(|c| c.port == port) {
            continue;
        }
        let cert = pb
            .sites
            .iter()
            .filter(|s| s.listen == site.listen)
            .find(|s| {
                s.server_names
                    .iter()
                    .any(|n| n.parse::<core::net::IpAddr>().is_ok())
            })
            .and_then(|s| pb.certificates.iter().find(|c| c.name == s.certificate))
            .map(|c| {
                let p = CertPaths::of(c);
                (p.cert.display().to_string(), p.key.display().to_string())
            });
        out.push(CatchAll {
            port,
            tls: true,
            v4: true,
            v6: true,
            cert,
        });
    }
    out
}

/// The catch-all file as it renders when `taken` sockets already have a
/// default server outside portico (what the task decides on the host):
/// its path inside the generation and its text.
pub fn catch_all_file(
    pb: &Playbook,
    facts: &Facts,
    taken: &BTreeSet<crate::facts::nginx_conf::Socket>,
) -> Option<(String, String)> {
    use crate::facts::nginx_conf::Family;
    let t = target(facts);
    let ports: Vec<CatchAll> = catch_alls(pb)
        .into_iter()
        .map(|c| CatchAll {
            v4: !taken.contains(&(Family::V4, c.port)),
            v6: !taken.contains(&(Family::V6, c.port)),
            ..c
        })
        .collect();
    if ports.is_empty() {
        return None;
    }
    let throwaway = crate::tasks::default_server::throwaway_paths();
    let (cert, key) = (
        throwaway.cert.display().to_string(),
        throwaway.key.display().to_string(),
    );
    let content = crate::nginx::default_server::render(
        &ports,
        &t,
        (!t.reject_handshake()).then_some((cert.as_str(), key.as_str())),
    );
    Some((crate::tasks::default_server::FILE.to_string(), content))
}

/// The whole generation the playbook makes when every certificate is
/// there (what tests materialize and serve).
pub fn generation(
    pb: &Playbook,
    facts: &Facts,
    taken: &BTreeSet<crate::facts::nginx_conf::Socket>,
) -> crate::nginx::generation::Generation {
    let mut files: std::collections::BTreeMap<String, Text> = rendered(pb, facts)
        .into_iter()
        .map(|r| (r.rel, r.content.into()))
        .collect();
    files.extend(
        catch_all_file(pb, facts, taken)
            .into_iter()
            .map(|(rel, text)| (rel, text.into())),
    );
    crate::nginx::generation::Generation::new(files)
}

/// Said once on a live host when `backend = "auto"` finds no active
/// firewall: nothing is opened, which an operator should know rather than
/// infer from a missing report line.
pub fn firewall_notice(pb: &Playbook, facts: &Facts) -> Option<String> {
    (pb.firewall.backend == FirewallBackend::Auto && facts.firewall == Active::None).then(|| {
        "note: no active firewall (ufw, firewalld, iptables rules or an nftables ruleset) on this \
         host, so no ports are opened; name one in [firewall] backend (with enable = true for ufw \
         or firewalld) to have portico set it up"
            .to_string()
    })
}

/// nginx versions that resume TLS sessions across virtual hosts sharing a
/// port, so a client certificate checked by one site is trusted by another
/// (CVE-2025-23419): before 1.26.3, and 1.27.0 to 1.27.3. Unknown counts.
fn session_resumption_bug(version: Option<crate::facts::Version>) -> bool {
    use crate::facts::Version;
    version.is_none_or(|v| {
        v < Version(1, 26, 3) || (Version(1, 27, 0)..Version(1, 27, 4)).contains(&v)
    })
}

/// Warnings about the plan that do not stop it.
pub fn warnings(pb: &Playbook, facts: &Facts) -> Vec<String> {
    let mut w = Vec::new();
    let daemon = facts.systemd && pb.certificates.iter().any(|c| c.source.is_acme());
    if let (true, Some(v)) = (daemon, facts.systemd_version) {
        let lacks = crate::tasks::daemon_unit::weaker_under(v);
        if !lacks.is_empty() {
            w.push(format!(
                "systemd {v} does not know some of the renewal daemon's sandbox ({}): its unit \
                 leaves them out, and the daemon runs with less protection here",
                lacks.join(", ")
            ));
        }
    }
    let old = session_resumption_bug(facts.nginx.version());
    for site in pb.sites.iter().filter(|s| s.client_auth.is_some()) {
        let shared = pb
            .sites
            .iter()
            .any(|o| !std::ptr::eq(o, site) && o.listen == site.listen);
        if shared && old {
            w.push(format!(
                "site {}: client certificates on port {} shared with other sites; nginx before 1.26.3 \
                 (and 1.27.0-1.27.3) can resume TLS sessions across virtual hosts (CVE-2025-23419): \
                 give this site its own listen port",
                site.id(),
                site.listen
            ));
        }
    }
    for site in pb
        .sites
        .iter()
        .filter(|s| s.http == crate::playbook::HttpMode::Serve && site_oauth2(s).is_some())
    {
        w.push(format!(
            "site {}: http = \"serve\" with oauth2 sends the session cookie in cleartext on port 80, \
             and oauth2-proxy's default Secure cookie is never sent there (users cannot sign in over \
             plain HTTP); prefer http = \"redirect\"",
            site.id()
        ));
    }
    if pb.tls.profile == Profile::Compat {
        let used: std::collections::HashSet<&str> =
            pb.sites.iter().map(|s| s.certificate.as_str()).collect();
        for c in pb.certificates.iter().filter(|c| {
            matches!(
                c.key,
                crate::playbook::KeyType::EcdsaP256 | crate::playbook::KeyType::EcdsaP384
            ) && used.contains(c.name.as_str())
        }) {
            w.push(format!(
                "certificate {}: the compat profile's DHE suites are DHE-RSA and need an RSA key; \
                 with key = \"{}\" old clients that only speak DHE still cannot connect \
                 (use key = \"rsa2048\" for them)",
                c.name,
                c.key.name()
            ));
        }
    }
    w
}
