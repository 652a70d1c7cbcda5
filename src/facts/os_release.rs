//! `/etc/os-release` → distro identity, family and package manager.

use serde::Serialize;

/// Which family of distribution, which decides packages and nginx layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Debian, Ubuntu and their derivatives (apt, `sites-enabled/`).
    Debian,
    /// RHEL, CentOS, Rocky, Fedora, Amazon Linux and their relatives (yum or dnf, `conf.d/`).
    Rhel,
    /// Anything else: no package manager is known.
    Unknown,
}

/// The tool that installs packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    /// apt (Debian family).
    Apt,
    /// yum, where dnf does not exist yet (EL7, Amazon Linux 2).
    Yum,
    /// dnf (the rest of the RHEL family).
    Dnf,
    /// None known: portico cannot install packages.
    Unknown,
}

/// The distribution, as os-release names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// `ID` (`ubuntu`, `rocky`, ...).
    pub id: String,
    /// `VERSION_ID` (`24.04`, `9.4`, ...).
    pub version: String,
    /// Decided from `ID` and `ID_LIKE`.
    pub family: Family,
    /// `PRETTY_NAME`, for people.
    pub pretty_name: String,
    /// False for releases portico has not been proven on (it still tries).
    pub supported: bool,
}

/// Parses os-release text (shell-style `KEY=value`, optionally quoted).
pub fn parse(text: &str) -> Distro {
    let mut id = String::new();
    let mut version = String::new();
    let mut like = String::new();
    let mut pretty = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value);
        match key {
            "ID" => id = value,
            "VERSION_ID" => version = value,
            "ID_LIKE" => like = value,
            "PRETTY_NAME" => pretty = value,
            _ => {}
        }
    }
    let family = family_of(&id, &like);
    let supported = is_supported(&id, &version);
    Distro {
        id,
        version,
        family,
        pretty_name: pretty,
        supported,
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

fn family_of(id: &str, like: &str) -> Family {
    let words: Vec<&str> = std::iter::once(id).chain(like.split_whitespace()).collect();
    if words.iter().any(|w| matches!(*w, "debian" | "ubuntu")) {
        Family::Debian
    } else if words
        .iter()
        .any(|w| matches!(*w, "rhel" | "centos" | "fedora" | "amzn"))
    {
        Family::Rhel
    } else {
        Family::Unknown
    }
}

/// The major version number (`"9.4"` → 9, `"24.04"` → 24).
fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Releases portico is built for (see the README's support table).
fn is_supported(id: &str, version: &str) -> bool {
    let Some(m) = major(version) else {
        return false;
    };
    match id {
        "ubuntu" => (16..=26).contains(&m) && version.ends_with(".04"),
        "debian" => (11..=13).contains(&m),
        "centos" => m == 7,
        "rocky" | "almalinux" => (8..=10).contains(&m),
        "rhel" => (7..=10).contains(&m),
        "fedora" => m >= 39,
        "amzn" => m == 2023,
        _ => false,
    }
}

/// apt on Debian; yum where dnf does not exist yet (EL7, Amazon Linux 2); dnf elsewhere.
pub fn package_manager(d: &Distro) -> PackageManager {
    match d.family {
        Family::Debian => PackageManager::Apt,
        Family::Rhel => match (d.id.as_str(), major(&d.version)) {
            ("centos" | "rhel" | "ol", Some(m)) if m <= 7 => PackageManager::Yum,
            ("amzn", Some(2)) => PackageManager::Yum,
            _ => PackageManager::Dnf,
        },
        Family::Unknown => PackageManager::Unknown,
    }
}
