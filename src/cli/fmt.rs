//! `portico fmt`: playbooks in one layout, comments kept (see
//! [`crate::playbook::layout`]).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::playbook::{self, PlaybookError};

/// `portico fmt`'s arguments.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Playbook files; `-` reads one from standard input and prints it.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    /// Change nothing: list the files that are not laid out yet, and exit 1
    /// when there is any.
    #[arg(long)]
    pub check: bool,
}

/// Lays out each playbook (or, with `--check`, says which need it).
pub(super) fn run(a: FmtArgs) -> Result<i32, CliError> {
    let mut pending = Vec::new();
    for path in &a.playbooks {
        let stdin = path.as_os_str() == "-";
        let name = if stdin {
            "(standard input)".to_string()
        } else {
            path.display().to_string()
        };
        let text = if stdin {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map(|_| t)
        } else {
            crate::host::read_text(path)
        }
        .map_err(|source| PlaybookError::Read {
            file: name.clone(),
            source,
        })?;
        // Only a playbook portico would run is laid out: its errors first.
        playbook::parse(&name, &text)?;
        let tidy = playbook::layout::format(&text).map_err(|e| CliError::Layout {
            file: name.clone(),
            why: e.to_string(),
        })?;
        if stdin {
            out!("{tidy}");
        } else if tidy != text {
            if a.check {
                outln!("{name}: not laid out (portico fmt {name})");
            } else {
                crate::host::rewrite_text(path, &tidy).map_err(|source| CliError::OutputDir {
                    path: path.clone(),
                    source,
                })?;
                outln!("{name}: laid out");
            }
            pending.push(name);
        }
    }
    Ok(i32::from(a.check && !pending.is_empty()))
}
