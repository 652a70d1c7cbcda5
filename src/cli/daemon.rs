//! `portico daemon`: renew on a schedule until stopped.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{load_playbook, open_root, CliError, Fallback};
use crate::report::Status;

/// `portico daemon`'s arguments.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Playbook file (TOML). Default: the one `apply` installed,
    /// /etc/portico/playbook.toml (else the embedded default).
    pub playbook: Option<PathBuf>,
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Runs the renewal daemon until SIGTERM.
pub(super) fn run(a: DaemonArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(a.playbook.as_deref(), Fallback::Installed, &a.root)?;
    let root = open_root(a.root.clone())?;
    tracing::info!(playbook = %loaded.name, "starting");
    // SIGHUP re-reads the file the playbook came from.
    let file = match a.playbook {
        Some(f) => Some(f),
        None if loaded.name == crate::plan::INSTALLED_PLAYBOOK => root
            .host_path(Path::new(crate::plan::INSTALLED_PLAYBOOK))
            .ok(),
        None => None,
    };
    let pb = loaded.pb;
    let seed = super::machine_seed(&root);
    let root_dir = a.root;
    crate::daemon::run(file, pb, &seed, move |pb| {
        match super::renew::renew_once(pb.clone(), root_dir.clone(), Default::default()) {
            Ok(r) => {
                let report = &r.report;
                for t in report.tasks.iter().filter(|t| t.status == Status::Failed) {
                    tracing::warn!("{}: {}", t.name, t.reason.as_deref().unwrap_or("failed"));
                }
                for w in report.warnings.iter().chain(&r.backing_off) {
                    tracing::warn!("{w}");
                }
                tracing::info!(
                    changed = report.changed,
                    unchanged = report.unchanged,
                    failed = report.failed,
                    skipped = report.skipped,
                    "renewal done"
                );
                format!(
                    "{} changed, {} failed, {} backing off",
                    report.changed,
                    report.failed,
                    r.backing_off.len()
                )
            }
            Err(e) => {
                tracing::error!("renewal: {e}");
                format!("could not run: {e}")
            }
        }
    })?;
    Ok(0)
}
