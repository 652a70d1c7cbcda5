//! `portico status`: certificates, sites, nginx and the renewal daemon.

use std::path::PathBuf;

use clap::Args;

use super::{load_playbook, machine_seed, CliError, Session};

/// `portico status`'s arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// one `apply` installed,
    /// /etc/portico/playbook.toml (else the embedded default).
    pub playbook: Option<PathBuf>,
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Prometheus' text format: the metrics portico writes for
    /// node_exporter ([metrics] textfile), on stdout (for a cron job or an
    /// exporter of your own); the exit code is then 0.
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    /// Which host.
    #[command(flatten)]
    pub host: super::HostArg,
}

/// Prints the status; exit code 1 when a certificate is expired, missing
/// or failing, nginx serves another certificate than its file, or nginx is
/// not running. With --prometheus, the metrics, and exit code 0 (the
/// problems are in them).
pub(super) fn run(a: StatusArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(a.playbook.as_deref(), &a.host.root)?;
    let session = Session::open(a.host.root, false)?;
    let pb = session.resolve(loaded.pb)?;
    let ctx = session.ctx();
    let status = crate::status::gather(&pb, &ctx, &loaded.name, &machine_seed(ctx.root));
    if a.prometheus {
        let runs = crate::metrics::Runs::load(ctx.root);
        out!(
            "{}",
            crate::metrics::text(Some(&pb), Some(&status), &ctx, &runs)
        );
        // The problems are in the metrics: a cron job's `> tmp && mv`
        // must not stop updating the file exactly when something is wrong.
        return Ok(0);
    } else if a.json.json {
        let mut v = serde_json::to_value(&status).expect("status serializes");
        v["schema"] = crate::report::SCHEMA.into();
        // A service not asked about (under --root) is unknown: null.
        for path in ["/nginx", "/daemon/service"] {
            if let Some(service) = v.pointer_mut(path) {
                if service["state"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("not checked"))
                {
                    service["active"] = serde_json::Value::Null;
                }
            }
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).expect("status serializes")
        );
    } else {
        out!("{}", status.render_text());
    }
    Ok(status.exit_code())
}
