//! The rules for every name that becomes part of a file name or an nginx
//! directive, and the names portico derives from them (site files, upstream
//! blocks). Validation and rendering both call these, so what is checked is
//! exactly what is written.

use std::net::IpAddr;

/// Headers a client could send to pose as someone: every location sets
/// each of them itself (from oauth2-proxy's answer or the TLS handshake) or
/// clears it, so a backend never sees a client's own.
pub const IDENTITY_HEADERS: &[&str] = &[
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
    "X-User",
    "X-Email",
    "Remote-User",
    "X-Remote-User",
    "X-WEBAUTH-USER",
    "Forwarded",
    "X-SSL-Client-Verify",
    "X-SSL-Client-DN",
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

/// A URL path as it may appear in a `location` (a prefix) or after a
/// backend's authority: `/`, then RFC 3986 path characters that nginx reads
/// literally. Not `;{}#$"'\`, whitespace or control characters.
pub fn url_path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 1024
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~%!*+,=:@&()".contains(c))
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
    format!("portico_{}_{}", clean(site_id), clean(host_port))
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
