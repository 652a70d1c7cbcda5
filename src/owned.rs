//! What portico owns on a host: the things its tasks create, each tied to
//! the playbook object it serves. Tasks declare them ([`crate::task::Task::owns`]);
//! the manifest records the ones portico actually made, and a later run
//! removes the ones its playbook no longer asks for.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One thing portico can own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Thing {
    /// A regular file.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A symlink.
    Link {
        /// The link itself.
        path: PathBuf,
    },
    /// A directory portico created (removed once empty and unneeded).
    Dir {
        /// The directory.
        path: PathBuf,
    },
    /// A directory portico fills whole, everything in it portico's (the
    /// nginx generations, a certificate's key pairs): removed or archived
    /// as one.
    Tree {
        /// The directory.
        path: PathBuf,
    },
    /// A firewall rule letting a TCP port in, added by portico.
    Port {
        /// `ufw`, `firewalld`, `iptables`, `nftables`.
        backend: String,
        /// The port.
        port: u16,
    },
    /// A systemd unit portico enabled and started.
    Unit {
        /// The unit.
        unit: String,
    },
    /// An SELinux setting portico made: `boolean` (a boolean it turned on,
    /// persistently), `port` (a TCP port it labelled `http_port_t`) or
    /// `fcontext` (a local file-context rule).
    Selinux {
        /// `boolean`, `port` or `fcontext`.
        setting: String,
        /// The boolean's name, the port, or the rule's path expression.
        value: String,
    },
    /// One line portico added to a file it does not own (the include line
    /// in `/etc/nftables.conf`).
    Line {
        /// The file.
        path: PathBuf,
        /// The line, without its newline.
        line: String,
    },
}

impl Thing {
    /// The path, for things that are one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Thing::File { path }
            | Thing::Link { path }
            | Thing::Dir { path }
            | Thing::Tree { path } => Some(path),
            _ => None,
        }
    }

    /// A file.
    pub fn file(path: impl Into<PathBuf>) -> Thing {
        Thing::File { path: path.into() }
    }
}

impl fmt::Display for Thing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Thing::File { path } => write!(f, "file {}", path.display()),
            Thing::Link { path } => write!(f, "link {}", path.display()),
            Thing::Dir { path } => write!(f, "directory {}", path.display()),
            Thing::Tree { path } => write!(f, "tree {}", path.display()),
            Thing::Port { backend, port } => write!(f, "{backend} rule for tcp port {port}"),
            Thing::Selinux { setting, value } => write!(f, "selinux {setting} {value}"),
            Thing::Unit { unit } => write!(f, "unit {unit}"),
            Thing::Line { path, line } => write!(f, "line {line:?} in {}", path.display()),
        }
    }
}

/// The owner of the metrics file (`[metrics] textfile`), written after
/// each run rather than by a task.
pub const METRICS_OWNER: &str = "metrics";

/// What happens to a thing when the playbook no longer asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposal {
    /// Removed (it can be made again from the playbook).
    #[default]
    Remove,
    /// Moved to the archive, never deleted (certificates and their keys).
    Archive,
}

/// A thing a task owns, and the playbook object it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The thing.
    pub thing: Thing,
    /// `site api`, `certificate web`, `firewall`, `daemon`, ...
    pub owner: String,
    /// What pruning does with it.
    pub disposal: Disposal,
    /// For files: the SHA-256 of the bytes the task writes, when known
    /// before it runs (a file already holding them is portico's to take).
    pub desired: Option<String>,
    /// For links: where it points.
    pub target: Option<PathBuf>,
}

impl Owned {
    /// A file of known content that can be made again.
    pub fn file(path: impl Into<PathBuf>, owner: impl Into<String>, content: &[u8]) -> Owned {
        Owned {
            thing: Thing::file(path),
            owner: owner.into(),
            disposal: Disposal::Remove,
            desired: Some(sha256_hex(content)),
            target: None,
        }
    }

    /// Key material or a certificate: archived, never deleted, when unwanted.
    pub fn secret(path: impl Into<PathBuf>, owner: impl Into<String>) -> Owned {
        Owned {
            thing: Thing::file(path),
            owner: owner.into(),
            disposal: Disposal::Archive,
            desired: None,
            target: None,
        }
    }

    /// A symlink pointing to `target`.
    pub fn link(path: impl Into<PathBuf>, owner: impl Into<String>, target: PathBuf) -> Owned {
        Owned {
            target: Some(target),
            ..Owned::thing(Thing::Link { path: path.into() }, owner)
        }
    }

    /// Any other thing.
    pub fn thing(thing: Thing, owner: impl Into<String>) -> Owned {
        Owned {
            thing,
            owner: owner.into(),
            disposal: Disposal::Remove,
            desired: None,
            target: None,
        }
    }
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_hex_of([bytes])
}

/// [`sha256_hex`] of the parts one after the other, hashed as they come
/// (never copied into one buffer: a generation is megabytes).
pub fn sha256_hex_of<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.hex()
}

/// SHA-256 fed one part at a time, for parts that do not live together.
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    /// An empty hash.
    pub fn new() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Hashes `part` next.
    pub fn update(&mut self, part: &[u8]) {
        self.0.update(part);
    }

    /// The digest, lower-case hex.
    pub fn hex(self) -> String {
        self.0
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn things_serialize_tagged_by_kind() {
        let t = Thing::Port {
            backend: "ufw".into(),
            port: 8443,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"kind":"port","backend":"ufw","port":8443}"#
        );
    }
}
