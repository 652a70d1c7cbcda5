//! The playbook's TOML shape. Unknown fields are errors everywhere, so a typo
//! never silently falls back to a default.

use serde::Deserialize;

/// A whole playbook (`version = 1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Schema version; only 1 exists.
    pub version: u32,
    /// `[firewall]`: which ports to open, and with what.
    #[serde(default)]
    pub firewall: Firewall,
    /// `[tls]`: protocols and ciphers of every HTTPS server.
    #[serde(default)]
    pub tls: Tls,
    /// `[renewal]`: when the daemon renews ACME certificates.
    #[serde(default)]
    pub renewal: Renewal,
    /// The ACME account used by every `source = "acme"` certificate.
    pub acme: Option<Acme>,
    /// The certificates sites use.
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<Certificate>,
    /// DNS providers `challenge = "dns-01"` certificates publish their
    /// TXT records through.
    #[serde(default, rename = "dns")]
    pub dns: Vec<Dns>,
    /// Private certificate authorities (client certificates, internal TLS).
    #[serde(default, rename = "ca")]
    pub cas: Vec<Ca>,
    /// oauth2-proxy instances sites can be protected by.
    #[serde(default, rename = "oauth2")]
    pub oauth2: Vec<Oauth2>,
    /// The HTTPS sites: names, certificate and locations.
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    /// Where clients come from when the host sits behind a load balancer.
    #[serde(default)]
    pub proxy: ProxySettings,
    /// `[metrics]`: the file Prometheus' node_exporter reads.
    #[serde(default)]
    pub metrics: Metrics,
}

/// `[metrics]`: where portico leaves its metrics for Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// A `.prom` file in node_exporter's textfile directory, rewritten
    /// after every run. Default: `/var/lib/prometheus/node-exporter/portico.prom`
    /// when that directory exists; `""` writes none.
    pub textfile: Option<String>,
}

impl Metrics {
    /// The metrics file, once resolved ([`Metrics::resolve_default`]);
    /// `None` when off (or not resolved).
    pub fn file(&self) -> Option<&std::path::Path> {
        self.textfile
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(std::path::Path::new)
    }

    /// Makes the default concrete: node_exporter's textfile file when
    /// `dir_exists` says its directory is there, else off.
    pub fn resolve_default(&mut self, dir_exists: impl FnOnce(&str) -> bool) {
        if self.textfile.is_none() {
            self.textfile = Some(if dir_exists(crate::paths::NODE_EXPORTER_TEXTFILE_DIR) {
                crate::paths::DEFAULT_METRICS_FILE.to_string()
            } else {
                String::new()
            });
        }
    }
}

/// `[proxy]`: the edge's view of the network in front of it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Load balancers whose `X-Forwarded-For` is believed (CIDRs or
    /// addresses). Empty: the client is the peer address, and any
    /// `X-Forwarded-For` a client sends is dropped.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// More headers no client may set, cleared in every location (the
    /// built-in list covers the usual identity, address and routing ones).
    #[serde(default)]
    pub clear_headers: Vec<String>,
    /// CA bundle that HTTPS backends and an HTTPS oauth2-proxy must be
    /// signed by; default: the system's bundle.
    pub backend_ca: Option<String>,
}

impl Playbook {
    /// The certificates by name: one lookup per site instead of a scan
    /// (a host with thousands of sites would make every pass quadratic).
    pub fn certificates_by_name(&self) -> std::collections::HashMap<&str, &Certificate> {
        self.certificates
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect()
    }

    /// The TCP ports the firewall opens: the listed ones, or 80 (redirects and
    /// ACME challenges) plus every site's HTTPS port, so a site on 8443 is
    /// reachable without a second setting to keep in step.
    pub fn firewall_ports(&self) -> Vec<u16> {
        if let Some(ports) = &self.firewall.ports {
            return ports.clone();
        }
        let mut ports = vec![80];
        for site in &self.sites {
            if !ports.contains(&site.listen) {
                ports.push(site.listen);
            }
        }
        if ports.len() == 1 {
            ports.push(443); // no sites yet: the usual pair
        }
        ports
    }
}

