//! Turns a validated playbook and the host's facts into the ordered tasks.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::engine::{Handler, Task};
use crate::facts::FirewallBackend as Active;
use crate::facts::{Facts, Layout};
use crate::nginx::{profile, render};
use crate::playbook::{CertSource, FirewallBackend, Playbook, Profile, Site};
use crate::tasks::certificate::{CertPaths, CertificateTask};
use crate::tasks::file::{FileTask, SymlinkTask};
use crate::tasks::firewall::{Backend, FirewallTask};
use crate::tasks::packages::PackagesTask;
use crate::tasks::refused::RefusedTask;
use crate::tasks::service::ServiceTask;
use crate::tls::dhparam;

/// Name of the package task, for dependencies.
const PACKAGES: &str = "packages nginx";

/// The tasks that bring the host to what the playbook describes, in order.
pub fn plan(pb: &Playbook, facts: &Facts, now: i64) -> Vec<Box<dyn Task>> {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let el7 = matches!(facts.distro.id.as_str(), "centos" | "rhel")
        && facts.distro.version.split('.').next() == Some("7");
    tasks.push(Box::new(PackagesTask {
        packages: vec!["nginx".into()],
        manager: facts.package_manager,
        needs_epel: el7,
    }));
    debug_assert_eq!(tasks[0].name(), PACKAGES);
    if let Some(task) = firewall(pb, facts) {
        tasks.push(task);
    }

    for ca in &pb.cas {
        tasks.push(Box::new(crate::tasks::ca::CaTask {
            name: ca.name.clone(),
            days: ca.days,
        }));
    }

    let mut cert_task_names = Vec::new();
    for c in &pb.certificates {
        let names: BTreeSet<String> = match &c.names {
            Some(n) => n.iter().cloned().collect(),
            None => pb
                .sites
                .iter()
                .filter(|s| s.certificate == c.name)
                .flat_map(|s| s.server_names.iter().cloned())
                .collect(),
        };
        let task = CertificateTask {
            name: c.name.clone(),
            source: c.source,
            names,
            key: c.key,
            days: c.days.unwrap_or(365),
            remaining_fraction: pb.renewal.remaining_fraction,
            paths: cert_paths(c),
            now,
        };
        cert_task_names.push(task.name());
        tasks.push(Box::new(task));
    }

    let target = render::Target {
        layout: facts.nginx.layout,
        version: facts.nginx.version(),
        http2: facts.nginx.http2 || facts.nginx.version.is_none(),
    };
    let snippets = render::Snippets::for_target(&target);
    let nginx_file = |path: String, content: String, after: Vec<String>| -> Box<dyn Task> {
        Box::new(FileTask {
            path: PathBuf::from(path),
            content: content.into_bytes(),
            mode: 0o644,
            dir_mode: 0o755,
            notify: vec![Handler::ReloadNginx],
            after,
        })
    };
    let needs_nginx = vec![PACKAGES.to_string()];
    let mut tls_after = needs_nginx.clone();
    let dhparam_path = (pb.tls.profile == Profile::Compat).then_some(dhparam::PATH);
    if dhparam_path.is_some() {
        let task: Box<dyn Task> = if pb.tls.generate_dhparam {
            Box::new(crate::tasks::dhparam::GeneratedDhparam {
                group: pb.tls.dhparam,
                after: needs_nginx.clone(),
            })
        } else {
            nginx_file(
                dhparam::PATH.into(),
                dhparam::rfc7919_pem(pb.tls.dhparam).into(),
                needs_nginx.clone(),
            )
        };
        tls_after.push(task.name());
        tasks.push(task);
    }
    tasks.push(nginx_file(
        snippets.tls.clone(),
        render::tls_snippet(&profile::directives(pb.tls.profile, dhparam_path)),
        tls_after,
    ));
    tasks.push(nginx_file(
        snippets.proxy.clone(),
        render::proxy_snippet(),
        needs_nginx.clone(),
    ));
    tasks.push(nginx_file(
        "/etc/nginx/conf.d/portico-http.conf".into(),
        render::http_snippet(),
        needs_nginx.clone(),
    ));

    for site in &pb.sites {
        let Some(cert) = pb.certificates.iter().find(|c| c.name == site.certificate) else {
            continue; // validation guarantees it exists
        };
        if let Some(reason) = unprotectable(site) {
            tasks.push(Box::new(RefusedTask {
                name: format!("site {}", site.id()),
                reason,
            }));
            continue;
        }
        let paths = cert_paths(cert);
        let content = render::site(
            site,
            &paths.cert.display().to_string(),
            &paths.key.display().to_string(),
            &target,
        );
        let mut after = needs_nginx.clone();
        after.push(format!("certificate {}", cert.name));
        let file = format!("portico-{}.conf", site.id());
        match target.layout {
            Layout::SitesEnabled => {
                let available = format!("/etc/nginx/sites-available/{file}");
                tasks.push(nginx_file(available.clone(), content, after.clone()));
                after.push(format!("file {available}"));
                tasks.push(Box::new(SymlinkTask {
                    path: PathBuf::from(format!("/etc/nginx/sites-enabled/{file}")),
                    target: PathBuf::from(available),
                    notify: vec![Handler::ReloadNginx],
                    after,
                }));
            }
            Layout::ConfD => tasks.push(nginx_file(
                format!("/etc/nginx/conf.d/{file}"),
                content,
                after,
            )),
        }
    }
    // Started (and enabled) last, so a first start already reads the config.
    tasks.push(Box::new(ServiceTask {
        unit: "nginx.service".into(),
        enable: facts.systemd,
        after: needs_nginx,
    }));
    tasks
}

