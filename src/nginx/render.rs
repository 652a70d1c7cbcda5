//! Pure rendering of nginx configuration from a playbook site.
//!
//! Identity headers (client-certificate verification, oauth2 user) are set by
//! nginx in every proxied location of every site, so a client can never send
//! its own `X-SSL-Client-Verify: SUCCESS` to a backend: a location that sets
//! any `proxy_set_header` of its own would otherwise drop inherited ones.

use std::fmt::Write;

use crate::facts::{Layout, Version};
use crate::playbook::{ClientAuth, HttpMode, Location, Oauth2, Site, Verify};

/// First line of every file portico writes into nginx's tree.
pub const HEADER: &str =
    "# Managed by portico: changes here are overwritten by the next `portico apply`.\n";

/// Where ACME HTTP-01 challenges are served from on port 80.
pub const DEFAULT_WEBROOT: &str = "/var/lib/portico/acme-challenge";

/// What the rendering needs to know about the nginx it targets.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub layout: Layout,
    /// `None` when nginx is not installed yet (render for the oldest supported).
    pub version: Option<Version>,
    /// False when the build lacks `--with-http_v2_module`.
    pub http2: bool,
    /// The OpenSSL nginx runs with, when known.
    pub openssl: Option<Version>,
}

impl Target {
    pub fn snippet_dir(&self) -> &'static str {
        match self.layout {
            Layout::SitesEnabled => "/etc/nginx/snippets",
            Layout::ConfD => "/etc/nginx/portico",
        }
    }

    /// `http2 on;` exists from 1.25.1 and is a fatal error before it.
    fn http2_directive(&self) -> bool {
        self.version.is_some_and(|v| v >= Version(1, 25, 1))
    }
}

/// Paths of the shared snippets a site includes.
pub struct Snippets {
    pub tls: String,
    pub proxy: String,
}

impl Snippets {
    pub fn for_target(t: &Target) -> Self {
        let dir = t.snippet_dir();
        Snippets {
            tls: format!("{dir}/portico-tls.conf"),
            proxy: format!("{dir}/portico-proxy.conf"),
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

/// Proxy snippet: forwarding headers and keep-alive to the upstreams.
pub fn proxy_snippet() -> String {
    format!(
        "{HEADER}proxy_http_version 1.1;\n\
         proxy_set_header Connection $portico_connection;\n\
         proxy_set_header Host $host;\n\
         proxy_set_header X-Real-IP $remote_addr;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header X-Forwarded-Host $host;\n"
    )
}

/// http-context helpers, included by both layouts' nginx.conf through
/// `conf.d/*.conf`: `Connection` is `upgrade` for websocket handshakes and
/// empty otherwise, which keeps upstream connections alive.
pub fn http_snippet() -> String {
    format!(
        "{HEADER}map $http_upgrade $portico_connection {{\n    default upgrade;\n    ''      '';\n}}\n"
    )
}

/// What a site needs from the rest of the playbook.
pub struct SiteInput<'a> {
    pub site: &'a Site,
    pub cert: &'a str,
    pub key: &'a str,
    /// The `[[ca]]` files when the site has client_auth: (ca.crt, crl.pem).
    pub client_ca: Option<(String, String)>,
    /// The oauth2-proxy the site's locations use, if any.
    pub oauth2: Option<&'a Oauth2>,
    /// Where `/.well-known/acme-challenge/` is served from.
    pub webroot: &'a str,
}

/// The header the challenge location adds, so portico can tell its own
/// port-80 server is live for a name before asking a CA to look.
pub const CHALLENGE_MARKER: &str = "X-Portico-Challenge";

/// A backend URL split for nginx: `http://127.0.0.1:3001/x` →
/// ("http", "127.0.0.1:3001", "/x").
fn split_url(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    (scheme, authority, path)
}

/// A name nginx accepts for an upstream block, unique per site and backend.
fn upstream_name(site_id: &str, authority: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("portico_{}_{}", clean(site_id), clean(authority))
}

/// Upstream blocks (keep-alive pools) for the site's plain-HTTP backends.
fn upstreams(site: &Site) -> String {
    let mut seen = Vec::new();
    let mut s = String::new();
    for l in &site.locations {
        let (scheme, authority, _) = split_url(&l.proxy);
        if scheme != "http" || seen.contains(&authority) {
            continue;
        }
        seen.push(authority);
        let server = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let _ = writeln!(
            s,
            "upstream {} {{\n    server {server};\n    keepalive 16;\n}}\n",
            upstream_name(&site.id(), authority)
        );
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

/// The names of the two verification headers for this site.
fn verify_headers(site: &Site) -> (String, String) {
    match &site.client_auth {
        Some(ClientAuth {
            verify_header,
            dn_header,
            ..
        }) => (verify_header.clone(), dn_header.clone()),
        None => ("X-SSL-Client-Verify".into(), "X-SSL-Client-DN".into()),
    }
}

/// The port-80 server of a site: ACME challenges always, then a redirect to
/// HTTPS or the same locations. It needs no certificate, so it is live before
/// the first certificate is requested.
pub fn site_http(input: &SiteInput, t: &Target) -> String {
    let site = input.site;
    let snippets = Snippets::for_target(t);
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "# site {} (port 80)\n", site.id());
    s.push_str(&upstreams(site));
    s.push_str("server {\n    listen 80;\n    listen [::]:80;\n");
    let _ = writeln!(s, "    server_name {};", site.server_names.join(" "));
    identity_defaults(&mut s);
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
        HttpMode::Serve => locations(&mut s, input, &snippets),
    }
    s.push_str("}\n");
    s
}

/// The HTTPS server of a site.
pub fn site_https(input: &SiteInput, t: &Target) -> String {
    let site = input.site;
    let snippets = Snippets::for_target(t);
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "# site {} (HTTPS)\n", site.id());
    let h2 = t.http2 && !t.http2_directive();
    let flags = if h2 { "ssl http2" } else { "ssl" };
    let _ = writeln!(
        s,
        "server {{\n    listen {0} {flags};\n    listen [::]:{0} {flags};",
        site.listen
    );
    if t.http2 && t.http2_directive() {
        s.push_str("    http2 on;\n");
    }
    let _ = writeln!(s, "    server_name {};", site.server_names.join(" "));
    identity_defaults(&mut s);
    let _ = writeln!(
        s,
        "    ssl_certificate {};\n    ssl_certificate_key {};",
        input.cert, input.key
    );
    let _ = writeln!(s, "    include {};", snippets.tls);
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
    s.push_str("\n    add_header X-Frame-Options DENY always;\n");
    s.push_str("    add_header X-Content-Type-Options nosniff always;\n");
    if site.hsts > 0 {
        let _ = writeln!(
            s,
            "    add_header Strict-Transport-Security \"max-age={}\" always;",
            site.hsts
        );
    }
    if let Some(size) = &site.client_max_body_size {
        let _ = writeln!(s, "    client_max_body_size {size};");
    }
    if site.gzip {
        s.push_str("    gzip on;\n    gzip_types text/plain text/css application/json application/javascript text/xml application/xml image/svg+xml;\n");
    }
    s.push('\n');
    if let Some(o) = input.oauth2 {
        oauth2_locations(&mut s, o);
    }
    locations(&mut s, input, &snippets);
    s.push_str("}\n");
    s
}

/// Identity variables start empty in every server; only a successful
/// auth_request fills them.
fn identity_defaults(s: &mut String) {
    s.push_str("    set $portico_auth_user \"\";\n    set $portico_auth_email \"\";\n\n");
}

fn oauth2_locations(s: &mut String, o: &Oauth2) {
    let up = o.upstream.trim_end_matches('/');
    let _ = writeln!(
        s,
        "    # oauth2-proxy: sign-in, callback and sign-out pages.\n    location /oauth2/ {{\n        proxy_pass {up};\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_set_header X-Auth-Request-Redirect $request_uri;\n    }}\n"
    );
    let _ = writeln!(
        s,
        "    # The check every protected request makes (subrequests only).\n    location = /oauth2/auth {{\n        internal;\n        proxy_pass {up};\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_set_header X-Forwarded-Uri $request_uri;\n        proxy_set_header Content-Length \"\";\n        proxy_pass_request_body off;\n    }}\n"
    );
    s.push_str("    location @portico_oauth2_signin {\n        return 302 /oauth2/start?rd=$scheme://$http_host$request_uri;\n    }\n\n");
}

fn locations(s: &mut String, input: &SiteInput, snippets: &Snippets) {
    for (n, l) in input.site.locations.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        location(s, input, l, snippets);
    }
}