/// Which firewall opens the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    /// The one active on the host; nothing when none is.
    #[default]
    Auto,
    /// ufw.
    Ufw,
    /// firewalld.
    Firewalld,
    /// iptables and ip6tables.
    Iptables,
    /// Native nftables, as `nftables.service` loads it.
    Nftables,
    /// Open nothing: the firewall is left alone.
    None,
}

/// `[firewall]`: the ports to open and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// The firewall to use.
    #[serde(default)]
    pub backend: FirewallBackend,
    /// TCP ports to open; default: 80 and every site's `listen` port.
    #[serde(default, deserialize_with = "super::port::ports")]
    pub ports: Option<Vec<u16>>,
    /// Enable an inactive ufw/firewalld (the SSH port is always allowed first).
    #[serde(default)]
    pub enable: bool,
    /// Make the ports stay open after a reboot: for iptables the distro's
    /// restore service (installed and enabled), for nftables a file
    /// `/etc/nftables.conf` includes. ufw and firewalld keep their rules
    /// themselves. `false` leaves boot alone, and apply warns.
    #[serde(default = "yes")]
    pub persist: bool,
}

fn yes() -> bool {
    true
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            backend: FirewallBackend::Auto,
            ports: None,
            enable: false,
            persist: true,
        }
    }
}

/// TLS profiles after Mozilla's server-side TLS recommendations (6.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// TLS 1.2 + 1.3, ECDHE AEAD suites only.
    #[default]
    Intermediate,
    /// TLS 1.3 only.
    Modern,
    /// Intermediate plus DHE suites for old clients; uses `ssl_dhparam`.
    Compat,
}

/// An RFC 7919 finite-field group for the DHE suites of the `compat` profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DhGroup {
    /// 2048-bit `ffdhe2048`.
    #[default]
    Ffdhe2048,
    /// 3072-bit `ffdhe3072`.
    Ffdhe3072,
    /// 4096-bit `ffdhe4096`.
    Ffdhe4096,
}

/// `[tls]`: the protocols and ciphers every HTTPS server offers.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Which Mozilla recommendation to follow.
    #[serde(default)]
    pub profile: Profile,
    /// RFC 7919 group written as the dhparam file (profiles with DHE only).
    #[serde(default)]
    pub dhparam: DhGroup,
    /// Generate fresh parameters with openssl instead (seconds of CPU, no gain).
    #[serde(default)]
    pub generate_dhparam: bool,
}

/// `[renewal]`: when the daemon checks ACME certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// `"daily"` (a random minute fixed per host) or a cron expression with
    /// seconds: `"0 17 3 * * *"`.
    #[serde(default)]
    pub schedule: super::schedule::Schedule,
    /// Renew when less than this fraction of the lifetime remains.
    #[serde(default = "default_fraction")]
    pub remaining_fraction: f64,
    /// Run once for each certificate that changed, after nginx reloaded:
    /// an argv list (never a shell string), the first an absolute path.
    /// It gets `PORTICO_CERT_NAME`, `PORTICO_CERT_PATH`, `PORTICO_KEY_PATH`
    /// and `PORTICO_DOMAINS` (space-separated).
    #[serde(default)]
    pub deploy_hook: Option<Vec<String>>,
    /// Seconds the hook may run before it is killed.
    #[serde(default = "default_hook_timeout")]
    pub deploy_hook_timeout: u32,
}

fn default_fraction() -> f64 {
    1.0 / 3.0
}

fn default_hook_timeout() -> u32 {
    60
}

impl Default for Renewal {
    fn default() -> Self {
        Renewal {
            schedule: super::schedule::Schedule::Daily,
            remaining_fraction: default_fraction(),
            deploy_hook: None,
            deploy_hook_timeout: default_hook_timeout(),
        }
    }
}

/// `[acme]`: the ACME CA and the account portico keeps with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// `letsencrypt`, `letsencrypt-staging` or a directory URL.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// Contact address given to the CA for expiry and account notices.
    pub email: Option<String>,
    /// You have read and agree to the CA's terms of service. Required.
    #[serde(default)]
    pub agree_terms: bool,
    /// External account binding, for CAs that require one.
    pub eab: Option<Eab>,
    /// PEM root to trust for a private ACME server's HTTPS.
    pub ca_root: Option<String>,
    /// ACME profile to request (where the CA offers profiles).
    pub profile: Option<String>,
    /// Directory the port-80 server serves `/.well-known/acme-challenge/` from.
    #[serde(default = "default_webroot")]
    pub webroot: String,
    /// At most this many new orders in any hour on this account; more wait
    /// in the queue. Default: the CA's published limit where the directory
    /// is known (src/acme/ledger.rs), else none.
    pub max_orders_per_hour: Option<u32>,
}

