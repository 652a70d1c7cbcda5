//! Playbooks: TOML in, a validated [`Playbook`] out, or errors that name the
//! file, line, column and field.

mod collect;
pub mod dns;
pub mod layout;
pub mod model;
pub mod names;
mod pieces;
mod port;
pub mod schedule;
pub mod span;
pub mod url;
pub mod validate;

use std::fmt;
use std::path::Path;

use thiserror::Error;

pub use model::*;
pub use schedule::Schedule;
use span::{FieldPath, LineIndex, SpanIndex};

/// The playbook `portico apply` uses when no file is given: a self-signed
/// HTTPS reverse proxy for this host to a local app on port 3000.
pub const DEFAULT_PLAYBOOK: &str = include_str!("default.toml");
/// How the embedded default is named in messages.
pub const DEFAULT_NAME: &str = "<embedded default>";

/// One located problem: `site.toml:12:9: site[1].location[0].proxy: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
    /// The field's path (`site[1].location[0].proxy`); empty when none is known.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every located problem of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The file, as named in messages.
    pub file: String,
    /// The problems, in line order.
    pub items: Vec<Located>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, p) in self.items.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.file, p.line, p.col)?;
            if !p.field.is_empty() {
                write!(f, "{}: ", p.field)?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

/// Why a playbook could not be used.
#[derive(Debug, Error)]
pub enum PlaybookError {
    /// The file could not be read.
    #[error("{file}: cannot read playbook: {source}")]
    Read {
        /// The file, as named in messages.
        file: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// The text is not TOML, does not fit the schema, or fails validation.
    #[error("{0}")]
    Invalid(Problems),
    /// `{hostname}` stands for a host name that cannot be used as one, or
    /// the names it produced clash.
    #[error("{source_file}: {hostname:?} cannot stand for {{hostname}}: {why}")]
    Hostname {
        /// Where the host name came from (`/etc/hostname`).
        source_file: String,
        /// The host name as read.
        hostname: String,
        /// What is wrong with it, or what it made wrong in the playbook.
        why: String,
    },
}

/// Reads and validates a playbook file.
pub fn load_file(path: &Path) -> Result<Playbook, PlaybookError> {
    load_file_text(path).map(|(_, pb)| pb)
}

/// [`load_file`], with the text it was read from.
pub fn load_file_text(path: &Path) -> Result<(String, Playbook), PlaybookError> {
    let file = path.display().to_string();
    let text = crate::host::read_text(path).map_err(|source| PlaybookError::Read {
        file: file.clone(),
        source,
    })?;
    let pb = parse(&file, &text)?;
    Ok((text, pb))
}

/// Parses and validates playbook text; `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Playbook, PlaybookError> {
    // Parsing the text a second time for its spans is only for a
    // playbook with problems: a good one (10,000 sites) pays it never.
    let index = std::cell::OnceCell::new();
    let index = || index.get_or_init(|| SpanIndex::new(text));
    let lines = std::cell::OnceCell::new();
    let locate = |offset: usize, path: &FieldPath, message: String| {
        let (line, col) = lines.get_or_init(|| LineIndex::new(text)).line_col(offset);
        Located {
            line,
            col,
            field: path.to_string(),
            message,
        }
    };
    let invalid = |items| {
        PlaybookError::Invalid(Problems {
            file: file.to_string(),
            items,
        })
    };
    // A large good playbook is read in pieces (less memory); anything
    // else whole, which also finds and places every error.
    let read = match pieces::read(text) {
        Some(pb) => collect::Read {
            playbook: Some(pb),
            errors: Vec::new(),
            tables_blanked: Vec::new(),
        },
        None => collect::read_all(text),
    };
    let mut items: Vec<Located> = read
        .errors
        .iter()
        .map(|(offset, message)| locate(*offset, &index().path_at(*offset), message.clone()))
        .collect();
    // The rules run on what could be read, but for the arrays a table was
    // blanked from: the positions there moved, and what is left is no
    // longer what the text says.
    let moved: Vec<FieldPath> = read
        .tables_blanked
        .iter()
        .map(|o| {
            let mut p = index().path_at(*o);
            p.0.truncate(p.0.len().saturating_sub(1));
            p
        })
        .collect();
    if let Some(pb) = &read.playbook {
        items.extend(
            validate::validate(pb)
                .into_iter()
                .filter(|p| !moved.iter().any(|m| p.path.0.starts_with(&m.0)))
                .map(|p| {
                    let offset = index().offset_of(&p.path).unwrap_or(0);
                    locate(offset, &p.path, p.message)
                }),
        );
    }
    match read.playbook {
        Some(pb) if items.is_empty() => Ok(pb),
        _ => {
            items.sort_by_key(|p| (p.line, p.col));
            items.dedup();
            Err(invalid(items))
        }
    }
}

impl Playbook {
    /// Does any server or certificate name say `{hostname}`?
    pub fn uses_hostname(&self) -> bool {
        let has = |names: &[String]| names.iter().any(|n| n == "{hostname}");
        self.sites.iter().any(|s| has(&s.server_names))
            || self
                .certificates
                .iter()
                .any(|c| c.names.as_deref().is_some_and(has))
    }

    /// Replaces `{hostname}` in server and certificate names with the
    /// host's name, read from `source_file`. The host name is hostile input
    /// like any other: it must be a DNS name, and the playbook it produces
    /// is validated again (two sites may now clash).
    pub fn resolve_hostname(
        &mut self,
        hostname: &str,
        source_file: &str,
    ) -> Result<(), PlaybookError> {
        if !self.uses_hostname() {
            return Ok(());
        }
        let bad = |why: String| PlaybookError::Hostname {
            source_file: source_file.to_string(),
            hostname: hostname.to_string(),
            why,
        };
        if let Some(why) = names::dns_name_problem(hostname, false) {
            return Err(bad(format!("not a DNS name ({why})")));
        }
        self.substitute_hostname(hostname);
        let problems = validate::validate(self);
        if let Some(first) = problems.first() {
            return Err(bad(format!("{}: {}", first.path, first.message)));
        }
        Ok(())
    }

    /// Every header that carries an identity anywhere in this playbook:
    /// the well-known ones clients forge, every site's client certificate
    /// headers and every oauth2-proxy's extra headers. Each location sets
    /// or clears all of them.
    pub fn identity_headers(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let extra = self
            .sites
            .iter()
            .filter_map(|s| s.client_auth.as_ref())
            .flat_map(|c| [c.verify_header.as_str(), c.dn_header.as_str()])
            .chain(
                self.oauth2
                    .iter()
                    .flat_map(|o| o.headers.keys().map(String::as_str)),
            )
            .chain(self.proxy.clear_headers.iter().map(String::as_str));
        for h in names::IDENTITY_HEADERS.iter().copied().chain(extra) {
            if !all.iter().any(|a| a.eq_ignore_ascii_case(h)) {
                all.push(h.to_string());
            }
        }
        all
    }

    fn substitute_hostname(&mut self, hostname: &str) {
        let fix = |names: &mut Vec<String>| {
            for n in names.iter_mut() {
                if n == "{hostname}" {
                    *n = hostname.to_string();
                }
            }
            // `{hostname}` may have been `localhost` already: keep names unique.
            let mut seen = std::collections::BTreeSet::new();
            names.retain(|n| seen.insert(n.clone()));
        };
        for s in &mut self.sites {
            fix(&mut s.server_names);
        }
        for c in &mut self.certificates {
            if let Some(names) = &mut c.names {
                fix(names);
            }
        }
    }
}

impl Site {
    /// The name used for this site's files and in reports.
    pub fn id(&self) -> String {
        names::site_id(self.name.as_deref(), &self.server_names)
    }
}

/// The oauth2-proxy a site uses (validation allows one per site).
pub fn site_oauth2(site: &Site) -> Option<&str> {
    site.oauth2.as_deref().or_else(|| {
        site.locations
            .iter()
            .filter_map(|l| l.oauth2.as_deref())
            .find(|o| *o != "none")
    })
}
