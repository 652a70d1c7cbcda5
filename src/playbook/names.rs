//! The rules for every name that becomes part of a file name or an nginx
//! directive, and the names portico derives from them (site files, upstream
//! blocks). Validation and rendering both call these, so what is checked is
//! exactly what is written.

use core::net::IpAddr;

/// Headers a client could send to pose as someone, to fake where it comes
/// from, or to make a backend route the request elsewhere. Every location
/// sets each of them itself (from oauth2-proxy's answer or the TLS
/// handshake) or clears it, so a backend never sees a client's own. A
/// deny-list by nature: `[proxy] clear_headers` adds names a backend reads.
pub const IDENTITY_HEADERS: &[&str] = &[
    // Who the user is (oauth2-proxy and the usual reverse-proxy auth names).
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Access-Token",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Access-Token",
    "X-Forwarded-Uid",
    "X-User",
    "X-Email",
    "X-Auth-User",
    "X-Authenticated-User",
    "X-Proxy-User",
    "Remote-User",
    "X-Remote-User",
    "X-Remote-Email",
    "X-Remote-Group",
    "X-WEBAUTH-USER",
    // What a client certificate said.
    "X-SSL-Client-Verify",
    "X-SSL-Client-DN",
    "X-SSL-Client-S-DN",
    "X-SSL-Client-Cert",
    "X-SSL-Client-Serial",
    "X-SSL-Client-Fingerprint",
    "X-Client-Cert",
    "X-Forwarded-Client-Cert",
    // Where the client is (X-Forwarded-For and X-Real-IP are set, not cleared).
    "Forwarded",
    "Forwarded-For",
    "True-Client-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "X-Originating-IP",
    "X-Original-Forwarded-For",
    "CF-Connecting-IP",
    "X-Forwarded-Server",
    "X-Host",
    // What the request was (some frameworks route by these).
    "X-Original-URL",
    "X-Original-URI",
    "X-Rewrite-URL",
    "X-Forwarded-Prefix",
];

/// Headers portico sets in every proxied request for its own purposes; a
/// playbook cannot give them another meaning.
pub const RESERVED_HEADERS: &[&str] = &[
    "Host",
    "Connection",
    "Upgrade",
    "Content-Length",
    "Transfer-Encoding",
    "Cookie",
    "X-Real-IP",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Scheme",
    "X-Forwarded-Ssl",
    "X-Scheme",
    "X-Forwarded-Uri",
    "X-Auth-Request-Redirect",
];

/// Why `name` is not a DNS name (RFC 1123 labels; `*.` in front only when
/// `wildcard`), or `None` when it is one.
pub fn dns_name_problem(name: &str, wildcard: bool) -> Option<&'static str> {
    let bare = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Some("a wildcard is not allowed here"),
        None => name,
    };
    if bare.is_empty() || bare.len() > 253 {
        return Some("a DNS name has 1 to 253 characters");
    }
    let labels_ok = bare.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !labels_ok {
        return Some("labels are letters, digits and inner '-', separated by single dots");
    }
    None
}

/// A server name: a DNS name (wildcard allowed) or an IP address.
pub fn server_name_ok(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok() || dns_name_problem(name, true).is_none()
}

/// A DNS name without wildcard (a zone).
pub fn dns_name_ok(name: &str) -> bool {
    dns_name_problem(name, false).is_none()
}

/// A TSIG key name: a DNS name whose labels may also hold `_` (BIND's
/// `tsig-keygen` takes any), at most 253 characters.
pub fn key_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Names of certificates, CAs and oauth2-proxies, which become directory
/// and file names: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters, so
/// never `.`, `..` or a hidden file.
pub fn object_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// An absolute path that may stand unquoted in an nginx directive or a unit
/// file: `/` then letters, digits and `._+@:~-`, no empty, `.` or `..`
/// segment (so no traversal and no surprise in a diff).
pub fn safe_path_problem(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("not an absolute path");
    };
    if path.len() > 1024 {
        return Some("longer than 1024 characters");
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+@:~-".contains(c))
    {
        return Some("only letters, digits, '/' and '._+@:~-' are allowed");
    }
    if rest.split('/').enumerate().any(|(i, seg)| {
        matches!(seg, "." | "..") || (seg.is_empty() && i + 1 < rest.split('/').count())
    }) {
        return Some("no empty, '.' or '..' segments");
    }
    None
}

