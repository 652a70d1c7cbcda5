//! `nginx -V` → version, OpenSSL and modules; the config layout on disk.

use serde::Serialize;

/// An nginx or OpenSSL version, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses the leading `X.Y.Z` of a version string (`"3.0.19"`, `"1.25.1"`).
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.').map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u32>()
        });
        let a = parts.next()?.ok()?;
        let b = parts.next().and_then(Result::ok).unwrap_or(0);
        let c = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(Version(a, b, c))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What `nginx -V` says about the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NginxBuild {
    /// As nginx gives it (`1.24.0`).
    pub version: String,
    /// The OpenSSL nginx runs with (the "running with" one when it differs).
    pub openssl: Option<String>,
    /// Built with HTTP/2 (`--with-http_v2_module`).
    pub http2: bool,
    /// Built with HTTP/3 (`--with-http_v3_module`).
    pub http3: bool,
    /// `--conf-path`: the main configuration file, when the build names it.
    pub conf_path: Option<String>,
}

impl NginxBuild {
    /// The version, parsed for comparing.
    pub fn version(&self) -> Option<Version> {
        Version::parse(&self.version)
    }
}

/// Parses `nginx -V` output (nginx prints it on stderr). `None` when the text
/// is not nginx's.
pub fn parse_v(text: &str) -> Option<NginxBuild> {
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("nginx version: "))?
        .split('/')
        .nth(1)?
        .split_whitespace()
        .next()?
        .to_string();
    let openssl = text.lines().find_map(|l| {
        let l = l.trim();
        let running = l.split_once("running with OpenSSL ").map(|(_, rest)| rest);
        let built = l.strip_prefix("built with OpenSSL ");
        running
            .or(built)
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_string)
    });
    let args = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("configure arguments:"))
        .unwrap_or("");
    let has = |flag: &str| args.split_whitespace().any(|a| a == flag);
    let conf_path = args
        .split_whitespace()
        .find_map(|a| a.strip_prefix("--conf-path="))
        .map(str::to_string);
    Some(NginxBuild {
        version,
        openssl,
        http2: has("--with-http_v2_module"),
        http3: has("--with-http_v3_module"),
        conf_path,
    })
}

/// Where a distro's nginx wants site configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Debian/Ubuntu: `sites-available/` + a `sites-enabled/` symlink, `snippets/`.
    SitesEnabled,
    /// RHEL family: `conf.d/*.conf`, `default.d/` for the default server.
    ConfD,
}

/// Decides the layout from what exists under `/etc/nginx`, falling back on
/// the distro family when nginx is not installed yet.
pub fn layout(has_sites_available: bool, has_conf_d: bool, debian_family: bool) -> Layout {
    if has_sites_available {
        Layout::SitesEnabled
    } else if has_conf_d {
        Layout::ConfD
    } else if debian_family {
        Layout::SitesEnabled
    } else {
        Layout::ConfD
    }
}
