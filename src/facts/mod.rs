//! What the host is: pure parsers of what its files and tools say, and
//! [`gather`], which asks the host through the seams.

pub mod cert;
pub mod firewall;
pub mod nftables;
pub mod nginx;
pub mod nginx_conf;
pub mod os_release;
pub mod selinux;
pub mod ufw;

use crate::paths;
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
    /// Its version (`systemctl --version`), when it was asked.
    pub systemd_version: Option<u32>,
    /// SELinux's mode (`/sys/fs/selinux/enforce`).
    pub selinux: selinux::Mode,
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
    let os_text = paths::OS_RELEASE
        .iter()
        .find_map(|p| read(root, p))
        .unwrap_or_default();
    let distro = os_release::parse(&os_text);
    let package_manager = os_release::package_manager(&distro);
    let tools = Tools {
        root,
        runner,
        ask: root.is_host() && ask_tools,
    };
    let nginx = nginx_facts(&tools, distro.family);
    let (firewall, nft) = active_firewall(&tools);
    let (firewall_families, firewall_persists) =
        firewall_reach(&tools, firewall, nft.as_deref(), distro.family);
    let (hostname, hostname_source) = hostname(root);
    Facts {
        distro,
        package_manager,
        // sd_booted(3): systemd is PID 1 exactly when this directory exists.
        systemd: root.exists(Path::new(paths::SYSTEMD_RUNNING)),
        selinux: selinux::mode(read(root, paths::SELINUX_ENFORCE).as_deref()),
        systemd_version: tools
            .query_ok(&["systemctl", "--version"])
            .and_then(|o| systemd_version(&o)),
        nginx,
        firewall,
        firewall_families,
        firewall_persists,
        hostname,
        hostname_source: hostname_source.to_string(),
        packaged_unit: paths::PACKAGED_UNITS.iter().find_map(|p| read(root, p)),
    }
}

/// The host's tools, asked only on a live host when facts may ask them.
struct Tools<'a> {
    root: &'a Root,
    runner: &'a dyn Runner,
    ask: bool,
}

impl Tools<'_> {
    /// What `argv` printed (stdout and stderr: `nginx -V` writes to
    /// stderr, the firewall tools to stdout); `None` when not asked.
    fn query(&self, argv: &[&str]) -> Option<String> {
        let out = self.output(argv)?;
        Some(format!("{}{}", out.stdout, out.stderr))
    }

    /// What `argv` printed on stdout, when it exited 0.
    fn query_ok(&self, argv: &[&str]) -> Option<String> {
        let out = self.output(argv)?;
        out.success().then_some(out.stdout)
    }

    /// What `argv` said, when tools may be asked and it ran.
    fn output(&self, argv: &[&str]) -> Option<crate::host::cmd::Output> {
        if !self.ask {
            return None;
        }
        self.runner.run(&Command::query(argv.iter().copied())).ok()
    }

    /// `systemctl is-active|is-enabled UNIT` printed `word`.
    fn unit_is(&self, verb: &str, unit: &str, word: &str) -> bool {
        self.query(&["systemctl", verb, unit])
            .is_some_and(|o| o.trim() == word)
    }
}

/// nginx: its build (`nginx -V`) and its layout.
fn nginx_facts(tools: &Tools, family: Family) -> NginxFacts {
    let root = tools.root;
    let build = tools
        .query(&["nginx", "-V"])
        .and_then(|t| nginx::parse_v(&t));
    let layout = nginx::layout(
        root.exists(Path::new(paths::NGINX_SITES_AVAILABLE)),
        root.exists(Path::new(paths::NGINX_CONF_D)),
        family != Family::Rhel,
    );
    NginxFacts {
        installed: build.is_some() || root.exists(Path::new(paths::NGINX_CONF)),
        version: build.as_ref().map(|b| b.version.clone()),
        openssl: build.as_ref().and_then(|b| b.openssl.clone()),
        http2: build.as_ref().is_some_and(|b| b.http2),
        http3: build.as_ref().is_some_and(|b| b.http3),
        layout,
    }
}

