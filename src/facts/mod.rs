//! What the host is: pure parsers of what its files and tools say, and
//! [`gather`], which asks the host through the seams.

pub mod cert;
pub mod firewall;
pub mod nftables;
pub mod nginx;
pub mod nginx_conf;
pub mod os_release;
pub mod ufw;

use std::path::Path;

use serde::Serialize;

use crate::host::{Command, Root, Runner};
pub use firewall::Backend as FirewallBackend;
pub use nginx::{Layout, NginxBuild, Version};
pub use os_release::{Distro, Family, PackageManager};

/// nginx as found on the host.
#[derive(Debug, Clone, Serialize)]
pub struct NginxFacts {
    /// nginx is installed (`nginx -V` answers, or `/etc/nginx/nginx.conf` exists).
    pub installed: bool,
    /// As `nginx -V` gives it (`1.24.0`); `None` when it could not be asked.
    pub version: Option<String>,
    /// The OpenSSL nginx runs with.
    pub openssl: Option<String>,
    /// Built with HTTP/2 (`--with-http_v2_module`).
    pub http2: bool,
    /// Built with HTTP/3 (`--with-http_v3_module`).
    pub http3: bool,
    /// Where site configuration goes.
    pub layout: Layout,
}

impl NginxFacts {
    /// The version, parsed for comparing.
    pub fn version(&self) -> Option<Version> {
        self.version.as_deref().and_then(Version::parse)
    }
}

/// Everything portico needs to know about the host before planning.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// What os-release says the distribution is.
    pub distro: Distro,
    /// How packages are installed.
    pub package_manager: PackageManager,
    /// systemd is PID 1.
    pub systemd: bool,
    /// nginx as found.
    pub nginx: NginxFacts,
    /// The firewall in charge.
    pub firewall: FirewallBackend,
    /// The address families the active firewall filters (`ipv4`, `ipv6`).
    pub firewall_families: Vec<&'static str>,
    /// Whether what it allows now is allowed again after a reboot; `None`
    /// when there is no firewall or it cannot be told.
    pub firewall_persists: Option<bool>,
    /// The host's name, which `{hostname}` in server names stands for.
    pub hostname: String,
    /// Where `hostname` was read (`/etc/hostname`, or the kernel's
    /// `gethostname()`), for messages about it.
    pub hostname_source: String,
    /// The renewal daemon's unit a package installed
    /// (`/lib/systemd/system/portico.service` or the `/usr/lib` one), as it reads.
    pub packaged_unit: Option<String>,
}

/// Reads the host's facts. Under a root other than `/` only files are read:
/// the tree is not a running system, so no command is run.
pub fn gather(root: &Root, runner: &dyn Runner) -> Facts {
    gather_with(root, runner, true)
}

/// The facts files give, without asking any tool (no `nginx -V`, no
/// firewall): what a renewal needs, which touches certificates and
/// reloads nginx, and must stay cheap when nothing is due.
pub fn gather_from_files(root: &Root) -> Facts {
    gather_with(root, &crate::host::cmd::SystemRunner, false)
}