fn default_directory() -> String {
    "letsencrypt".into()
}

fn default_webroot() -> String {
    crate::paths::DEFAULT_WEBROOT.into()
}

/// External account binding: ties the ACME account to one at the CA.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eab {
    /// The key ID the CA gave.
    pub kid: String,
    /// File holding the base64url HMAC key (kept out of the playbook).
    pub hmac_key_file: String,
}

/// The key type of a certificate's private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on P-256.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
}

impl KeyType {
    /// As written in a playbook.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
        }
    }
}

/// A certificate sites use: its names, its key, and where it comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawCertificate")]
pub struct Certificate {
    /// Names it in sites and files.
    pub name: String,
    /// Subject alternative names; default: every server name of the sites using it.
    pub names: Option<Vec<String>>,
    /// The key type.
    pub key: KeyType,
    /// Where it comes from, with what only that source uses.
    pub source: Source,
}

/// Where a certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An ACME CA (`[acme]`), renewed by the daemon.
    Acme {
        /// Keep the same key across renewals (for key pinning setups).
        reuse_key: bool,
        /// How the CA checks that the names are ours.
        challenge: Challenge,
    },
    /// Made here, signed by its own key.
    SelfSigned {
        /// Lifetime.
        days: u32,
    },
    /// Issued by a `[[ca]]` of this playbook.
    Ca {
        /// The `[[ca]]`.
        ca: String,
        /// Lifetime (never beyond the CA's).
        days: u32,
    },
    /// Files you provide; portico validates them.
    Files {
        /// Full chain, leaf first.
        cert_file: String,
        /// The private key.
        key_file: String,
    },
}

impl Source {
    /// As a playbook writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Acme { .. } => "acme",
            Source::SelfSigned { .. } => "self-signed",
            Source::Ca { .. } => "ca",
            Source::Files { .. } => "files",
        }
    }

    /// Obtained from an ACME CA (and renewed by the daemon)?
    pub fn is_acme(&self) -> bool {
        matches!(self, Source::Acme { .. })
    }

    /// The challenge of an ACME certificate.
    pub fn challenge(&self) -> Option<&Challenge> {
        match self {
            Source::Acme { challenge, .. } => Some(challenge),
            _ => None,
        }
    }
}

/// How an ACME CA checks control of the names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Challenge {
    /// A file nginx serves on port 80 (`http-01`, the default).
    #[default]
    Http01,
    /// A TXT record at `_acme-challenge.NAME` (`dns-01`): wildcards, and
    /// hosts the CA cannot reach on port 80.
    Dns01 {
        /// The `[[dns]]` provider that publishes the records.
        dns: String,
    },
}

impl Challenge {
    /// As a playbook writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::Dns01 { .. } => "dns-01",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum ChallengeName {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
}

/// The default lifetime of made certificates.
const DEFAULT_DAYS: u32 = 365;

/// `[[certificate]]` as written: every field, whatever the source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    name: String,
    source: SourceName,
    names: Option<Vec<String>>,
    #[serde(default)]
    key: KeyType,
    days: Option<u32>,
    ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    reuse_key: Option<bool>,
    challenge: Option<ChallengeName>,
    dns: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SourceName {
    Acme,
    SelfSigned,
    Ca,
    Files,
}

impl TryFrom<RawCertificate> for Certificate {
    type Error = String;