/// The firewall in charge, with nft's ruleset when it was read. The first
/// in charge wins, so the others are not even asked: ufw from its files,
/// firewalld's CLI (a slow Python start) only when it runs.
fn active_firewall(tools: &Tools) -> (FirewallBackend, Option<String>) {
    // `ENABLED=yes` with its chain loaded: the conf file alone may outlive
    // the rules (a flush, a failed boot). One quick iptables call, only then.
    let ufw_active = tools.ask
        && ufw::Ufw::read(tools.root).is_ok_and(|u| u.active())
        && tools
            .query_ok(&["iptables", "-S", ufw::LOADED_CHAIN])
            .is_some();
    if ufw_active {
        return (FirewallBackend::Ufw, None);
    }
    let firewalld_installed = paths::FIREWALLD_BINARIES
        .iter()
        .any(|p| tools.root.exists(Path::new(p)));
    let firewalld = (firewalld_installed
        && tools.unit_is("is-active", "firewalld.service", "active"))
    .then(|| tools.query(&["firewall-cmd", "--state"]))
    .flatten();
    let iptables = tools.query(&["iptables", "-S"]);
    let nft = tools.query_ok(&["nft", "--json", "list", "ruleset"]);
    // Whether nftables.service loaded the ruleset matters only when the
    // ruleset guards input.
    let nftables_service = nft.as_deref().is_some_and(firewall::nftables_guards_input)
        && tools.unit_is("is-active", "nftables.service", "active");
    let active = firewall::active_backend(&firewall::Probes {
        ufw_active,
        firewalld_state: firewalld.as_deref(),
        iptables_rules: iptables.as_deref(),
        nft_json: nft.as_deref(),
        nftables_service,
    });
    (active, nft)
}

/// The address families the firewall guards, and whether what it allows
/// now is allowed again after a reboot (`None`: cannot be told).
fn firewall_reach(
    tools: &Tools,
    firewall: FirewallBackend,
    nft: Option<&str>,
    family: Family,
) -> (Vec<&'static str>, Option<bool>) {
    match firewall {
        FirewallBackend::Ufw => {
            let v6 = read(tools.root, paths::UFW_DEFAULTS).is_some_and(|t| ufw::ipv6(&t));
            let families = if v6 {
                vec!["ipv4", "ipv6"]
            } else {
                vec!["ipv4"]
            };
            (families, Some(true))
        }
        FirewallBackend::Firewalld => (vec!["ipv4", "ipv6"], Some(true)),
        FirewallBackend::Iptables => {
            let mut families = vec!["ipv4"];
            if tools
                .query(&["ip6tables", "-S"])
                .is_some_and(|r| firewall::iptables_in_use(&r))
            {
                families.push("ipv6");
            }
            let persists = firewall::persistence_units(family)
                .iter()
                .all(|u| tools.unit_is("is-enabled", u, "enabled"));
            (families, Some(persists))
        }
        FirewallBackend::Nftables | FirewallBackend::NftablesUnmanaged => {
            let mut families: Vec<&'static str> = nft
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
                .then(|| tools.unit_is("is-enabled", "nftables.service", "enabled"));
            (families, persists)
        }
        FirewallBackend::None => (Vec::new(), None),
    }
}

/// The host's name and where it was read. Taken as it is: a playbook that
/// uses `{hostname}` validates it.
fn hostname(root: &Root) -> (String, &'static str) {
    let file = read(root, paths::HOSTNAME)
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match file {
        Some(h) => (h, paths::HOSTNAME),
        None => match root.is_host().then(crate::host::kernel_hostname).flatten() {
            Some(h) => (h, "gethostname()"),
            None => ("localhost".to_string(), "the default (no /etc/hostname)"),
        },
    }
}

/// `systemd 252 (252.39-1~deb12u2)` -> 252: the first line of
/// `systemctl --version`.
pub fn systemd_version(out: &str) -> Option<u32> {
    out.lines()
        .next()?
        .strip_prefix("systemd ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read(root: &Root, path: &str) -> Option<String> {
    root.read_to_string(Path::new(path)).ok().flatten()
}