/// The firewall task for the playbook's choice (`auto`: the active one).
fn firewall(pb: &Playbook, facts: &Facts) -> Option<Box<dyn Task>> {
    let backend = match pb.firewall.backend {
        FirewallBackend::None => return None,
        FirewallBackend::Ufw => Backend::Ufw,
        FirewallBackend::Firewalld => Backend::Firewalld,
        FirewallBackend::Iptables => Backend::Iptables,
        FirewallBackend::Auto => match facts.firewall {
            Active::Ufw => Backend::Ufw,
            Active::Firewalld => Backend::Firewalld,
            Active::Iptables => Backend::Iptables,
            // No active firewall: nothing blocks the ports.
            Active::None => return None,
            Active::Nftables => {
                return Some(Box::new(RefusedTask {
                    name: "firewall".into(),
                    reason: "an nftables ruleset is active and portico does not edit raw nftables; \
                             open the ports yourself and set [firewall] backend = \"none\", or name \
                             ufw, firewalld or iptables"
                        .into(),
                }))
            }
        },
    };
    Some(Box::new(FirewallTask {
        backend,
        // Validation keeps every port in 1..=65535.
        ports: pb
            .firewall
            .ports
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .collect(),
        enable: pb.firewall.enable,
        family: facts.distro.family,
    }))
}

fn cert_paths(c: &crate::playbook::Certificate) -> CertPaths {
    match (c.source, &c.cert_file, &c.key_file) {
        (CertSource::Files, Some(cert), Some(key)) => CertPaths {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        },
        _ => CertPaths::managed(&c.name),
    }
}

/// Why a site cannot be rendered with the protection it asks for yet.
/// Rendering it without would serve it open: it is refused instead.
fn unprotectable(site: &Site) -> Option<String> {
    let id = site.id();
    if site.client_auth.is_some() {
        return Some(format!(
            "site {id}: client-certificate auth is not rendered by this build yet; \
             refusing to serve the site without it"
        ));
    }
    let oauth2 = site.oauth2.is_some()
        || site
            .locations
            .iter()
            .any(|l| l.oauth2.as_deref().is_some_and(|o| o != "none"));
    oauth2.then(|| {
        format!(
            "site {id}: oauth2-proxy auth is not rendered by this build yet; \
             refusing to serve the site without it"
        )
    })
}
