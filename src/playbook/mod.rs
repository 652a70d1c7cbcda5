//! Playbooks: TOML in, a validated [`Playbook`] out, or errors that name the
//! file, line, column and field.

pub mod model;
pub mod span;
pub mod validate;

use std::fmt;
use std::path::Path;

use thiserror::Error;

pub use model::*;
use span::{line_col, FieldPath, SpanIndex};

/// The playbook `portico apply` uses when no file is given: a self-signed
/// HTTPS reverse proxy for this host to a local app on port 3000.
pub const DEFAULT_PLAYBOOK: &str = include_str!("default.toml");
/// How the embedded default is named in messages.
pub const DEFAULT_NAME: &str = "<embedded default>";

/// One located problem: `site.toml:12:9: site[1].location[0].proxy: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub col: usize,
    pub field: String,
    pub message: String,
}

/// Every located problem of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    pub file: String,
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

#[derive(Debug, Error)]
pub enum PlaybookError {
    #[error("{file}: cannot read playbook: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// Reads and validates a playbook file.
pub fn load_file(path: &Path) -> Result<Playbook, PlaybookError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// Parses and validates playbook text; `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Playbook, PlaybookError> {
    let index = SpanIndex::new(text);
    let locate = |offset: usize, path: &FieldPath, message: String| {
        let (line, col) = line_col(text, offset);
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
    let pb: Playbook = match toml::from_str(text) {
        Ok(pb) => pb,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let path = index.path_at(offset);
            return Err(invalid(vec![locate(
                offset,
                &path,
                e.message().trim().to_string(),
            )]));
        }
    };
    let problems = validate::validate(&pb);
    if problems.is_empty() {
        return Ok(pb);
    }
    Err(invalid(
        problems
            .into_iter()
            .map(|p| {
                let offset = index.offset_of(&p.path).unwrap_or(0);
                locate(offset, &p.path, p.message)
            })
            .collect(),
    ))
}

impl Playbook {
    /// Replaces `{hostname}` in server and certificate names with the host's name.
    pub fn resolve_hostname(&mut self, hostname: &str) {
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
        self.name
            .clone()
            .or_else(|| self.server_names.first().cloned())
            .unwrap_or_else(|| "site".into())
            .replace('*', "wildcard")
    }
}
