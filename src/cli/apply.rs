//! `portico apply`: bring the host to what a playbook describes.

use std::path::PathBuf;

use clap::Args;

use super::{print_report, read_playbook, CliError, Session};
use crate::playbook::PlaybookError;
use crate::task::Mode;

/// `portico apply`'s arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Playbook file (TOML). Default: the embedded default playbook.
    pub playbook: Option<PathBuf>,
    /// Only report what would change; touch nothing.
    #[arg(long)]
    pub check: bool,
    /// Print unified diffs of file changes (private keys are redacted).
    #[arg(long)]
    pub diff: bool,
    /// Print the report as JSON: {changed, unchanged, failed, skipped, tasks:[{name,status,changes}]}.
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Operate on the tree under DIR instead of `/`. Files are written there;
    /// packages, firewall and services are reported as skipped.
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Plans and runs (or, with `--check`, only checks) the playbook.
pub(super) fn run(a: ApplyArgs) -> Result<i32, CliError> {
    // The playbook is checked before anything else: bad input touches nothing.
    let pb = read_playbook(a.playbook.as_deref())?;
    let session = Session::open(a.root.clone(), !a.check)?;
    let pb = session.resolve(pb)?;
    let ctx = session.ctx();
    let facts = &session.facts;
    if ctx.live_host {
        if let Some(n) = crate::plan::firewall_notice(&pb, facts) {
            eprintln!("{n}");
        }
    }
    let mut tasks = crate::plan::plan(&pb, facts, ctx.clock.unix_now());
    if let Some(file) = &a.playbook {
        let text = crate::host::read_text(file).map_err(|source| PlaybookError::Read {
            file: file.display().to_string(),
            source,
        })?;
        // The kernel's name for this binary, symlinks resolved: the unit
        // task checks that only root can replace it.
        let exe =
            crate::host::current_exe().unwrap_or_else(|| PathBuf::from("/usr/local/bin/portico"));
        tasks.extend(crate::plan::daemon_tasks(&pb, &text, &exe, facts));
    }
    let mode = if a.check { Mode::Check } else { Mode::Apply };
    let mut report = crate::engine::run(&tasks, &ctx, mode);
    // In the report (text and --json), so scripts see them too.
    report.warnings.extend(crate::plan::warnings(&pb, facts));
    Ok(print_report(&report, a.json, a.diff, a.check))
}
