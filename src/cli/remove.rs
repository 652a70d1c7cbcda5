//! `portico remove`: undo what portico made on this host.

use crate::paths;
use std::path::PathBuf;

use clap::Args;

use super::{run_plan, CliError, Output, Session};
use crate::manifest::{self, Manifest};
use crate::plan::Converge;
use crate::task::Mode;

/// `portico remove`'s arguments.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Also delete, for good, the keys, CAs, ACME account and state
    /// (everything under /var/lib/portico and /etc/ssl/portico).
    #[arg(long)]
    pub purge: bool,
    /// Only report what would be removed; touch nothing.
    #[arg(long)]
    pub check: bool,
    /// Print unified diffs of file changes (private keys are redacted).
    #[arg(long)]
    pub diff: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
}

/// Prunes everything in the manifest.
pub(super) fn run(a: RemoveArgs) -> Result<i32, CliError> {
    let session = Session::open_locked(a.root.clone(), (!a.check).then_some(&a.lock))?;
    let mode = if a.check { Mode::Check } else { Mode::Apply };
    let ctx = session.ctx_for(mode);
    let old = match Manifest::load(ctx.root)? {
        Some(m) => m,
        None => manifest::legacy(ctx.root)?,
    };
    let archive = manifest::archive_for_run(ctx.clock.unix_now());
    let plan = crate::plan::removal(
        &session.facts,
        Converge {
            manifest: &old,
            archive,
            purge: a.purge,
            reason: "portico remove",
        },
    );
    let out = Output {
        json: a.json,
        diff: a.diff,
        playbook: format!("none (removing what {} lists)", paths::MANIFEST),
    };
    Ok(run_plan(&ctx, &plan, mode, &old, &out, Vec::new(), None))
}