fn gather_with(root: &Root, runner: &dyn Runner, ask_tools: bool) -> Facts {
    let os_text = read(root, "/etc/os-release")
        .or_else(|| read(root, "/usr/lib/os-release"))
        .unwrap_or_default();
    let distro = os_release::parse(&os_text);
    let package_manager = os_release::package_manager(&distro);
    // sd_booted(3): systemd is PID 1 exactly when this directory exists.
    let systemd = root.exists(Path::new("/run/systemd/system"));
    let live = root.is_host();
    let ask = live && ask_tools;

    let query = |argv: &[&str]| -> Option<String> {
        if !ask {
            return None;
        }
        let out = runner.run(&Command::query(argv.iter().copied())).ok()?;
        // nginx -V writes to stderr; the firewall tools to stdout.
        Some(format!("{}{}", out.stdout, out.stderr))
    };

    let build = query(&["nginx", "-V"]).and_then(|t| nginx::parse_v(&t));
    let layout = nginx::layout(
        root.exists(Path::new("/etc/nginx/sites-available")),
        root.exists(Path::new("/etc/nginx/conf.d")),
        distro.family != Family::Rhel,
    );
    let nginx = NginxFacts {
        installed: build.is_some() || root.exists(Path::new("/etc/nginx/nginx.conf")),
        version: build.as_ref().map(|b| b.version.clone()),
        openssl: build.as_ref().and_then(|b| b.openssl.clone()),
        http2: build.as_ref().is_some_and(|b| b.http2),
        http3: build.as_ref().is_some_and(|b| b.http3),
        layout,
    };

    // `systemctl is-active|is-enabled UNIT` print the word on stdout.
    let unit_is = |verb: &str, unit: &str, word: &str| {
        query(&["systemctl", verb, unit]).is_some_and(|o| o.trim() == word)
    };
    // The first in charge wins, so the others are not even asked: ufw from
    // its files, firewalld's CLI (a slow Python start) only when it runs.
    // `ENABLED=yes` with its chain loaded: the conf file alone may outlive
    // the rules (a flush, a failed boot). One quick iptables call, only then.
    let ufw_active = ask
        && ufw::Ufw::read(root).is_ok_and(|u| u.active())
        && runner
            .run(&Command::query(["iptables", "-S", ufw::LOADED_CHAIN]))
            .is_ok_and(|o| o.success());
    let mut nft = None;
    let firewall = if ufw_active {
        FirewallBackend::Ufw
    } else {
        let firewalld_installed = ["/usr/sbin/firewalld", "/usr/bin/firewall-cmd"]
            .iter()
            .any(|p| root.exists(Path::new(p)));
        let firewalld = (firewalld_installed
            && unit_is("is-active", "firewalld.service", "active"))
        .then(|| query(&["firewall-cmd", "--state"]))
        .flatten();
        let iptables = query(&["iptables", "-S"]);
        nft = ask
            .then(|| {
                runner
                    .run(&Command::query(["nft", "--json", "list", "ruleset"]))
                    .ok()
                    .filter(|o| o.success())
                    .map(|o| o.stdout)
            })
            .flatten();
        // Whether nftables.service loaded the ruleset matters only when
        // the ruleset guards input.
        let nftables_service = nft.as_deref().is_some_and(firewall::nftables_guards_input)
            && unit_is("is-active", "nftables.service", "active");
        firewall::active_backend(&firewall::Probes {
            ufw_active,
            firewalld_state: firewalld.as_deref(),
            iptables_rules: iptables.as_deref(),
            nft_json: nft.as_deref(),
            nftables_service,
        })
    };
    let (firewall_families, firewall_persists) = match firewall {
        FirewallBackend::Ufw => {
            let v6 = read(root, ufw::DEFAULTS).is_some_and(|t| ufw::ipv6(&t));
            (
                if v6 {
                    vec!["ipv4", "ipv6"]
                } else {
                    vec!["ipv4"]
                },
                Some(true),
            )
        }
        FirewallBackend::Firewalld => (vec!["ipv4", "ipv6"], Some(true)),
        FirewallBackend::Iptables => {
            let mut families = vec!["ipv4"];
            if query(&["ip6tables", "-S"]).is_some_and(|r| firewall::iptables_in_use(&r)) {
                families.push("ipv6");
            }
            let persists = firewall::persistence_units(distro.family)
                .iter()
                .all(|u| unit_is("is-enabled", u, "enabled"));
            (families, Some(persists))
        }
        FirewallBackend::Nftables | FirewallBackend::NftablesUnmanaged => {
            let mut families: Vec<&'static str> = nft
                .as_deref()
                .and_then(|j| nftables::parse(j).ok())
                .map(|r| {
                    r.guarded
                        .iter()
                        .flat_map(|c| c.families().iter().copied())
                        .collect()
                })
                .unwrap_or_default();
            families.sort_unstable();
            families.dedup();
            let persists = (firewall == FirewallBackend::Nftables)
                .then(|| unit_is("is-enabled", "nftables.service", "enabled"));
            (families, persists)
        }
        FirewallBackend::None => (Vec::new(), None),
    };

    // Taken as it is: a playbook that uses `{hostname}` validates it.
    let (hostname, hostname_source) = match read(root, "/etc/hostname")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
    {
        Some(h) => (h, "/etc/hostname"),
        None => match live.then(crate::host::kernel_hostname).flatten() {
            Some(h) => (h, "gethostname()"),
            None => ("localhost".to_string(), "the default (no /etc/hostname)"),
        },
    };

    Facts {
        distro,
        package_manager,
        systemd,
        nginx,
        firewall,
        firewall_families,
        firewall_persists,
        hostname,
        hostname_source: hostname_source.to_string(),
        packaged_unit: crate::tasks::daemon_unit::PACKAGED_PATHS
            .iter()
            .find_map(|p| read(root, p)),
    }
}

fn read(root: &Root, path: &str) -> Option<String> {
    root.read_to_string(Path::new(path)).ok().flatten()
}
