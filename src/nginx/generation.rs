//! Generations: all of portico's nginx configuration as one unit.
//!
//! Every file portico renders for nginx (snippets, each site's servers,
//! the catch-all servers) goes into one directory named by its content,
//! `/etc/nginx/portico/gen-ID/`, and nginx reads it through one link,
//! `/etc/nginx/portico/live`, from one include line in
//! `/etc/nginx/conf.d/portico.conf`. A new generation is written whole
//! beside the live one, tested by `nginx -t` with it mounted in place (a
//! private mount namespace), and made live by one rename of the link. So
//! at every instant the configuration on disk is one generation or the
//! other, never a mix: a kill at any point, then a reboot, leaves an nginx
//! that starts (the design Kubernetes' atomic writer uses for `..data`).
//!
//! This module is pure: what a generation holds and how it is named.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use super::render::{CHALLENGE_MARKER, HEADER};
use crate::host::root::TreeFile;
use crate::owned::Sha256;
use crate::paths::{NGINX_DIR, NGINX_LIVE};

/// The file in a generation that serves ACME challenges for names no
/// site of the live generation serves yet (only while certificates are
/// obtained; the generation after it does not have it).
pub const CHALLENGE_FILE: &str = "portico-acme-challenge.conf";

/// The prefix of every generation directory's name.
pub const PREFIX: &str = "gen-";

/// What renders one file's text again each time it is read.
pub trait Render: Send + Sync {
    /// The file's text.
    fn render(&self) -> String;
}

/// A generation file's text: held, or rendered each time it is read.
/// Thousands of sites are megabytes of configuration: a plan keeps how to
/// render each site's files, not their text, and a run renders a file when
/// it hashes, compares or writes it (rendering is pure and cheap next to
/// reading the file it is compared with).
#[derive(Clone)]
pub enum Text {
    /// Text at hand (shared, not copied): snippets, a file read from disk.
    Held(Arc<str>),
    /// Text rendered on demand.
    Rendered(Arc<dyn Render>),
}

impl Text {
    /// The text, rendered if it must be.
    pub fn get(&self) -> Cow<'_, str> {
        match self {
            Text::Held(t) => Cow::Borrowed(t),
            Text::Rendered(r) => Cow::Owned(r.render()),
        }
    }
}

impl From<String> for Text {
    fn from(t: String) -> Self {
        Text::Held(t.into())
    }
}

impl From<&str> for Text {
    fn from(t: &str) -> Self {
        Text::Held(t.into())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Text {}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Text::Held(t) => write!(f, "{} bytes", t.len()),
            Text::Rendered(_) => f.write_str("rendered on demand"),
        }
    }
}

/// One generation: file paths inside it (`portico-web.https.conf`,
/// `snippets/portico-tls.conf`) and their text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generation {
    /// The files, by path inside the generation.
    pub files: BTreeMap<String, Text>,
}

impl Generation {
    /// A generation of these files.
    pub fn new(files: BTreeMap<String, Text>) -> Self {
        Generation { files }
    }