    /// Each source takes its own fields; a field another source uses is an
    /// error (a typo for a source would otherwise be silently ignored).
    fn try_from(r: RawCertificate) -> Result<Self, String> {
        let unused = |field: &str, used_by: &str| {
            format!(
                "{field} is only used with {used_by}, not source = \"{}\"",
                r.source.name()
            )
        };
        if r.ca.is_some() && r.source != SourceName::Ca {
            return Err(unused("ca", "source = \"ca\""));
        }
        if (r.cert_file.is_some() || r.key_file.is_some()) && r.source != SourceName::Files {
            return Err(unused("cert_file/key_file", "source = \"files\""));
        }
        if r.reuse_key.is_some() && r.source != SourceName::Acme {
            return Err(unused("reuse_key", "source = \"acme\""));
        }
        if r.challenge.is_some() && r.source != SourceName::Acme {
            return Err(unused("challenge", "source = \"acme\""));
        }
        if r.dns.is_some() && r.challenge != Some(ChallengeName::Dns01) {
            return Err(
                "dns is only used with challenge = \"dns-01\" (it names the [[dns]] provider)"
                    .into(),
            );
        }
        if r.days.is_some() && matches!(r.source, SourceName::Acme | SourceName::Files) {
            return Err(unused(
                "days",
                "self-signed and ca certificates (the CA or the file decides)",
            ));
        }
        let days = r.days.unwrap_or(DEFAULT_DAYS);
        let source = match r.source {
            SourceName::Acme => Source::Acme {
                reuse_key: r.reuse_key.unwrap_or(false),
                challenge: match r.challenge {
                    None | Some(ChallengeName::Http01) => Challenge::Http01,
                    Some(ChallengeName::Dns01) => Challenge::Dns01 {
                        dns: r.dns.ok_or(
                            "challenge = \"dns-01\" needs dns = \"NAME\" of a [[dns]] provider",
                        )?,
                    },
                },
            },
            SourceName::SelfSigned => Source::SelfSigned { days },
            SourceName::Ca => Source::Ca {
                ca: r
                    .ca
                    .ok_or("source = \"ca\" needs ca = \"NAME\" of a [[ca]]")?,
                days,
            },
            SourceName::Files => match (r.cert_file, r.key_file) {
                (Some(cert_file), Some(key_file)) => Source::Files {
                    cert_file,
                    key_file,
                },
                (None, _) => return Err("source = \"files\" needs cert_file".into()),
                (_, None) => return Err("source = \"files\" needs key_file".into()),
            },
        };
        Ok(Certificate {
            name: r.name,
            names: r.names,
            key: r.key,
            source,
        })
    }
}

impl SourceName {
    fn name(self) -> &'static str {
        match self {
            SourceName::Acme => "acme",
            SourceName::SelfSigned => "self-signed",
            SourceName::Ca => "ca",
            SourceName::Files => "files",
        }
    }
}

/// `[[dns]]`: where the TXT records of DNS-01 challenges are published.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDns")]
pub struct Dns {
    /// Names it in `[[certificate]] dns`.
    pub name: String,
    /// How records are added and removed.
    pub provider: DnsProvider,
    /// Seconds to wait for every authoritative server to answer the
    /// records before giving up.
    pub propagation_timeout: u32,
    /// The resolver that finds zones, name servers and CNAMEs
    /// (`IP` or `IP:PORT`); default: the nameservers of /etc/resolv.conf.
    pub resolver: Option<String>,
}

/// A DNS provider and what only it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsProvider {
    /// RFC 2136 dynamic updates signed with a TSIG key (BIND, Knot,
    /// PowerDNS, many hosted services).
    Rfc2136 {
        /// The primary server taking updates: `IP` or `IP:PORT` (53).
        server: String,
        /// The zone to update; default: found from the SOA.
        zone: Option<String>,
        /// The TSIG key's name, as the server knows it.
        key_name: String,
        /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
        algorithm: String,
        /// File with the base64 secret, alone or as `tsig-keygen` writes it.
        secret_file: String,
    },
    /// Programs you provide (argv lists, never a shell string), called
    /// with `PORTICO_DOMAIN`, `PORTICO_TXT_NAME` and `PORTICO_TXT_VALUE`.
    Hook {
        /// Adds one record.
        present: Vec<String>,
        /// Removes it again.
        cleanup: Vec<String>,
        /// Seconds a call may run before it is killed.
        timeout: u32,
    },
}

impl DnsProvider {
    /// As a playbook writes it.
    pub fn name(&self) -> &'static str {
        match self {
            DnsProvider::Rfc2136 { .. } => "rfc2136",
            DnsProvider::Hook { .. } => "hook",
        }
    }
}

