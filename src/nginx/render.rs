//! Pure rendering of nginx configuration from a playbook site.
//!
//! A protection holds on every port that serves a location: the port-80
//! server in `http = "serve"` mode renders the same oauth2 locations and
//! checks as HTTPS (client certificates cannot be asked for over plain HTTP,
//! so validation refuses that mode with `client_auth`). Identity headers are
//! set in every proxied location ([`super::identity`]).

use std::fmt::Write;

use super::identity;
use crate::facts::{Layout, Version};
use crate::playbook::url::{BackendUrl, Scheme};
use crate::playbook::{names, HttpMode, Location, Oauth2, Site, Verify};

/// First line of every file portico writes into nginx's tree.
pub const HEADER: &str =
    "# Managed by portico: changes here are overwritten by the next `portico apply`.\n";

/// What the rendering needs to know about the nginx it targets.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Where site files and snippets go.
    pub layout: Layout,
    /// `None` when nginx is not installed yet (render for the oldest supported).
    pub version: Option<Version>,
    /// False when the build lacks `--with-http_v2_module`.
    pub http2: bool,
    /// The OpenSSL nginx runs with, when known.
    pub openssl: Option<Version>,
}

impl Target {
    /// `http2 on;` exists from 1.25.1 and is a fatal error before it.
    fn http2_directive(&self) -> bool {
        self.version.is_some_and(|v| v >= Version(1, 25, 1))
    }

    /// The system's CA bundle, which HTTPS backends are verified against
    /// unless the playbook names another.
    pub fn ca_bundle(&self) -> &'static str {
        match self.layout {
            Layout::SitesEnabled => crate::paths::CA_BUNDLE_DEBIAN,
            Layout::ConfD => crate::paths::CA_BUNDLE_EL,
        }
    }

    /// `ssl_reject_handshake` exists from 1.19.4.
    pub fn reject_handshake(&self) -> bool {
        self.version.is_some_and(|v| v >= Version(1, 19, 4))
    }

    /// The flags of an HTTPS `listen` and the `http2 on;` line, if any.
    pub fn tls_listen(&self) -> (&'static str, bool) {
        let h2 = self.http2 && !self.http2_directive();
        (
            if h2 { "ssl http2" } else { "ssl" },
            self.http2 && self.http2_directive(),
        )
    }
}

/// Paths of the shared snippets a site includes.
pub struct Snippets {
    /// The TLS snippet (the profile's directives).
    pub tls: String,
    /// The proxy snippet (headers every proxied request carries).
    pub proxy: String,
    /// Every identity header set empty ([`identity_snippet`]).
    pub identity: String,
}

impl Snippets {
    /// The TLS snippet's path inside a generation.
    pub const TLS: &'static str = "snippets/portico-tls.conf";
    /// The proxy snippet's path inside a generation.
    pub const PROXY: &'static str = "snippets/portico-proxy.conf";
    /// The cleared-identity snippet's path inside a generation.
    pub const IDENTITY: &'static str = "snippets/portico-identity.conf";

    /// Where nginx reads the snippets: in the live generation, on every
    /// layout (the files that include them are in the same generation).
    pub fn for_target(_t: &Target) -> Self {
        let live = crate::paths::NGINX_LIVE;
        Snippets {
            tls: format!("{live}/{}", Self::TLS),
            proxy: format!("{live}/{}", Self::PROXY),
            identity: format!("{live}/{}", Self::IDENTITY),
        }
    }
}

/// TLS snippet: the profile's directives.
pub fn tls_snippet(directives: &[String]) -> String {
    let mut s = String::from(HEADER);
    for d in directives {
        s.push_str(d);
        s.push('\n');
    }
    s
}

/// Proxy snippet: what every proxied request carries, whatever the site.
/// `X-Forwarded-For` is the peer (or, behind trusted proxies, the client
/// the real_ip module found): a client's own chain is never passed on. The
/// scheme headers backends read to decide "secure" are set truthfully.
pub fn proxy_snippet() -> String {
    format!(
        "{HEADER}proxy_http_version 1.1;\n\
         proxy_set_header X-Real-IP $remote_addr;\n\
         proxy_set_header X-Forwarded-For $remote_addr;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header X-Forwarded-Scheme $scheme;\n\
         proxy_set_header X-Scheme $scheme;\n\
         proxy_set_header X-Forwarded-Ssl $https;\n\
         proxy_set_header X-Forwarded-Port $server_port;\n"
    )
}

