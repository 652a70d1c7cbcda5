//! `portico renew`: one renewal run.

use crate::paths;
use std::path::PathBuf;

use clap::Args;

use super::{load_playbook, open_root, print_report, CliError, Fallback, Session};
use crate::playbook::Playbook;
use crate::renew::Renewed;

/// `portico renew`'s arguments.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// one `apply` installed, /etc/portico/playbook.toml (else the embedded
    /// default).
    pub playbook: Option<PathBuf>,
    /// Renew every ACME certificate now, due or not, backing off or not.
    #[arg(long)]
    pub force: bool,
    /// Talk to the ACME server (orders, validation) but write and reload nothing.
    #[arg(long)]
    pub dry_run: bool,
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

/// Renews what is due and prints the report.
pub(super) fn run(a: RenewArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(a.playbook.as_deref(), Fallback::Installed, &a.root)?;
    // The playbook apply installed (the daemon's, given on stdin or by
    // name): the same bytes as the file.
    let installed = open_root(a.root.clone())?
        .read_to_string(std::path::Path::new(paths::INSTALLED_PLAYBOOK))
        .ok()
        .flatten()
        .is_some_and(|t| t == loaded.text);
    let opts = crate::renew::Options {
        force: a.force,
        dry_run: a.dry_run,
        installed_playbook: installed,
    };
    let mut renewed = renew_once(loaded.pb, a.root, opts, Some(&a.lock))?;
    renewed.report.playbook = Some(loaded.name);
    renewed
        .report
        .warnings
        .extend(renewed.backing_off.iter().cloned());
    renewed.report.backing_off = renewed.backing_off.clone();
    print_report(&renewed.report, a.json, false, false);
    Ok(renewed.exit_code())
}

/// One renewal run against the host under `root_dir` (the daemon's too).
pub(super) fn renew_once(
    pb: Playbook,
    root_dir: PathBuf,
    opts: crate::renew::Options,
    lock: Option<&super::LockArgs>,
) -> Result<Renewed, CliError> {
    // A stop (the daemon passes its SIGTERM on) ends the run between
    // orders, with what it obtained written.
    crate::host::stop::stop_between_steps_on_sigterm();
    let session = Session::open_for_renewal(root_dir, lock, !opts.dry_run)?;
    let pb = session.resolve(pb)?;
    let ctx = session.ctx();
    let renewed = crate::renew::renew(&pb, &ctx, opts)?;
    // Only a run that changed something leaves pairs or generations behind.
    if !opts.dry_run && renewed.report.changed + renewed.report.failed > 0 {
        if let Err(e) = crate::recover::sweep(ctx.root) {
            tracing::warn!("removing key pairs no longer live: {e}");
        }
    }
    Ok(renewed)
}
