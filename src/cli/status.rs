//! `portico status`: certificates, sites, nginx and the renewal daemon.

use std::path::PathBuf;

use clap::Args;

use super::{load_playbook, machine_seed, CliError, Fallback, Session};

/// `portico status`'s arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// one `apply` installed,
    /// /etc/portico/playbook.toml (else the embedded default).
    pub playbook: Option<PathBuf>,
    /// Print JSON (dates in RFC 3339).
    #[arg(long)]
    pub json: bool,
    /// Operate on the tree under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Prints the status; exit code 1 when a certificate is expired, missing
/// or failing, or nginx is not running.
pub(super) fn run(a: StatusArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(a.playbook.as_deref(), Fallback::Installed, &a.root)?;
    let session = Session::open(a.root, false)?;
    let pb = session.resolve(loaded.pb)?;
    let ctx = session.ctx();
    let status = crate::status::gather(&pb, &ctx, &loaded.name, &machine_seed(ctx.root));
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes")
        );
    } else {
        out!("{}", status.render_text());
    }
    Ok(status.exit_code())
}