/// Every identity header of the playbook set empty (nginx then sends
/// none): what a location neither oauth2 nor a client certificate fills
/// includes, in place of the same lines written out. `include` is
/// textual, so the headers are set in that location itself, as if
/// written there; at thousands of sites this is most of each file.
pub fn identity_snippet(headers: &[String]) -> String {
    let mut s = String::from(HEADER);
    for h in headers {
        let _ = writeln!(s, "proxy_set_header {h} \"\";");
    }
    s
}

/// http-context helpers, included by both layouts' nginx.conf through
/// `conf.d/*.conf`. Only a websocket handshake is passed on as an upgrade:
/// any other token (`h2c`) would turn the connection into a tunnel whose
/// later requests nginx never sees, identity headers and all. Otherwise
/// `Connection` is empty, which keeps upstream connections alive.
pub fn http_snippet() -> String {
    format!(
        "{HEADER}map $http_upgrade $portico_upgrade {{\n    default \"\";\n    \"~*^websocket$\" websocket;\n}}\n\
         map $portico_upgrade $portico_connection {{\n    default upgrade;\n    \"\" \"\";\n}}\n"
    )
}

/// What a site needs from the rest of the playbook.
pub struct SiteInput<'a> {
    /// The site to render.
    pub site: &'a Site,
    /// Path of its certificate chain.
    pub cert: &'a str,
    /// Path of its private key.
    pub key: &'a str,
    /// The `[[ca]]` files when the site has client_auth: (ca.crt, crl.pem).
    pub client_ca: Option<(String, String)>,
    /// The oauth2-proxy the site's locations use, if any.
    pub oauth2: Option<&'a Oauth2>,
    /// Where `/.well-known/acme-challenge/` is served from.
    pub webroot: &'a str,
    /// Every identity header of the playbook ([`crate::playbook::Playbook::identity_headers`]).
    pub identity_headers: &'a [String],
    /// `[proxy] trusted_proxies`: load balancers whose X-Forwarded-For counts.
    pub trusted_proxies: &'a [String],
    /// `[proxy] backend_ca`: what HTTPS backends are verified against.
    pub backend_ca: Option<&'a str>,
}

/// The header the challenge location adds, so portico can tell its own
/// port-80 server is live for a name before asking a CA to look.
pub const CHALLENGE_MARKER: &str = "X-Portico-Challenge";

/// A validated backend URL (validation ran [`BackendUrl::parse`] on it).
fn backend(url: &str) -> BackendUrl {
    BackendUrl::parse(url)
        .unwrap_or_else(|e| panic!("unvalidated backend URL reached rendering: {e}"))
}

/// Upstream blocks (keep-alive pools) for the site's plain-HTTP backends.
fn upstreams(site: &Site) -> String {
    let mut seen = Vec::new();
    let mut s = String::new();
    for l in &site.locations {
        let url = backend(&l.proxy);
        let server = url.host_port();
        if url.scheme != Scheme::Http || seen.contains(&server) {
            continue;
        }
        let _ = writeln!(
            s,
            "upstream {} {{\n    server {server};\n    keepalive 16;\n}}\n",
            names::upstream_name(&site.id(), &server)
        );
        seen.push(server);
    }
    s
}

/// Does this location require a signed-in oauth2 user?
fn oauth2_protects(site: &Site, l: &Location) -> bool {
    match l.oauth2.as_deref() {
        Some("none") => false,
        Some(_) => true,
        None => site.oauth2.is_some(),
    }
}

/// What stands in front of a location: a signed-in user, a verified client
/// certificate.
fn protection(site: &Site, oauth2: Option<&Oauth2>, l: &Location) -> (bool, bool) {
    (
        oauth2.is_some() && oauth2_protects(site, l),
        l.require_client_cert,
    )
}

/// Where a site protects some paths and not others, the protected prefixes
/// (most specific first) whose other spellings must be refused. nginx
/// matches prefixes case-sensitively and forwards the URI as sent: a
/// backend that ignores case, or reads `;` parameters or `\` as `/`, would
/// serve `/ADMIN/` or `/admin;x/` from behind an open `/`. `None` when the
/// whole site is protected alike.
fn path_guard<'a>(site: &'a Site, oauth2: Option<&Oauth2>) -> Option<Vec<&'a str>> {
    let levels: std::collections::BTreeSet<(bool, bool)> = site
        .locations
        .iter()
        .map(|l| protection(site, oauth2, l))
        .collect();
    if levels.len() < 2 {
        return None;
    }
    let mut paths: Vec<&str> = site
        .locations
        .iter()
        .filter(|l| l.path != "/" && protection(site, oauth2, l) != (false, false))
        .map(|l| l.path.as_str())
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    Some(paths)
}

