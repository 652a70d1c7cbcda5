//! Pure rendering of nginx configuration from a playbook site.

use std::fmt::Write;

use crate::facts::{Layout, Version};
use crate::playbook::{HttpMode, Location, Site};

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

/// Proxy snippet: the forwarding headers every proxied location sets.
pub fn proxy_snippet() -> String {
    format!(
        "{HEADER}proxy_set_header Host $host;\n\
         proxy_set_header X-Real-IP $remote_addr;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header X-Forwarded-Host $host;\n"
    )
}

/// http-context helpers (the websocket `Connection` map), included by both
/// layouts' nginx.conf through `conf.d/*.conf`.
pub fn http_snippet() -> String {
    format!(
        "{HEADER}map $http_upgrade $portico_connection_upgrade {{\n    default upgrade;\n    ''      close;\n}}\n"
    )
}

/// The files of one site: certificate paths are given, everything else is
/// derived from the site and the target.
pub fn site(site: &Site, cert: &str, key: &str, t: &Target) -> String {
    let snippets = Snippets::for_target(t);
    let names = site.server_names.join(" ");
    let mut s = String::from(HEADER);
    let _ = writeln!(s, "# site {}\n", site.id());

    // Port 80: ACME challenges always; then redirect or serve.
    s.push_str("server {\n    listen 80;\n    listen [::]:80;\n");
    let _ = writeln!(s, "    server_name {names};\n");
    let _ = writeln!(
        s,
        "    location ^~ /.well-known/acme-challenge/ {{\n        root {DEFAULT_WEBROOT};\n        default_type text/plain;\n    }}\n"
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
        HttpMode::Serve => locations(&mut s, site, &snippets),
    }
    s.push_str("}\n\n");

    // HTTPS.
    let h2 = t.http2 && !t.http2_directive();
    let listen_flags = if h2 { "ssl http2" } else { "ssl" };
    let _ = writeln!(
        s,
        "server {{\n    listen {} {listen_flags};\n    listen [::]:{} {listen_flags};",
        site.listen, site.listen
    );
    if t.http2 && t.http2_directive() {
        s.push_str("    http2 on;\n");
    }
    let _ = writeln!(s, "    server_name {names};\n");
    let _ = writeln!(
        s,
        "    ssl_certificate {cert};\n    ssl_certificate_key {key};"
    );
    let _ = writeln!(s, "    include {};\n", snippets.tls);
    s.push_str("    add_header X-Frame-Options DENY always;\n");
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
    locations(&mut s, site, &snippets);
    s.push_str("}\n");
    s
}

fn locations(s: &mut String, site: &Site, snippets: &Snippets) {
    for (n, l) in site.locations.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        location(s, l, snippets);
    }
}

fn location(s: &mut String, l: &Location, snippets: &Snippets) {
    let _ = writeln!(s, "    location {} {{", l.path);
    let _ = writeln!(s, "        proxy_pass {};", l.proxy);
    let _ = writeln!(s, "        include {};", snippets.proxy);
    if l.websocket {
        s.push_str("        proxy_http_version 1.1;\n");
        s.push_str("        proxy_set_header Upgrade $http_upgrade;\n");
        s.push_str("        proxy_set_header Connection $portico_connection_upgrade;\n");
    }
    s.push_str("    }\n");
}
