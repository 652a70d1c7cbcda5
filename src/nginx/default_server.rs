//! Strangers get nothing: on every port portico listens on, a request for
//! a name no site serves, or a TLS handshake without SNI or with an unknown
//! one, lands in a catch-all `default_server` that answers nothing. Without
//! it nginx hands such requests to the first site on the port, with that
//! site's certificate and backend.

use std::fmt::Write;

use super::render::{Snippets, Target, HEADER};

/// What the catch-all on one port needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchAll {
    /// The port it listens on.
    pub port: u16,
    /// An HTTPS port (the sites' `listen`); port 80 is plain.
    pub tls: bool,
    /// Render the IPv4 (`*:PORT`) socket; false where a server outside
    /// portico already is the default there.
    pub v4: bool,
    /// Render the IPv6 (`[::]:PORT`) socket; false likewise.
    pub v6: bool,
    /// A certificate to complete handshakes with instead of refusing them:
    /// a site on this port serves an IP address, which clients reach
    /// without SNI (`(cert, key)`).
    pub cert: Option<(String, String)>,
}

/// The catch-all servers. `throwaway` is the certificate for TLS ports on
/// an nginx without `ssl_reject_handshake` (before 1.19.4): it completes
/// the handshake and the request gets nothing.
pub fn render(catch_alls: &[CatchAll], t: &Target, throwaway: Option<(&str, &str)>) -> String {
    let mut s = String::from(HEADER);
    s.push_str(
        "# Requests for names no site here serves, and TLS handshakes without SNI or\n\
         # with an unknown name, get nothing (444 closes the connection unanswered).\n",
    );
    let snippets = Snippets::for_target(t);
    for c in catch_alls.iter().filter(|c| c.v4 || c.v6) {
        let (flags, http2_on) = if c.tls { t.tls_listen() } else { ("", false) };
        let flags = if flags.is_empty() {
            "default_server".to_string()
        } else {
            format!("{flags} default_server")
        };
        s.push_str("\nserver {\n");
        if c.v4 {
            let _ = writeln!(s, "    listen {} {flags};", c.port);
        }
        if c.v6 {
            let _ = writeln!(s, "    listen [::]:{} {flags};", c.port);
        }
        if http2_on && c.cert.is_some() {
            s.push_str("    http2 on;\n");
        }
        s.push_str("    server_name \"\";\n    server_tokens off;\n");
        if c.tls {
            // The default server's TLS settings govern every handshake on
            // the socket: the site profile applies here too.
            let _ = writeln!(s, "    include {};", snippets.tls);
            let own = c.cert.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
            match own.or(throwaway) {
                Some((cert, key)) => {
                    let _ = writeln!(
                        s,
                        "    ssl_certificate {cert};\n    ssl_certificate_key {key};"
                    );
                }
                None => s.push_str("    ssl_reject_handshake on;\n"),
            }
        }
        s.push_str("    return 444;\n}\n");
    }
    s
}