/// A URL path as it may appear after a backend's authority: `/`, then RFC
/// 3986 path characters that nginx reads literally. Not `;{}#$"'\`,
/// whitespace or control characters.
pub fn url_path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 1024
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~%!*+,=:@&()".contains(c))
}

/// Why a `location` prefix would never match what it looks like it
/// protects, if it would not. nginx matches locations against the decoded,
/// slash-merged, dot-resolved URI, so a prefix with `%`, `//`, `/./` or
/// `/../` matches nothing, and its requests fall to another location.
pub fn location_path_problem(path: &str) -> Option<&'static str> {
    if !url_path_ok(path) {
        return Some("'/' then letters, digits and /-._~!*+,=:@&() only");
    }
    if path.contains('%') {
        return Some("nginx matches the decoded path: write the characters themselves, not %XX");
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    if segments
        .iter()
        .enumerate()
        .any(|(i, s)| matches!(*s, "." | "..") || (s.is_empty() && i != last))
    {
        return Some("nginx merges '//' and resolves '.' and '..' before matching: no empty, '.' or '..' segments");
    }
    None
}

/// Why `dir` cannot be the ACME webroot, if it cannot: the renewal daemon
/// may write there, so never `/`, a top-level directory or a system tree.
pub fn webroot_problem(dir: &str) -> Option<&'static str> {
    let depth = dir.trim_end_matches('/').matches('/').count();
    const SYSTEM: [&str; 11] = [
        "/etc", "/usr", "/boot", "/dev", "/proc", "/sys", "/run", "/bin", "/sbin", "/lib", "/lib64",
    ];
    if depth < 2 {
        return Some("the daemon may write there: give a directory of its own, at least two levels deep (/srv/acme)");
    }
    if SYSTEM
        .iter()
        .any(|s| dir == *s || dir.starts_with(&format!("{s}/")))
    {
        return Some("the daemon may write there: not under a system directory");
    }
    None
}

/// Why `file` cannot be the metrics file, if it cannot: a safe absolute
/// path named `*.prom` (all node_exporter's textfile collector reads), in
/// a directory at least two levels deep that is neither a system tree nor
/// portico's own (the daemon may write there).
pub fn metrics_file_problem(file: &str) -> Option<&'static str> {
    if let Some(why) = safe_path_problem(file) {
        return Some(why);
    }
    let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
    if !name.ends_with(".prom") || name.starts_with('.') || name.len() <= ".prom".len() {
        return Some("node_exporter's textfile collector reads only files named NAME.prom");
    }
    if webroot_problem(dir).is_some() {
        return Some("the daemon writes it: give a directory of its own, at least two levels deep and not under a system directory (/var/lib/prometheus/node-exporter)");
    }
    let under = |roots: &[&str]| {
        roots
            .iter()
            .any(|r| dir == *r || dir.starts_with(&format!("{r}/")))
    };
    if under(&[
        crate::paths::STATE_DIR,
        crate::paths::CERT_DIR,
        crate::paths::CONFIG_DIR,
    ]) {
        return Some("not in portico's own directories: node_exporter could not read it there, and remove --purge would take it");
    }
    // The daemon's sandbox has a private /tmp and no /home or /root; a web
    // root would publish the file.
    if under(&["/tmp", "/var/tmp", "/home", "/root", "/var/www"]) {
        return Some("not under /tmp, /var/tmp, /home, /root (the renewal daemon's sandbox hides them) or /var/www (a web server would publish it)");
    }
    None
}

/// A name for nginx identifiers (variables, zones) derived from a site:
/// lower case, every other character `_`. Like [`upstream_name`] it folds,
/// so validation refuses two sites that fold to one.
pub fn nginx_ident(site_id: &str) -> String {
    site_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// An HTTP header name portico may set: letters, digits, `-` (RFC 9110
/// tokens narrowed to what every proxy passes on), at most 64 characters.
pub fn header_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
}