/// The variable the path guard sets for a site.
fn guard_variable(site: &Site) -> String {
    format!("portico_guard_{}", names::nginx_ident(&site.id()))
}

/// A location prefix as a PCRE that matches it literally (validation
/// leaves only letters, digits and `/-._~!*+,=:@&()`).
fn literal_regex(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            '.' | '*' | '+' | '(' | ')' => format!("[{c}]"),
            c => c.to_string(),
        })
        .collect()
}

/// The http-level map behind the path guard: 1 for a path with `;`, `%`
/// (double encoding) or a backslash, or a protected prefix in another case.
fn path_guard_map(site: &Site, oauth2: Option<&Oauth2>) -> String {
    let Some(paths) = path_guard(site, oauth2) else {
        return String::new();
    };
    let mut s = format!(
        "# Other spellings of this site's protected paths, refused in its servers.\nmap $uri ${} {{\n    default 0;\n    \"~[;%\\x5c]\" 1;\n",
        guard_variable(site)
    );
    for p in paths {
        let re = literal_regex(p);
        let _ = writeln!(s, "    \"~^{re}\" 0;\n    \"~*^{re}\" 1;");
    }
    s.push_str("}\n\n");
    s
}

/// One server's view: its port and scheme decide the `Host` a backend sees.
struct Server<'a> {
    input: &'a SiteInput<'a>,
    snippets: Snippets,
    tls: bool,
    /// `$host:$server_port` where the port is not the scheme's default.
    host: &'static str,
    /// This server's own origin, for the sign-in redirect: never the
    /// client's `Host` header as sent.
    origin: String,
    /// The system CA bundle (when the playbook names none).
    target_ca_bundle: &'static str,
}