    /// Its name: a hash of every path and byte in it, so the same
    /// configuration is always the same generation (a second apply finds
    /// it live and changes nothing). One file's text at a time.
    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        for (rel, text) in &self.files {
            let text = text.get();
            for part in [
                rel.as_bytes(),
                b"\0",
                text.len().to_string().as_bytes(),
                b"\0",
                text.as_bytes(),
            ] {
                hash.update(part);
            }
        }
        hash.hex()[..16].to_string()
    }

    /// Is `rel` with these bytes one of its files?
    pub fn has(&self, rel: &str, bytes: &[u8]) -> bool {
        self.files
            .get(rel)
            .is_some_and(|t| t.get().as_bytes() == bytes)
    }

    /// Its directory's name (`gen-ID`), what the live link points to.
    pub fn dir_name(&self) -> String {
        format!("{PREFIX}{}", self.id())
    }

    /// Its directory.
    pub fn dir(&self) -> std::path::PathBuf {
        std::path::Path::new(NGINX_DIR).join(self.dir_name())
    }

    /// Its files as written (0644: nginx's configuration holds no secret).
    pub fn tree(&self) -> Vec<TreeFile> {
        self.files
            .iter()
            .map(|(rel, text)| TreeFile {
                rel: rel.clone(),
                bytes: text.get().into_owned().into_bytes(),
                mode: 0o644,
            })
            .collect()
    }

    /// A generation read back from disk (files that are not text are
    /// taken as they are, lossily: they were not portico's).
    pub fn from_tree(tree: BTreeMap<String, Vec<u8>>) -> Self {
        Generation {
            files: tree
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned().into()))
                .collect(),
        }
    }

    /// This generation with the challenge file for `names` added: what
    /// serves challenges while certificates for new names are obtained.
    pub fn with_challenges(&self, names: &[String], webroot: &str) -> Self {
        let mut files = self.files.clone();
        files.insert(
            CHALLENGE_FILE.into(),
            challenge_server(names, webroot).into(),
        );
        Generation { files }
    }
}

/// The one file portico adds to nginx's own include directory.
pub fn entry() -> String {
    format!(
        "{HEADER}# portico's configuration is the generation {NGINX_LIVE} points to\n\
         # (one directory, made live whole; see `portico status`).\n\
         include {NGINX_LIVE}/*.conf;\n"
    )
}

/// A port-80 server answering ACME challenges (and nothing else) for
/// `names`, from `webroot`.
pub fn challenge_server(names: &[String], webroot: &str) -> String {
    let mut s = String::from(HEADER);
    s.push_str(
        "# Answers ACME HTTP-01 challenges for names no site serves yet, while their\n\
         # certificates are obtained; the next generation does not have it.\n\n",
    );
    s.push_str("server {\n    listen 80;\n    listen [::]:80;\n");
    let _ = writeln!(s, "    server_name {};", names.join(" "));
    s.push_str("    server_tokens off;\n\n");
    let _ = writeln!(
        s,
        "    location ^~ /.well-known/acme-challenge/ {{\n        root {webroot};\n        default_type text/plain;\n        add_header {CHALLENGE_MARKER} 1 always;\n    }}\n"
    );
    s.push_str("    location / {\n        return 404;\n    }\n}\n");
    s
}

/// The names the port-80 servers of `g` list (what already answers
/// challenges once it is live, as every site's port-80 server does).
pub fn port80_names(g: &Generation) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for text in g.files.values() {
        let text = text.get();
        let mut in_port80 = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("server {") {
                in_port80 = false;
            }
            if line.starts_with("listen 80") {
                in_port80 = true;
            }
            if let (true, Some(rest)) = (in_port80, line.strip_prefix("server_name ")) {
                names.extend(
                    rest.trim_end_matches(';')
                        .split_whitespace()
                        .map(str::to_string),
                );
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_are_the_same_generation_and_any_byte_makes_another() {
        let a = Generation::new([("a.conf".to_string(), "x".into())].into());
        let b = Generation::new([("a.conf".to_string(), "x".into())].into());
        let c = Generation::new([("a.conf".to_string(), "y".into())].into());
        let d = Generation::new([("b.conf".to_string(), "x".into())].into());
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_ne!(a.id(), d.id());
        assert!(a.dir_name().starts_with("gen-"));
    }

    #[test]
    fn the_challenge_server_answers_only_challenges_for_its_names() {
        let g = Generation::default()
            .with_challenges(&["new.test".into()], "/var/lib/portico/acme-challenge");
        let text = g.files[CHALLENGE_FILE].get();
        assert!(text.contains("server_name new.test;"), "{text}");
        assert!(
            text.contains("root /var/lib/portico/acme-challenge;"),
            "{text}"
        );
        assert!(text.contains("return 404;"), "{text}");
        assert_eq!(port80_names(&g), ["new.test".to_string()].into());
    }
}
