//! Metrics for Prometheus: certificate expiry, renewal health and run
//! figures, as node_exporter's textfile collector reads them (one `.prom`
//! file, replaced whole after every `apply`, `renew`, daemon renewal and
//! `remove`), or on stdout (`status --prometheus`).
//!
//! What the file says comes from the same places `status` reads (the
//! certificates on disk, the renewal state, what nginx serves) plus each
//! command's last run ([`runs`]); [`render`] is pure.

pub mod render;
pub mod runs;
pub mod textfile;

use std::path::Path;

use crate::playbook::Playbook;
use crate::status::Status;
use crate::task::Ctx;

pub use runs::{Outcome, Runs};

/// The metrics text for this host, from its `status`; `pb` is `None`
/// after `remove` (no certificates left to describe).
pub fn text(pb: Option<&Playbook>, status: Option<&Status>, ctx: &Ctx, runs: &Runs) -> String {
    let cas = pb.map(|pb| ca_figures(pb, ctx)).unwrap_or_default();
    render::render(&render::Snapshot {
        pb,
        status,
        cas: &cas,
        runs,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Each private CA's own expiry and its valid client certificates.
fn ca_figures(pb: &Playbook, ctx: &Ctx) -> Vec<render::CaFigures> {
    let now = ctx.clock.unix_now();
    pb.cas
        .iter()
        .map(|c| {
            let ca = crate::tls::ca::Ca::new(ctx.root, &c.name, now);
            let not_after = ctx
                .root
                .read(&ca.cert_path())
                .ok()
                .flatten()
                .and_then(|pem| crate::facts::cert::inspect_pem(&pem))
                .map(|i| i.not_after);
            let valid: Vec<i64> = ca
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.revoked_at.is_none() && e.not_after > now)
                .map(|e| e.not_after)
                .collect();
            render::CaFigures {
                name: c.name.clone(),
                not_after,
                valid_clients: valid.len() as u64,
                next_client_expiry: valid.into_iter().min(),
            }
        })
        .collect()
}

/// What a finished run tells the metrics.
pub struct Finished<'a> {
    /// `apply`, `renew`, `daemon` (the daemon's renewal), `remove`.
    pub command: &'a str,
    /// How it ended.
    pub outcome: Outcome,
    /// The playbook it ran (none for `remove`), and its name.
    pub pb: Option<&'a Playbook>,
    /// The playbook's name in messages.
    pub playbook: &'a str,
    /// The machine's seed (the daemon's schedule).
    pub seed: &'a str,
    /// Where the metrics go; `None`: nowhere.
    pub file: Option<&'a Path>,
    /// `apply` took over what is at `file` (it checked, or was told to
    /// `--adopt`): write even if the manifest does not list it.
    pub take_over: bool,
}

/// Records the run and rewrites the metrics file. Never fails the run: a
/// file that cannot be written is a warning, returned to be reported.
pub fn after_run(ctx: &Ctx, f: &Finished<'_>) -> Option<String> {
    let mut runs = Runs::load(ctx.root);
    runs.record(f.command, f.outcome);
    if let Err(e) = runs.save(ctx.root) {
        return Some(format!("metrics: recording this run: {e}"));
    }
    let file = f.file?;
    let status =
        f.pb.map(|pb| crate::status::gather(pb, ctx, f.playbook, f.seed));
    let body = text(f.pb, status.as_ref(), ctx, &runs);
    textfile::write(ctx.root, file, &body, f.take_over)
        .err()
        .map(|e| format!("metrics: {e}"))
}