impl Server<'_> {
    /// The response headers every answer of this server carries. nginx
    /// drops inherited `add_header`s in a location that adds its own, so a
    /// location that does repeats them.
    fn security_headers(&self, s: &mut String, indent: &str) {
        let _ = writeln!(s, "{indent}add_header X-Frame-Options DENY always;");
        let _ = writeln!(
            s,
            "{indent}add_header X-Content-Type-Options nosniff always;"
        );
        if self.tls && self.input.site.hsts > 0 {
            let _ = writeln!(
                s,
                "{indent}add_header Strict-Transport-Security \"max-age={}\" always;",
                self.input.site.hsts
            );
        }
    }

    /// Directives every server of a site starts with; `proxies` when it
    /// serves the site's locations (not a port-80 redirect).
    fn common(&self, s: &mut String, proxies: bool) {
        let site = self.input.site;
        let _ = writeln!(s, "    server_name {};", site.server_names.join(" "));
        s.push_str("    server_tokens off;\n");
        if proxies && path_guard(site, self.input.oauth2).is_some() {
            let _ = writeln!(
                s,
                "    # Another spelling of a protected path (see the map above): refused.\n    if (${}) {{\n        return 400;\n    }}",
                guard_variable(site)
            );
        }
        if !self.input.trusted_proxies.is_empty() {
            for cidr in self.input.trusted_proxies {
                let _ = writeln!(s, "    set_real_ip_from {cidr};");
            }
            s.push_str("    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n");
        }
        if let Some(o) = self.input.oauth2.filter(|_| proxies) {
            // Empty for every request; only a successful auth_request fills them.
            for f in identity::passed_fields(o) {
                let _ = writeln!(s, "    set {} \"\";", identity::variable(f));
            }
            s.push_str("    set $portico_auth_cookie \"\";\n");
        }
        s.push('\n');
    }

    fn oauth2_locations(&self, s: &mut String, o: &Oauth2) {
        let url = backend(&o.upstream);
        let up = url.origin();
        let host = self.host;
        let mut cleared = self.cleared_identity("        ");
        cleared.push_str(&self.backend_tls(&url, "        "));
        let _ = writeln!(
            s,
            "    # oauth2-proxy: sign-in, callback and sign-out pages.\n    location /oauth2/ {{\n        proxy_pass {up};\n        proxy_set_header Host {host};\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-Host {host};\n        proxy_set_header X-Forwarded-For $remote_addr;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_set_header X-Scheme $scheme;\n        proxy_set_header X-Auth-Request-Redirect $request_uri;\n{cleared}    }}\n"
        );
        let _ = writeln!(
            s,
            "    # The check every protected request makes (subrequests only).\n    location = /oauth2/auth {{\n        internal;\n        proxy_pass {up};\n        proxy_set_header Host {host};\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-Host {host};\n        proxy_set_header X-Forwarded-For $remote_addr;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_set_header X-Forwarded-Uri $request_uri;\n        proxy_set_header Content-Length \"\";\n        proxy_pass_request_body off;\n{cleared}    }}\n"
        );
        let _ = writeln!(
            s,
            "    location @portico_oauth2_signin {{\n        return 302 /oauth2/start?rd={}$request_uri;\n    }}\n",
            self.origin
        );
    }

    /// An HTTPS backend's certificate is checked like a browser would:
    /// against the CA bundle, for the name in the URL (sent as SNI).
    fn backend_tls(&self, url: &BackendUrl, indent: &str) -> String {
        if url.scheme != Scheme::Https {
            return String::new();
        }
        let ca = self.input.backend_ca.unwrap_or(self.target_ca_bundle);
        format!(
            "{indent}proxy_ssl_server_name on;\n{indent}proxy_ssl_verify on;\n{indent}proxy_ssl_verify_depth 3;\n{indent}proxy_ssl_trusted_certificate {ca};\n"
        )
    }

    /// Every identity header set empty: what oauth2-proxy's own locations
    /// pass on.
    fn cleared_identity(&self, indent: &str) -> String {
        format!("{indent}include {};\n", self.snippets.identity)
    }

    /// The identity headers of one location: the shared snippet when every
    /// one is empty, else each written out with its value.
    fn identity(&self, s: &mut String, protecting: Option<&Oauth2>) {
        let set = identity::headers(self.input.identity_headers, self.input.site, protecting);
        if set.iter().all(|(_, v)| v == identity::EMPTY) {
            s.push_str(&self.cleared_identity("        "));
            return;
        }
        for (h, v) in set {
            let _ = writeln!(s, "        proxy_set_header {h} {v};");
        }
    }

    fn locations(&self, s: &mut String) {
        for (n, l) in self.input.site.locations.iter().enumerate() {
            if n > 0 {
                s.push('\n');
            }
            self.location(s, l);
        }
        // Without a `/` location nginx would serve its default web root.
        if !self.input.site.locations.iter().any(|l| l.path == "/") {
            s.push_str("\n    # No location for the rest: nothing is served.\n    location / {\n        return 404;\n    }\n");
        }
    }

    fn location(&self, s: &mut String, l: &Location) {
        let input = self.input;
        let site = input.site;
        let _ = writeln!(s, "    location {} {{", l.path);
        if l.require_client_cert {
            // Plain HTTP has no $ssl_client_verify: refused there as well.
            s.push_str(
                "        if ($ssl_client_verify != SUCCESS) {\n            return 403;\n        }\n",
            );
        }
        let protecting = input.oauth2.filter(|_| oauth2_protects(site, l));
        if let Some(o) = protecting {
            s.push_str("        auth_request /oauth2/auth;\n");
            s.push_str("        error_page 401 = @portico_oauth2_signin;\n");
            for line in identity::auth_request_sets(o) {
                let _ = writeln!(s, "        {line}");
            }
            // oauth2-proxy's session refresh: its Set-Cookie must reach the client.
            s.push_str(
                "        auth_request_set $portico_auth_cookie $upstream_http_set_cookie;\n",
            );
            s.push_str("        add_header Set-Cookie $portico_auth_cookie;\n");
            self.security_headers(s, "        ");
        }
        let url = backend(&l.proxy);
        let target = match url.scheme {
            Scheme::Http => format!(
                "http://{}{}",
                names::upstream_name(&site.id(), &url.host_port()),
                url.path
            ),
            Scheme::Https => l.proxy.clone(),
        };
        let _ = writeln!(s, "        proxy_pass {target};");
        s.push_str(&self.backend_tls(&url, "        "));
        let _ = writeln!(s, "        include {};", self.snippets.proxy);
        let _ = writeln!(s, "        proxy_set_header Host {};", self.host);
        let _ = writeln!(
            s,
            "        proxy_set_header X-Forwarded-Host {};",
            self.host
        );
        // Set here, in every location: never inherited, never client-supplied.
        self.identity(s, protecting);
        if l.websocket {
            // Only a websocket handshake (see the http snippet's maps).
            s.push_str("        proxy_set_header Upgrade $portico_upgrade;\n");
            s.push_str("        proxy_set_header Connection $portico_connection;\n");
            s.push_str("        proxy_read_timeout 1h;\n");
        } else {
            s.push_str("        proxy_set_header Connection \"\";\n");
        }
        s.push_str("    }\n");
    }
}

