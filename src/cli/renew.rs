//! `portico renew`: one renewal run.

use crate::paths;
use std::path::PathBuf;

use clap::Args;

use super::{print_report, read_playbook, CliError, Session, Text};
use crate::nothing_due;
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
    let text = read_playbook(a.playbook.as_deref(), &root)?;
    let opts = crate::renew::Options {
        force: a.force,
        dry_run: a.dry_run,
        check: a.plan.check,
        // Known once a full run is sure (renew_once).
        installed_playbook: false,
    };
    let lock = (!a.plan.check).then_some(&a.lock);
    let metrics = Metrics {
        command: if a.from_daemon { "daemon" } else { "renew" },
        started,
    };
    let name = text.name.clone();
    let mut renewed = renew_once(text, root, opts, lock, metrics)?;
    renewed.report.playbook = Some(name);
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
    /// When the command started.
    started: std::time::Instant,
}

/// One renewal run against the host under `root_dir` (the daemon's too);
/// a run that may write records itself in the metrics, under the lock.
/// When the last run left every certificate quiet and nothing has changed
/// since (crate::nothing_due), the playbook is not even parsed.
fn renew_once(
    text: Text,
    root_dir: PathBuf,
    opts: crate::renew::Options,
    lock: Option<&super::LockArgs>,
    metrics: Metrics<'_>,
) -> Result<Renewed, CliError> {
    // A stop (the daemon passes its SIGTERM on) ends the run between
    // orders, with what it obtained written.
    crate::host::stop::stop_between_steps_on_sigterm();
    let session = Session::open_for_renewal(root_dir, lock, !opts.check)?;
    let ctx = session.ctx();
    let key = nothing_due::key(&nothing_due::Inputs {
        playbook: &text.text,
        hostname: &session.facts.hostname,
        is_root: ctx.is_root,
        metrics_dir: super::is_real_dir(ctx.root, paths::NODE_EXPORTER_TEXTFILE_DIR),
    });
    let now = ctx.clock.unix_now();
    if let Some(report) = quiet_report(&session, &key, now, opts) {
        if !opts.check {
            let outcome = outcome(&report, true, &metrics, now);
            record(&ctx, &metrics, outcome, None, &text.name);
        }
        return Ok(Renewed {
            report,
            backing_off: Vec::new(),
            seen: crate::renew::Seen::default(),
        });
    }
    let writes = !opts.dry_run && !opts.check;
    if writes {
        session.begin_writing();
    }
    // The playbook apply installed (the daemon's, given on stdin or by
    // name): the same bytes as the file.
    let opts = crate::renew::Options {
        installed_playbook: ctx
            .root
            .read_to_string(std::path::Path::new(paths::INSTALLED_PLAYBOOK))
            .ok()
            .flatten()
            .is_some_and(|t| t == text.text),
        ..opts
    };
    let loaded = text.parse()?;
    let pb = std::sync::Arc::new(session.resolve(loaded.pb)?);
    let renewed = crate::renew::renew(&pb, &ctx, opts)?;
    // Only a run that changed something leaves pairs or generations behind.
    if writes && renewed.report.changed + renewed.report.failed > 0 {
        if let Err(e) = crate::recover::sweep(ctx.root) {
            tracing::warn!("removing key pairs no longer live: {e}");
        }
    }
    if writes {
        let at = ctx.clock.unix_now();
        let outcome = outcome(&renewed.report, renewed.exit_code() == 0, &metrics, at);
        record(&ctx, &metrics, outcome, Some(&pb), &loaded.name);
        remember(&pb, &ctx, &renewed, key, at);
    }
    Ok(renewed)
}

/// The report of a run with nothing to do, when the last run's memo still
/// answers for this one (never for `--force` or `--dry-run`, which talk to
/// the CA whatever is due).
fn quiet_report(
    session: &Session,
    key: &str,
    now: i64,
    opts: crate::renew::Options,
) -> Option<crate::report::Report> {
    if opts.force || opts.dry_run || !session.after_clean_end() {
        return None;
    }
    let memo = nothing_due::load(&session.root)?;
    match nothing_due::holds(&session.root, &memo, key, now) {
        Ok(()) => {
            if memo.certificates.is_empty() {
                tracing::info!("nothing due: no ACME certificate");
            } else {
                tracing::info!(
                    "nothing due before {} (and nothing changed since the last run)",
                    crate::when::rfc3339(memo.until)
                );
            }
            Some(nothing_due::report(
                &memo,
                if opts.check { "check" } else { "apply" },
            ))
        }
        Err(miss) => {
            tracing::info!("a full renewal run: {miss}");
            None
        }
    }
}

/// A memo for the next run when this one left every certificate quiet
/// (and the metrics need no status gathered: no metrics file).
fn remember(pb: &Playbook, ctx: &crate::task::Ctx, renewed: &Renewed, key: String, now: i64) {
    let r = &renewed.report;
    if r.failed > 0 || !renewed.backing_off.is_empty() || r.queue.is_some() {
        return;
    }
    if pb.metrics.file().is_some() {
        return;
    }
    if let Some(memo) = crate::renew::quiet(pb, ctx, &renewed.seen, key, now) {
        if let Err(e) = nothing_due::save(ctx.root, &memo) {
            tracing::warn!("writing {}: {e}", paths::NOTHING_DUE);
        }
    }
}

/// How the run ended, for the metrics.
fn outcome(
    report: &crate::report::Report,
    succeeded: bool,
    metrics: &Metrics<'_>,
    at: i64,
) -> crate::metrics::Outcome {
    crate::metrics::Outcome {
        at,
        duration_seconds: metrics.started.elapsed().as_secs_f64(),
        changed: report.changed as u64,
        failed: report.failed as u64,
        succeeded,
    }
}

/// Records the run in the metrics.
fn record(
    ctx: &crate::task::Ctx,
    metrics: &Metrics<'_>,
    outcome: crate::metrics::Outcome,
    pb: Option<&Playbook>,
    playbook: &str,
) {
    let file = pb.and_then(|pb| pb.metrics.file());
    // The seed is for the metrics file only (and may ask the host's tools).
    let seed = file
        .map(|_| super::machine_seed(ctx.root))
        .unwrap_or_default();
    super::record_metrics(
        ctx,
        crate::metrics::Finished {
            command: metrics.command,
            outcome,
            pb,
            playbook,
            seed: &seed,
            file,
            take_over: false,
        },
    );
}
