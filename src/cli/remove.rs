//! `portico remove`: undo what portico made on this host.

use crate::paths;

use clap::Args;

use super::{record_metrics, run_plan, CliError, Output, Session};
use crate::manifest::{self, Manifest};
use crate::plan::Converge;

/// `portico remove`'s arguments.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Also delete, for good, the keys, CAs, ACME account and state
    /// (everything under /var/lib/portico and /etc/ssl/portico).
    #[arg(long)]
    pub purge: bool,
    /// Plan only.
    #[command(flatten)]
    pub plan: super::CheckArgs,
    /// Diffs.
    #[command(flatten)]
    pub diff: super::DiffArg,
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Which host.
    #[command(flatten)]
    pub host: super::HostArg,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
}

/// Prunes everything in the manifest.
pub(super) fn run(a: RemoveArgs) -> Result<i32, CliError> {
    let started = std::time::Instant::now();
    let session = Session::open_locked(a.host.root.clone(), (!a.plan.check).then_some(&a.lock))?;
    let mode = a.plan.mode();
    let ctx = crate::task::Ctx {
        diffs: a.diff.diff,
        ..session.ctx_for(mode)
    };
    let old = match Manifest::load(ctx.root)? {
        Some(m) => m,
        None => manifest::legacy(ctx.root)?,
    };
    let archive = manifest::archive_for_run(ctx.root, ctx.clock.unix_now());
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
        json: a.json.json,
        diff: a.diff.diff,
        playbook: format!("none (removing what {} lists)", paths::MANIFEST),
        exit_code: a.plan.exit_code,
    };
    let ran = run_plan(&ctx, &plan, mode, &old, &out, Vec::new(), None);
    // The metrics file stays without --purge, saying how the removal went
    // (and that no certificate is left to watch).
    let files: Vec<&std::path::Path> = old
        .entries
        .iter()
        .filter(|e| e.owner == crate::owned::METRICS_OWNER)
        .filter_map(|e| e.thing.path())
        .collect();
    if !a.plan.check && !a.purge {
        // Nothing renews here any more: the renewals' last runs go, so an
        // alert on renewal runs does not fire for a host that stopped on
        // purpose.
        crate::metrics::Runs::forget_renewals(ctx.root);
        let targets: Vec<Option<&std::path::Path>> = if files.is_empty() {
            vec![None]
        } else {
            files.into_iter().map(Some).collect()
        };
        for file in targets {
            record_metrics(
                &ctx,
                crate::metrics::Finished {
                    command: "remove",
                    outcome: ran.outcome(&ctx, started),
                    pb: None,
                    playbook: &out.playbook,
                    seed: "",
                    file,
                    take_over: false,
                },
            );
        }
    }
    Ok(ran.code)
}
