//! Every well-known path portico reads or writes, each with one name and
//! one comment. Modules name these; none spells a path of its own.

use std::path::PathBuf;

/// portico's certificate directory: apart from the system's trust store
/// (`/etc/ssl/certs`, a symlink on EL), so the renewal daemon's sandbox can
/// write here and nowhere near the trust store.
pub const CERT_DIR: &str = "/etc/ssl/portico";

/// Where each certificate's key pairs live, one directory per pair named by
/// its content (`pairs/NAME/ID/{fullchain,privkey}.pem`, 0700): a pair is
/// written whole, under a temporary name, and never changed afterwards.
pub const PAIRS_DIR: &str = "/etc/ssl/portico/pairs";

/// One symlink per certificate to its current pair (`live/NAME ->
/// ../pairs/NAME/ID`): replacing it (one rename) switches key and
/// certificate together, so nginx never reads a key beside another
/// order's certificate.
pub const LIVE_DIR: &str = "/etc/ssl/portico/live";

/// The file names inside a pair directory.
pub const PAIR_CERT: &str = "fullchain.pem";
/// The private key's file name inside a pair directory.
pub const PAIR_KEY: &str = "privkey.pem";

/// A certificate's pairs.
pub fn pair_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("{PAIRS_DIR}/{name}"))
}

/// A certificate's live link.
pub fn live_link(name: &str) -> PathBuf {
    PathBuf::from(format!("{LIVE_DIR}/{name}"))
}

/// What nginx reads: a certificate's full chain (leaf first) in its live
/// pair, through `live/NAME`.
pub fn live_cert(name: &str) -> PathBuf {
    live_link(name).join(PAIR_CERT)
}

/// What nginx reads: a certificate's key in its live pair.
pub fn live_key(name: &str) -> PathBuf {
    live_link(name).join(PAIR_KEY)
}

/// The plain copies of live certificates ([`cert_file`]).
pub const CERT_COPIES: &str = "/etc/ssl/portico/certs";

/// The plain copies of live keys ([`key_file`]), 0700.
pub const KEY_COPIES: &str = "/etc/ssl/portico/private";

/// A copy of the live certificate at a stable, plain name (0644), for
/// operators, hooks and backups; nginx never reads it.
pub fn cert_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{CERT_COPIES}/{name}.crt"))
}

/// A copy of the live key at a stable, plain name (0600 in a 0700
/// directory); nginx never reads it.
pub fn key_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{KEY_COPIES}/{name}.key"))
}

/// portico's nginx directory: the configuration generations and the link
/// to the live one. Everything in it is portico's.
pub const NGINX_DIR: &str = "/etc/nginx/portico";

/// The link nginx reads portico's configuration through
/// (`live -> gen-ID`): one rename makes a whole new generation live.
pub const NGINX_LIVE: &str = "/etc/nginx/portico/live";

/// The one file portico adds to nginx's own include directory (both
/// layouts include `conf.d/*.conf` in `http {}`): it includes the live
/// generation.
pub const NGINX_ENTRY: &str = "/etc/nginx/conf.d/portico.conf";

/// portico's runtime directory (the daemon unit's `RuntimeDirectory`).
pub const RUN_DIR: &str = "/run/portico";

/// The host-wide lock every command that changes the host takes (and the
/// PID and command of its holder, for whoever waits).
pub const LOCK_FILE: &str = "/run/portico/lock";

/// A previous generation's name, kept during an in-place test (only where
/// a private mount namespace is refused) until it is put back.
pub const NGINX_PREVIOUS: &str = "/etc/nginx/portico/previous";

/// Where portico writes the dhparam file nginx's `ssl_dhparam` reads.
pub const DHPARAM: &str = "/etc/nginx/portico-dhparam.pem";

/// portico's state directory: the manifest, renewal state, ACME accounts,
/// CAs and the archive. Everything in it is portico's.
pub const STATE_DIR: &str = "/var/lib/portico";