/// The port-80 server of a site: ACME challenges always, then a redirect to
/// HTTPS or the same locations, protected the same way. It needs no
/// certificate, so it is live before the first certificate is requested.
pub fn site_http(input: &SiteInput, t: &Target) -> String {
    let site = input.site;
    let server = Server {
        input,
        snippets: Snippets::for_target(t),
        tls: false,
        host: "$host",
        origin: "http://$host".into(),
        target_ca_bundle: t.ca_bundle(),
    };
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "# site {} (port 80)\n", site.id());
    // The upstream pools and the path guard live here, in the file that
    // exists from the start; the HTTPS server uses them too.
    s.push_str(&upstreams(site));
    s.push_str(&path_guard_map(site, input.oauth2));
    s.push_str("server {\n    listen 80;\n    listen [::]:80;\n");
    server.common(&mut s, site.http == HttpMode::Serve);
    let _ = writeln!(
        s,
        "    location ^~ /.well-known/acme-challenge/ {{\n        root {};\n        default_type text/plain;\n        add_header {CHALLENGE_MARKER} 1 always;\n    }}\n",
        input.webroot
    );
    match site.http {
        HttpMode::Redirect => {
            let _ = writeln!(
                s,
                "    location / {{\n        return {} https://$host{}$request_uri;\n    }}",
                site.redirect_code,
                if site.listen == 443 {
                    String::new()
                } else {
                    format!(":{}", site.listen)
                }
            );
        }
        HttpMode::Serve => {
            server.security_headers(&mut s, "    ");
            s.push('\n');
            if let Some(o) = input.oauth2 {
                server.oauth2_locations(&mut s, o);
            }
            server.locations(&mut s);
        }
    }
    s.push_str("}\n");
    s
}

/// The HTTPS server of a site.
pub fn site_https(input: &SiteInput, t: &Target) -> String {
    let site = input.site;
    let server = Server {
        input,
        snippets: Snippets::for_target(t),
        tls: true,
        // Behind a non-default port the backend needs it to build URLs.
        host: if site.listen == 443 {
            "$host"
        } else {
            "$host:$server_port"
        },
        origin: if site.listen == 443 {
            "https://$host".into()
        } else {
            format!("https://$host:{}", site.listen)
        },
        target_ca_bundle: t.ca_bundle(),
    };
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "# site {} (HTTPS)\n", site.id());
    let (flags, http2_on) = t.tls_listen();
    let _ = writeln!(
        s,
        "server {{\n    listen {0} {flags};\n    listen [::]:{0} {flags};",
        site.listen
    );
    if http2_on {
        s.push_str("    http2 on;\n");
    }
    server.common(&mut s, true);
    let _ = writeln!(
        s,
        "    ssl_certificate {};\n    ssl_certificate_key {};",
        input.cert, input.key
    );
    let _ = writeln!(s, "    include {};", server.snippets.tls);
    if site.client_auth.is_some() {
        // A session resumed from another site's cache would skip this
        // site's certificate check (CVE-2025-23419): a cache of its own.
        let _ = writeln!(
            s,
            "    ssl_session_cache shared:PorticoTLS_{}:1m;",
            names::nginx_ident(&site.id())
        );
    } else {
        s.push_str("    ssl_session_cache shared:PorticoTLS:10m;\n");
    }
    if let (Some(ca), Some((ca_cert, crl))) = (&site.client_auth, &input.client_ca) {
        let verify = match ca.verify {
            Verify::Optional => "optional",
            Verify::On => "on",
        };
        let _ = writeln!(
            s,
            "    ssl_client_certificate {ca_cert};\n    ssl_crl {crl};\n    ssl_verify_client {verify};\n    ssl_verify_depth 1;"
        );
    }
    s.push('\n');
    server.security_headers(&mut s, "    ");
    if let Some(size) = &site.client_max_body_size {
        let _ = writeln!(s, "    client_max_body_size {size};");
    }
    if site.gzip {
        s.push_str("    gzip on;\n    gzip_types text/plain text/css application/json application/javascript text/xml application/xml image/svg+xml;\n");
    }
    s.push('\n');
    if let Some(o) = input.oauth2 {
        server.oauth2_locations(&mut s, o);
    }
    server.locations(&mut s);
    s.push_str("}\n");
    s
}
