//! `portico fmt`: playbooks in one layout, comments kept (see
//! [`crate::playbook::layout`]).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::playbook;

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
        let text = super::read_playbook_text(path, &name)?;
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