/// `[[dns]]` as written: every field, whatever the provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    name: String,
    provider: DnsProviderName,
    server: Option<String>,
    zone: Option<String>,
    key_name: Option<String>,
    algorithm: Option<String>,
    secret_file: Option<String>,
    present: Option<Vec<String>>,
    cleanup: Option<Vec<String>>,
    hook_timeout: Option<u32>,
    #[serde(default = "default_propagation_timeout")]
    propagation_timeout: u32,
    resolver: Option<String>,
}

fn default_propagation_timeout() -> u32 {
    120
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DnsProviderName {
    Rfc2136,
    Hook,
}

impl TryFrom<RawDns> for Dns {
    type Error = String;

    /// Each provider takes its own fields; another's is an error.
    fn try_from(r: RawDns) -> Result<Self, String> {
        let (theirs, other) = match r.provider {
            DnsProviderName::Rfc2136 => (
                vec![
                    ("present", r.present.is_some()),
                    ("cleanup", r.cleanup.is_some()),
                    ("hook_timeout", r.hook_timeout.is_some()),
                ],
                "hook",
            ),
            DnsProviderName::Hook => (
                vec![
                    ("server", r.server.is_some()),
                    ("zone", r.zone.is_some()),
                    ("key_name", r.key_name.is_some()),
                    ("algorithm", r.algorithm.is_some()),
                    ("secret_file", r.secret_file.is_some()),
                ],
                "rfc2136",
            ),
        };
        if let Some((field, _)) = theirs.iter().find(|(_, set)| *set) {
            return Err(format!("{field} is only used with provider = \"{other}\""));
        }
        let need = |field: &str, v: Option<String>| {
            v.ok_or_else(|| format!("provider = \"rfc2136\" needs {field}"))
        };
        let provider = match r.provider {
            DnsProviderName::Rfc2136 => DnsProvider::Rfc2136 {
                server: need("server", r.server)?,
                zone: r.zone,
                key_name: need("key_name", r.key_name)?,
                algorithm: r.algorithm.unwrap_or_else(|| "hmac-sha256".into()),
                secret_file: need("secret_file", r.secret_file)?,
            },
            DnsProviderName::Hook => DnsProvider::Hook {
                present: r
                    .present
                    .ok_or("provider = \"hook\" needs present = [\"/path/to/program\", ...]")?,
                cleanup: r
                    .cleanup
                    .ok_or("provider = \"hook\" needs cleanup = [\"/path/to/program\", ...]")?,
                timeout: r.hook_timeout.unwrap_or(60),
            },
        };
        Ok(Dns {
            name: r.name,
            provider,
            propagation_timeout: r.propagation_timeout,
            resolver: r.resolver,
        })
    }
}

/// `[[ca]]`: a private certificate authority portico creates and keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ca {
    /// Names it in sites, certificates and files.
    pub name: String,
    /// Lifetime of its certificate, in days.
    #[serde(default = "default_ca_days")]
    pub days: u32,
}

fn default_ca_days() -> u32 {
    3650
}

/// `[[oauth2]]`: an oauth2-proxy instance sites can be protected by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oauth2 {
    /// Names it in sites and locations.
    pub name: String,
    /// Where oauth2-proxy listens, e.g. `http://127.0.0.1:4180`.
    pub upstream: String,
    /// Cookie domain shared by subdomain-per-service sites (`.example.com`).
    pub cookie_domain: Option<String>,
    /// Pass oauth2-proxy's access token to backends
    /// (`X-Auth-Request-Access-Token`); off unless asked for.
    #[serde(default)]
    pub pass_access_token: bool,
    /// Extra headers the backends read, each filled from oauth2-proxy's
    /// answer: `{ "X-WEBAUTH-USER" = "user" }` for Grafana.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, IdentityField>,
}

/// What oauth2-proxy says about a signed-in user (its `X-Auth-Request-*`
/// answer headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityField {
    /// `X-Auth-Request-User`.
    User,
    /// `X-Auth-Request-Email`.
    Email,
    /// `X-Auth-Request-Groups`.
    Groups,
    /// `X-Auth-Request-Preferred-Username`.
    PreferredUsername,
    /// `X-Auth-Request-Access-Token` (needs `pass_access_token = true`).
    AccessToken,
}

