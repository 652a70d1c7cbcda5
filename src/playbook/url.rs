//! The one parser for backend URLs (`[[site.location]] proxy`, `[[oauth2]]
//! upstream`). Validation reports its errors; rendering builds `upstream`
//! blocks and `proxy_pass` from what it returns, so nothing that was not
//! checked reaches nginx.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::fmt;

use super::names;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP: proxied through a keep-alive `upstream` block.
    Http,
    /// HTTPS to the backend: `proxy_pass` names the URL itself.
    Https,
}

impl Scheme {
    /// As written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed backend URL: scheme, host, optional port, optional path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// A DNS name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    /// The port as written; `None` means the scheme's default.
    pub port: Option<u16>,
    /// `""` or a path starting with `/`.
    pub path: String,
}

/// Why a string is not a backend URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    /// The string as given.
    pub url: String,
    /// What is wrong, in a few words.
    pub why: String,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an http or https URL: {}",
            self.url, self.why
        )
    }
}

impl BackendUrl {
    /// Parses `http[s]://HOST[:PORT][/PATH]`. Refuses user info, queries,
    /// fragments, backslashes, `$` (nginx would expand it as a variable) and
    /// anything else nginx would not read literally.
    pub fn parse(url: &str) -> Result<BackendUrl, UrlError> {
        let err = |why: &str| UrlError {
            url: url.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(err("it must start with http:// or https://"));
        };
        for (c, what) in [
            ('?', "a query ('?')"),
            ('#', "a fragment ('#')"),
            ('\\', "a backslash"),
            ('$', "a '$' (nginx would read a variable)"),
            ('@', "user info ('@')"),
        ] {
            if rest.contains(c) {
                return Err(err(&format!(
                    "it has {what}; give scheme, host, port and path only"
                )));
            }
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("it has whitespace or control characters"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && !names::url_path_ok(path) {
            return Err(err(
                "its path has characters nginx would not read literally (allowed: letters, digits and /-._~%!*+,=:@&())",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| err("an IPv6 address needs a closing ']'"))?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| err("the address in [...] is not IPv6"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| err("junk after ']'"))?),
            };
            (format!("[{addr}]"), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(err("it has no host"));
            }
            if host.parse::<Ipv4Addr>().is_err() && names::dns_name_problem(host, false).is_some() {
                return Err(err("its host is not a DNS name, an IPv4 address or [IPv6]"));
            }
            (host.to_string(), port)
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|n| *n > 0 && !p.starts_with('+'))
                    .ok_or_else(|| err(&format!("port {p:?} is not 1-65535")))?,
            ),
        };
        Ok(BackendUrl {
            scheme,
            host,
            port,
            path: path.to_string(),
        })
    }

    /// `host:port`, with the scheme's default port when none was written
    /// (what an nginx `upstream` `server` line needs).
    pub fn host_port(&self) -> String {
        format!(
            "{}:{}",
            self.host,
            self.port.unwrap_or(self.scheme.default_port())
        )
    }

    /// `scheme://host[:port]` as written, without the path.
    pub fn origin(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme.as_str(), self.host),
            None => format!("{}://{}", self.scheme.as_str(), self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_paths() {
        let u = BackendUrl::parse("http://[::1]:3000/").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Http, "[::1]", Some(3000), "/")
        );
        assert_eq!(u.host_port(), "[::1]:3000");
        let u = BackendUrl::parse("https://app.internal/x/y").unwrap();
        assert_eq!(u.host_port(), "app.internal:443");
        assert_eq!(u.origin(), "https://app.internal");
        assert_eq!(
            BackendUrl::parse("http://127.0.0.1").unwrap().host_port(),
            "127.0.0.1:80"
        );
    }

    #[test]
    fn refuses_what_nginx_would_not_read_literally() {
        for bad in [
            "htp://x",
            "http://",
            "http://:80",
            "http://x?a=1",
            "http://x/#f",
            "http://x\\y",
            "http://x/$host",
            "http://u@x",
            "http://x:0",
            "http://x:65536",
            "http://x:+80",
            "http://x:8o",
            "http://[::1",
            "http://[zz]:80",
            "http://x y",
            "http://x/a;b",
            "http://x/a{b",
            "http://x/a\"b",
            "http://bad_host",
        ] {
            assert!(BackendUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = BackendUrl::parse("http://x:99999").unwrap_err().to_string();
        assert_eq!(
            e,
            "\"http://x:99999\" is not an http or https URL: port \"99999\" is not 1-65535"
        );
    }
}