/// A site's identifier, from its `name` or its first server name, as used
/// in file names and reports (`*` becomes `wildcard`).
pub fn site_id(name: Option<&str>, server_names: &[String]) -> String {
    name.or(server_names.first().map(String::as_str))
        .unwrap_or("site")
        .replace('*', "wildcard")
}

/// The stem of a site's files: `portico-ID` (`.http.conf`, `.https.conf`).
pub fn site_file_stem(site_id: &str) -> String {
    format!("portico-{site_id}")
}

/// The nginx `upstream` name for one backend of one site. Lower-cased with
/// every other character made `_`, so two different (site, backend) pairs
/// can map to one name; validation refuses that.
pub fn upstream_name(site_id: &str, host_port: &str) -> String {
    format!(
        "portico_{}_{}",
        nginx_ident(site_id),
        nginx_ident(host_port)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for ok in ["a", "example.com", "x-1.example.com", "EXAMPLE.com"] {
            assert_eq!(dns_name_problem(ok, false), None, "{ok}");
        }
        assert_eq!(dns_name_problem("*.example.com", true), None);
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a_b.c",
            "a b",
            "a\nserver {",
            "a/b",
            ".",
            "..",
            "*.example.com",
        ] {
            assert!(dns_name_problem(bad, false).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn object_names() {
        for ok in ["clients", "a.b-c_d", "9"] {
            assert!(object_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "-x",
            "_x",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!object_name_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn safe_paths() {
        for ok in ["/", "/var/www/acme", "/etc/ssl/x.pem", "/srv/a+b@c:d~e-f_g"] {
            assert_eq!(safe_path_problem(ok), None, "{ok}");
        }
        for bad in [
            "relative",
            "/a/../etc",
            "/a/./b",
            "/a//b",
            "/a;b",
            "/a b",
            "/a{b}",
            "/a#b",
            "/a$b",
            "/a\"b",
        ] {
            assert!(safe_path_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn location_paths_that_would_never_match() {
        for ok in ["/", "/api/", "/a.b/c", "/x", "/a/.well/"] {
            assert_eq!(location_path_problem(ok), None, "{ok}");
        }
        for bad in [
            "/a%20b/", "/a//b/", "//", "/b/../s/", "/./x", "/a/..", "/a/.", "x", "/a;b",
        ] {
            assert!(location_path_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn webroots() {
        for ok in [
            "/var/lib/portico/acme-challenge",
            "/srv/acme",
            "/var/www/acme",
        ] {
            assert_eq!(webroot_problem(ok), None, "{ok}");
        }
        for bad in ["/", "/srv", "/var", "/etc/nginx", "/usr/share/acme", "/etc"] {
            assert!(webroot_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_files() {
        for ok in [
            "/var/lib/prometheus/node-exporter/portico.prom",
            "/var/lib/node_exporter/textfile_collector/edge.prom",
            "/srv/metrics/p.prom",
        ] {
            assert_eq!(metrics_file_problem(ok), None, "{ok}");
        }
        for bad in [
            "portico.prom",                      // relative
            "/srv/metrics/portico.txt",          // node_exporter skips it
            "/srv/metrics/.prom",                // hidden, no name
            "/srv/portico.prom",                 // a top-level directory
            "/etc/nginx/portico.prom",           // a system tree
            "/usr/lib/x/portico.prom",           // a system tree
            "/var/lib/portico/portico.prom",     // portico's own
            "/etc/ssl/portico/x/portico.prom",   // portico's own
            "/srv/metrics/../etc/portico.prom",  // a way out
            "/srv/metrics/a b.prom",             // a space
            "/srv/metrics/p.prom\nExecStart=/x", // a new line
            "/srv/metrics//p.prom",              // an empty segment
            "/tmp/metrics/p.prom",               // the daemon's private /tmp
            "/home/ops/metrics/p.prom",          // hidden from the daemon
            "/var/www/html/p.prom",              // published
        ] {
            assert!(metrics_file_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn upstream_names_fold_to_one_charset() {
        assert_eq!(
            upstream_name("api.example.com", "127.0.0.1:3001"),
            "portico_api_example_com_127_0_0_1_3001"
        );
        assert_eq!(
            upstream_name("a-b.example", "h:1"),
            upstream_name("a.b.example", "h:1")
        );
    }
}
