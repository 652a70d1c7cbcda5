//! `portico renew`: one renewal run.

use crate::paths;
use std::path::PathBuf;

use clap::Args;

use super::{load_playbook, open_root, print_report, CliError, Session};
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
    /// Real orders against the ACME server (validation included), whose
    /// certificates are thrown away: nothing is written or reloaded.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// What is due (and why), without contacting the CA.
    #[command(flatten)]
    pub plan: super::CheckArgs,
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Which host.
    #[command(flatten)]
    pub host: super::HostArg,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
    /// The daemon's own renewal (recorded as `daemon` in the metrics).
    #[arg(long, hide = true)]
    pub from_daemon: bool,
}

/// Renews what is due and prints the report.
pub(super) fn run(a: RenewArgs) -> Result<i32, CliError> {
    let started = std::time::Instant::now();
    let root = a.host.root;
    let loaded = load_playbook(a.playbook.as_deref(), &root)?;
    // The playbook apply installed (the daemon's, given on stdin or by
    // name): the same bytes as the file.
    let installed = open_root(root.clone())?
        .read_to_string(std::path::Path::new(paths::INSTALLED_PLAYBOOK))
        .ok()
        .flatten()
        .is_some_and(|t| t == loaded.text);
    let opts = crate::renew::Options {
        force: a.force,
        dry_run: a.dry_run,
        check: a.plan.check,
        installed_playbook: installed,
    };
    let lock = (!a.plan.check).then_some(&a.lock);
    let metrics = Metrics {
        command: if a.from_daemon { "daemon" } else { "renew" },
        playbook: &loaded.name,
        started,
    };
    let mut renewed = renew_once(loaded.pb, root, opts, lock, metrics)?;
    renewed.report.playbook = Some(loaded.name);
    renewed
        .report
        .warnings
        .extend(renewed.backing_off.iter().cloned());
    renewed.report.backing_off = renewed.backing_off.clone();
    let code = print_report(&renewed.report, a.json.json, false, a.plan.check);
    Ok(match renewed.exit_code().max(code) {
        0 if a.plan.exit_code && renewed.report.changed > 0 => 3,
        code => code,
    })
}

/// What the metrics say about a renewal run.
pub(super) struct Metrics<'a> {
    /// `renew`, or `daemon` for the daemon's.
    command: &'a str,
    /// The playbook's name in messages.
    playbook: &'a str,
    /// When the command started.
    started: std::time::Instant,
}

/// One renewal run against the host under `root_dir` (the daemon's too);
/// a run that may write records itself in the metrics, under the lock.
pub(super) fn renew_once(
    pb: Playbook,
    root_dir: PathBuf,
    opts: crate::renew::Options,
    lock: Option<&super::LockArgs>,
    metrics: Metrics<'_>,
) -> Result<Renewed, CliError> {
    // A stop (the daemon passes its SIGTERM on) ends the run between
    // orders, with what it obtained written.
    crate::host::stop::stop_between_steps_on_sigterm();
    let session =
        Session::open_for_renewal(root_dir, lock, !opts.dry_run && !opts.check, !opts.check)?;
    let pb = session.resolve(pb)?;
    let ctx = session.ctx();
    let renewed = crate::renew::renew(&pb, &ctx, opts)?;
    // Only a run that changed something leaves pairs or generations behind.
    if !opts.dry_run && !opts.check && renewed.report.changed + renewed.report.failed > 0 {
        if let Err(e) = crate::recover::sweep(ctx.root) {
            tracing::warn!("removing key pairs no longer live: {e}");
        }
    }
    if !opts.dry_run && !opts.check {
        super::record_metrics(
            &ctx,
            crate::metrics::Finished {
                command: metrics.command,
                outcome: crate::metrics::Outcome {
                    at: ctx.clock.unix_now(),
                    duration_seconds: metrics.started.elapsed().as_secs_f64(),
                    changed: renewed.report.changed as u64,
                    failed: renewed.report.failed as u64,
                    succeeded: renewed.exit_code() == 0,
                },
                pb: Some(&pb),
                playbook: metrics.playbook,
                seed: &super::machine_seed(ctx.root),
                file: pb.metrics.file(),
                take_over: false,
            },
        );
    }
    Ok(renewed)
}