impl IdentityField {
    /// Every field, in the order headers are rendered.
    pub const ALL: [IdentityField; 5] = [
        IdentityField::User,
        IdentityField::Email,
        IdentityField::Groups,
        IdentityField::PreferredUsername,
        IdentityField::AccessToken,
    ];

    /// The header oauth2-proxy answers with, and portico passes on under
    /// the same name.
    pub fn header(self) -> &'static str {
        match self {
            IdentityField::User => "X-Auth-Request-User",
            IdentityField::Email => "X-Auth-Request-Email",
            IdentityField::Groups => "X-Auth-Request-Groups",
            IdentityField::PreferredUsername => "X-Auth-Request-Preferred-Username",
            IdentityField::AccessToken => "X-Auth-Request-Access-Token",
        }
    }

    /// As written in a playbook.
    pub fn name(self) -> &'static str {
        match self {
            IdentityField::User => "user",
            IdentityField::Email => "email",
            IdentityField::Groups => "groups",
            IdentityField::PreferredUsername => "preferred-username",
            IdentityField::AccessToken => "access-token",
        }
    }
}

/// What a site's port-80 server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpMode {
    /// Port 80 redirects to HTTPS (ACME challenges still answered).
    #[default]
    Redirect,
    /// Port 80 serves the same locations as HTTPS.
    Serve,
}

/// How a site asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Ask for a certificate; locations decide with `require_client_cert`.
    #[default]
    Optional,
    /// Refuse the TLS handshake without a valid certificate.
    On,
}

/// `[site.client_auth]`: client certificates a site accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// The `[[ca]]` whose certificates are accepted.
    pub ca: String,
    /// Whether a certificate is required at the handshake.
    #[serde(default)]
    pub verify: Verify,
    /// The header the backend gets the verification result in (`SUCCESS`,
    /// `NONE`, `FAILED:...`).
    #[serde(default = "default_verify_header")]
    pub verify_header: String,
    /// The header the backend gets the certificate's subject DN in.
    #[serde(default = "default_dn_header")]
    pub dn_header: String,
}

fn default_verify_header() -> String {
    "X-SSL-Client-Verify".into()
}

fn default_dn_header() -> String {
    "X-SSL-Client-DN".into()
}

/// `[[site]]`: an HTTPS front end for some names, proxying to backends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// A short name for files and reports; default: the first server name.
    pub name: Option<String>,
    /// `{hostname}` stands for the host's name.
    pub server_names: Vec<String>,
    /// The `[[certificate]]` it serves.
    pub certificate: String,
    /// What port 80 does for its names.
    #[serde(default)]
    pub http: HttpMode,
    /// The status port 80 redirects with: 301 or 308.
    #[serde(default = "default_redirect_code")]
    pub redirect_code: u16,
    /// The HTTPS port.
    #[serde(default = "default_https_port", deserialize_with = "super::port::port")]
    pub listen: u16,
    /// `Strict-Transport-Security` max-age in seconds; 0 sends none.
    #[serde(default)]
    pub hsts: u64,
    /// Largest request body accepted (`"10m"`); default: nginx's, 1m.
    pub client_max_body_size: Option<String>,
    /// Compress text responses (`gzip on`, common text types).
    #[serde(default)]
    pub gzip: bool,
    /// Accept client certificates from a `[[ca]]`.
    pub client_auth: Option<ClientAuth>,
    /// Protect every location with this `[[oauth2]]`.
    pub oauth2: Option<String>,
    /// The URL prefixes it proxies, each to its backend.
    #[serde(default, rename = "location")]
    pub locations: Vec<Location>,
}

fn default_redirect_code() -> u16 {
    301
}

fn default_https_port() -> u16 {
    443
}

/// `[[site.location]]`: a URL prefix and the backend it is proxied to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// URL prefix, starting with `/`.
    pub path: String,
    /// Backend URL. A path on it replaces the location prefix
    /// (`path = "/newservice/"`, `proxy = "http://127.0.0.1:3001/"`).
    pub proxy: String,
    /// Pass websocket upgrades on (and keep the connection open for an hour).
    #[serde(default)]
    pub websocket: bool,
    /// Answer 403 unless the client certificate verified.
    #[serde(default)]
    pub require_client_cert: bool,
    /// Override the site's oauth2 for this location: a `[[oauth2]]` name, or `"none"`.
    pub oauth2: Option<String>,
}