fn location(s: &mut String, input: &SiteInput, l: &Location, snippets: &Snippets) {
    let site = input.site;
    let _ = writeln!(s, "    location {} {{", l.path);
    if l.require_client_cert {
        s.push_str(
            "        if ($ssl_client_verify != SUCCESS) {\n            return 403;\n        }\n",
        );
    }
    if input.oauth2.is_some() && oauth2_protects(site, l) {
        s.push_str("        auth_request /oauth2/auth;\n");
        s.push_str("        error_page 401 = @portico_oauth2_signin;\n");
        s.push_str(
            "        auth_request_set $portico_auth_user $upstream_http_x_auth_request_user;\n",
        );
        s.push_str(
            "        auth_request_set $portico_auth_email $upstream_http_x_auth_request_email;\n",
        );
    }
    let (scheme, authority, path) = split_url(&l.proxy);
    let target = if scheme == "http" {
        format!("http://{}{path}", upstream_name(&site.id(), authority))
    } else {
        l.proxy.clone()
    };
    let _ = writeln!(s, "        proxy_pass {target};");
    let _ = writeln!(s, "        include {};", snippets.proxy);
    // Set here, in every location: never inherited, never client-supplied.
    let (verify, dn) = verify_headers(site);
    let _ = writeln!(s, "        proxy_set_header {verify} $ssl_client_verify;");
    let _ = writeln!(s, "        proxy_set_header {dn} $ssl_client_s_dn;");
    s.push_str("        proxy_set_header X-Auth-Request-User $portico_auth_user;\n");
    s.push_str("        proxy_set_header X-Auth-Request-Email $portico_auth_email;\n");
    if l.websocket {
        s.push_str("        proxy_set_header Upgrade $http_upgrade;\n");
        s.push_str("        proxy_read_timeout 1h;\n");
    }
    s.push_str("    }\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_for_upstreams() {
        assert_eq!(
            split_url("http://127.0.0.1:3001/"),
            ("http", "127.0.0.1:3001", "/")
        );
        assert_eq!(split_url("http://app"), ("http", "app", ""));
        assert_eq!(
            split_url("https://[::1]:8443/x/y"),
            ("https", "[::1]:8443", "/x/y")
        );
        assert_eq!(
            upstream_name("api.example.com", "127.0.0.1:3001"),
            "portico_api_example_com_127_0_0_1_3001"
        );
    }
}