/// The manifest: what portico wrote, with hashes (what `remove` undoes).
pub const MANIFEST: &str = "/var/lib/portico/managed.json";

/// Renewal's state: attempts, failures, back-off, per certificate.
pub const STATE_FILE: &str = "/var/lib/portico/state.json";

/// What the last renewal run with nothing to do remembers, so the next
/// can say so without parsing the playbook (src/nothing_due.rs).
pub const NOTHING_DUE: &str = "/var/lib/portico/nothing-due.json";

/// Each command's last run, for the metrics (`metrics::runs`).
pub const RUNS_FILE: &str = "/var/lib/portico/runs.json";

/// What each ACME account asked of its CA in the last hour, and whether
/// the CA holds it back (src/acme/ledger.rs).
pub const ORDERS_FILE: &str = "/var/lib/portico/orders.json";

/// Debian's node_exporter textfile directory: where the metrics go by
/// default, when it exists.
pub const NODE_EXPORTER_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// The metrics file portico writes there by default.
pub const DEFAULT_METRICS_FILE: &str = "/var/lib/prometheus/node-exporter/portico.prom";

/// ACME accounts, one directory per directory URL.
pub const ACME_ACCOUNTS: &str = "/var/lib/portico/acme";

/// Every private CA portico manages, one directory each.
pub const CA_DIR: &str = "/var/lib/portico/ca";

/// Where pruned certificates, keys and edited files go, one directory per
/// run.
pub const ARCHIVE_DIR: &str = "/var/lib/portico/archive";

/// Where ACME HTTP-01 challenges are served from on port 80 unless the
/// playbook names another webroot.
pub const DEFAULT_WEBROOT: &str = "/var/lib/portico/acme-challenge";

/// portico's configuration directory: the installed playbook, and the
/// operator's files beside it (kept by `remove --purge`).
pub const CONFIG_DIR: &str = "/etc/portico";

/// Where `apply` installs the playbook it applied: what `renew`, `status`
/// and the daemon read when given none.
pub const INSTALLED_PLAYBOOK: &str = "/etc/portico/playbook.toml";

/// The renewal daemon's unit, when `apply` writes one.
pub const DAEMON_UNIT: &str = "/etc/systemd/system/portico.service";

/// Where the .deb and .rpm put the daemon's unit (Debian, EL).
pub const PACKAGED_UNITS: [&str; 2] = [
    "/lib/systemd/system/portico.service",
    "/usr/lib/systemd/system/portico.service",
];

/// Where the .deb and .rpm put the binary.
pub const PACKAGED_EXE: &str = "/usr/bin/portico";

/// Where the README's install puts the binary: what the shipped unit names.
pub const INSTALLED_EXE: &str = "/usr/local/bin/portico";

/// The nftables rules portico owns, loaded at boot through [`NFTABLES_CONF`].
pub const NFTABLES_BOOT_FILE: &str = "/etc/nftables.d/portico.nft";

/// The distro's nftables boot configuration, loaded by `nftables.service`.
pub const NFTABLES_CONF: &str = "/etc/nftables.conf";

/// Where portico before 0.2 kept certificate `name`, in the system's trust
/// store directory; a certificate found there is carried over.
pub fn legacy_cert(name: &str) -> PathBuf {
    PathBuf::from(format!("/etc/ssl/certs/portico-{name}.crt"))
}

/// Where portico before 0.2 kept certificate `name`'s key.
pub fn legacy_key(name: &str) -> PathBuf {
    PathBuf::from(format!("/etc/ssl/private/portico-{name}.key"))
}

// The system's own files, which portico reads or edits.

/// nginx's configuration directory.
pub const NGINX_CONF_DIR: &str = "/etc/nginx";

/// nginx's main configuration file.
pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";

/// nginx's include directory on both layouts (`conf.d/*.conf` in `http {}`).
pub const NGINX_CONF_D: &str = "/etc/nginx/conf.d";

