//! The playbook's TOML shape. Unknown fields are errors everywhere, so a typo
//! never silently falls back to a default.

use serde::Deserialize;

/// A whole playbook (`version = 1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Schema version; only 1 exists.
    pub version: i64,
    #[serde(default)]
    pub firewall: Firewall,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub renewal: Renewal,
    /// The ACME account used by every `source = "acme"` certificate.
    pub acme: Option<Acme>,
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<Certificate>,
    /// Private certificate authorities (client certificates, internal TLS).
    #[serde(default, rename = "ca")]
    pub cas: Vec<Ca>,
    /// oauth2-proxy instances sites can be protected by.
    #[serde(default, rename = "oauth2")]
    pub oauth2: Vec<Oauth2>,
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    /// Where clients come from when the host sits behind a load balancer.
    #[serde(default)]
    pub proxy: ProxySettings,
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
    /// The TCP ports the firewall opens: the listed ones, or 80 (redirects and
    /// ACME challenges) plus every site's HTTPS port, so a site on 8443 is
    /// reachable without a second setting to keep in step.
    pub fn firewall_ports(&self) -> Vec<i64> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    /// The one active on the host; nothing when none is.
    #[default]
    Auto,
    Ufw,
    Firewalld,
    /// iptables and ip6tables.
    Iptables,
    /// Native nftables, as `nftables.service` loads it.
    Nftables,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    #[serde(default)]
    pub backend: FirewallBackend,
    /// TCP ports to open; default: 80 and every site's `listen` port.
    #[serde(default)]
    pub ports: Option<Vec<i64>>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DhGroup {
    #[default]
    Ffdhe2048,
    Ffdhe3072,
    Ffdhe4096,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub profile: Profile,
    /// RFC 7919 group written as the dhparam file (profiles with DHE only).
    #[serde(default)]
    pub dhparam: DhGroup,
    /// Generate fresh parameters with openssl instead (seconds of CPU, no gain).
    #[serde(default)]
    pub generate_dhparam: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// `"daily"` (a random minute fixed per host) or a cron expression with
    /// seconds: `"0 17 3 * * *"`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Renew when less than this fraction of the lifetime remains.
    #[serde(default = "default_fraction")]
    pub remaining_fraction: f64,
}

fn default_schedule() -> String {
    "daily".into()
}

fn default_fraction() -> f64 {
    1.0 / 3.0
}

impl Default for Renewal {
    fn default() -> Self {
        Renewal {
            schedule: default_schedule(),
            remaining_fraction: default_fraction(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// `letsencrypt`, `letsencrypt-staging` or a directory URL.
    #[serde(default = "default_directory")]
    pub directory: String,
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
}

fn default_directory() -> String {
    "letsencrypt".into()
}

fn default_webroot() -> String {
    "/var/lib/portico/acme-challenge".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eab {
    pub kid: String,
    /// File holding the base64url HMAC key (kept out of the playbook).
    pub hmac_key_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
    Acme,
    SelfSigned,
    /// Issued by a `[[ca]]` of this playbook.
    Ca,
    /// Files you provide; portico validates them.
    Files,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    #[default]
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub name: String,
    pub source: CertSource,
    /// Subject alternative names; default: every server name of the sites using it.
    pub names: Option<Vec<String>>,
    #[serde(default)]
    pub key: KeyType,
    /// Lifetime of self-signed and CA-issued certificates.
    pub days: Option<i64>,
    /// The `[[ca]]` that issues it (`source = "ca"`).
    pub ca: Option<String>,
    /// `source = "files"`: full chain, leaf first.
    pub cert_file: Option<String>,
    /// `source = "files"`: the private key.
    pub key_file: Option<String>,
    /// ACME: keep the same key across renewals (for key pinning setups).
    #[serde(default)]
    pub reuse_key: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ca {
    pub name: String,
    #[serde(default = "default_ca_days")]
    pub days: i64,
}

fn default_ca_days() -> i64 {
    3650
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oauth2 {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpMode {
    /// Port 80 redirects to HTTPS (ACME challenges still answered).
    #[default]
    Redirect,
    /// Port 80 serves the same locations as HTTPS.
    Serve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Ask for a certificate; locations decide with `require_client_cert`.
    #[default]
    Optional,
    /// Refuse the TLS handshake without a valid certificate.
    On,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// The `[[ca]]` whose certificates are accepted.
    pub ca: String,
    #[serde(default)]
    pub verify: Verify,
    #[serde(default = "default_verify_header")]
    pub verify_header: String,
    #[serde(default = "default_dn_header")]
    pub dn_header: String,
}

fn default_verify_header() -> String {
    "X-SSL-Client-Verify".into()
}

fn default_dn_header() -> String {
    "X-SSL-Client-DN".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// A short name for files and reports; default: the first server name.
    pub name: Option<String>,
    /// `{hostname}` stands for the host's name.
    pub server_names: Vec<String>,
    pub certificate: String,
    #[serde(default)]
    pub http: HttpMode,
    #[serde(default = "default_redirect_code")]
    pub redirect_code: i64,
    #[serde(default = "default_https_port")]
    pub listen: i64,
    /// `Strict-Transport-Security` max-age in seconds; 0 sends none.
    #[serde(default)]
    pub hsts: i64,
    pub client_max_body_size: Option<String>,
    #[serde(default)]
    pub gzip: bool,
    pub client_auth: Option<ClientAuth>,
    /// Protect every location with this `[[oauth2]]`.
    pub oauth2: Option<String>,
    #[serde(default, rename = "location")]
    pub locations: Vec<Location>,
}

fn default_redirect_code() -> i64 {
    301
}

fn default_https_port() -> i64 {
    443
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// URL prefix, starting with `/`.
    pub path: String,
    /// Backend URL. A path on it replaces the location prefix
    /// (`path = "/newservice/"`, `proxy = "http://127.0.0.1:3001/"`).
    pub proxy: String,
    #[serde(default)]
    pub websocket: bool,
    /// Answer 403 unless the client certificate verified.
    #[serde(default)]
    pub require_client_cert: bool,
    /// Override the site's oauth2 for this location: a `[[oauth2]]` name, or `"none"`.
    pub oauth2: Option<String>,
}
