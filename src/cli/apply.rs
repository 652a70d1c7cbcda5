//! `portico apply`: bring the host to what a playbook describes, and take
//! away what portico made that it no longer describes.

use std::path::PathBuf;

use clap::Args;

use super::{load_playbook, run_plan, CliError, Fallback, Output, Session};
use crate::manifest::{self, Manifest};
use crate::owned::Owned;
use crate::plan::{Converge, Install};
use crate::task::{Mode, Task};
use crate::tasks::prune::AdoptTask;

/// `portico apply`'s arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// embedded default playbook.
    pub playbook: Option<PathBuf>,
    /// Only report what would change; touch nothing.
    #[arg(long)]
    pub check: bool,
    /// Print unified diffs of file changes (private keys are redacted).
    #[arg(long)]
    pub diff: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Take over files at paths portico writes that it did not write
    /// itself (a copy of each is kept in /var/lib/portico/archive).
    #[arg(long)]
    pub adopt: bool,
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
}

/// Plans and runs (or, with `--check`, only checks) the playbook.
pub(super) fn run(a: ApplyArgs) -> Result<i32, CliError> {
    // The playbook is checked before anything else: bad input touches nothing.
    let loaded = load_playbook(a.playbook.as_deref(), Fallback::Embedded, &a.root)?;
    let session = Session::open_locked(a.root.clone(), (!a.check).then_some(&a.lock))?;
    let pb = session.resolve(loaded.pb)?;
    let mode = if a.check { Mode::Check } else { Mode::Apply };
    let ctx = session.ctx_for(mode);
    let facts = &session.facts;
    if ctx.live_host {
        if let Some(n) = crate::plan::firewall_notice(&pb, facts) {
            eprintln!("{n}");
        }
    }
    // What portico made before; a host set up before the manifest existed
    // starts from the files carrying portico's header.
    let recorded = Manifest::load(ctx.root)?;
    let old = match &recorded {
        Some(m) => m.clone(),
        None => manifest::legacy(ctx.root)?,
    };
    let now = ctx.clock.unix_now();
    let archive = manifest::archive_for_run(now);
    // The kernel's name for this binary, symlinks resolved: the unit task
    // checks that only root can replace it.
    let exe =
        crate::host::current_exe().unwrap_or_else(|| PathBuf::from(crate::paths::INSTALLED_EXE));
    let mut plan = crate::plan::full(
        &pb,
        facts,
        now,
        Some(Install {
            text: &loaded.text,
            exe: &exe,
        }),
        Some(Converge {
            manifest: &old,
            archive: archive.clone(),
            purge: false,
            reason: "no longer in the playbook",
        }),
    );
    let wanted: Vec<Owned> = plan.wanted.iter().map(|(_, o)| o.clone()).collect();
    let conflicts = manifest::conflicts(ctx.root, recorded.as_ref(), &wanted)?;
    if !conflicts.is_empty() {
        if !a.adopt {
            return Err(CliError::NotPortico(conflicts));
        }
        let adopt: Vec<Box<dyn Task>> = conflicts
            .into_iter()
            .map(|c| {
                Box::new(AdoptTask {
                    path: c.path,
                    archive: archive.clone(),
                }) as Box<dyn Task>
            })
            .collect();
        plan.tasks.splice(0..0, adopt);
    }
    let out = Output {
        json: a.json,
        diff: a.diff,
        playbook: loaded.name,
    };
    let warnings = crate::plan::warnings(&pb, facts);
    Ok(run_plan(&ctx, &plan, mode, &old, &out, warnings, Some(&pb)))
}