/// Debian's per-site directory (a portico before the generations wrote
/// here; its presence tells the layout).
pub const NGINX_SITES_AVAILABLE: &str = "/etc/nginx/sites-available";

/// Debian's enabled sites (symlinks into [`NGINX_SITES_AVAILABLE`]).
pub const NGINX_SITES_ENABLED: &str = "/etc/nginx/sites-enabled";

/// nginx's PID file, as both distros' packages configure it.
pub const NGINX_PID: &str = "/run/nginx.pid";

/// nginx's own state directory (its temporary files).
pub const NGINX_STATE_DIR: &str = "/var/lib/nginx";

/// nginx's logs.
pub const NGINX_LOG_DIR: &str = "/var/log/nginx";

/// The os-release files, in the order os-release(5) reads them.
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The host's name, as the installer wrote it.
pub const HOSTNAME: &str = "/etc/hostname";

/// The machine's ID (systemd's), stable across reboots.
pub const MACHINE_ID: &str = "/etc/machine-id";

/// Exists while systemd runs as PID 1 (sd_booted(3)).
pub const SYSTEMD_RUNNING: &str = "/run/systemd/system";

/// Where the administrator's units live (portico's own goes here).
pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";

/// SELinux's mode: `1` enforcing, `0` permissive (absent: no SELinux).
pub const SELINUX_ENFORCE: &str = "/sys/fs/selinux/enforce";

/// SELinux's management tool (policycoreutils-python-utils on EL 8 and
/// later, policycoreutils-python on EL 7).
pub const SEMANAGE: [&str; 2] = ["/usr/sbin/semanage", "/sbin/semanage"];

/// The SSH server's configuration: its port stays open in the firewall.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// The resolver's configuration: the DNS server DNS-01 asks by default.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// apt's downloaded package lists (empty on a fresh image).
pub const APT_LISTS: &str = "/var/lib/apt/lists";

/// The system's CA bundle on Debian and Ubuntu.
pub const CA_BUNDLE_DEBIAN: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The system's CA bundle on EL.
pub const CA_BUNDLE_EL: &str = "/etc/pki/tls/certs/ca-bundle.crt";

/// firewalld's daemon and client, where either is installed.
pub const FIREWALLD_BINARIES: [&str; 2] = ["/usr/sbin/firewalld", "/usr/bin/firewall-cmd"];

/// ufw's switch (`ENABLED=yes`).
pub const UFW_CONF: &str = "/etc/ufw/ufw.conf";

/// ufw's IPv4 rules as `ufw allow` writes them.
pub const UFW_USER_RULES: &str = "/etc/ufw/user.rules";

/// ufw's IPv6 rules.
pub const UFW_USER6_RULES: &str = "/etc/ufw/user6.rules";

/// ufw's defaults (`IPV6=yes`, the default policies).
pub const UFW_DEFAULTS: &str = "/etc/default/ufw";

/// Where ufw's command is.
pub const UFW_BINARIES: [&str; 2] = ["/usr/sbin/ufw", "/sbin/ufw"];

/// Where drop-in nftables files go.
pub const NFTABLES_D: &str = "/etc/nftables.d";

/// Where iptables-persistent (Debian) keeps the IPv4 rules loaded at boot.
pub const IPTABLES_RULES_DEBIAN_V4: &str = "/etc/iptables/rules.v4";

/// Where iptables-persistent keeps the IPv6 rules.
pub const IPTABLES_RULES_DEBIAN_V6: &str = "/etc/iptables/rules.v6";

/// Where iptables-services (EL) keeps the IPv4 rules loaded at boot.
pub const IPTABLES_RULES_EL_V4: &str = "/etc/sysconfig/iptables";

/// Where iptables-services keeps the IPv6 rules.
pub const IPTABLES_RULES_EL_V6: &str = "/etc/sysconfig/ip6tables";
