//! Deploy hooks (`[renewal] deploy_hook`), with certbot's `--deploy-hook`
//! semantics: once for each certificate that changed, after nginx reloaded
//! (or when nginx is not running, so there was nothing to reload), with the
//! certificate named in the environment. An argv list, never a shell
//! string; killed after its timeout. A failing hook is reported, and the
//! new certificate stays.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::host::Command;
use crate::playbook::Playbook;
use crate::report::{Report, Status, TaskReport};
use crate::task::{Ctx, Handler};
use crate::tasks::certificate::CertPaths;

/// The bytes of every certificate of a playbook before a run, by name: a
/// certificate "changed" when its file holds other bytes afterwards (a key
/// whose mode was fixed, or a run that was rolled back, did not change it).
pub struct Snapshot(BTreeMap<String, Option<String>>);

impl Snapshot {
    /// Reads the playbook's certificate files now.
    pub fn take(pb: &Playbook, root: &crate::host::Root) -> Snapshot {
        // Without a hook nothing asks what changed: no certificate is read.
        if pb.renewal.deploy_hook.as_ref().is_none_or(|a| a.is_empty()) {
            return Snapshot(Default::default());
        }
        Snapshot(
            pb.certificates
                .iter()
                .map(|c| {
                    let pem = root.read(&CertPaths::of(c).cert).ok().flatten();
                    (c.name.clone(), pem.map(|b| crate::owned::sha256_hex(&b)))
                })
                .collect(),
        )
    }

    /// The certificates whose file changed since the snapshot.
    fn changed(&self, pb: &Playbook, root: &crate::host::Root) -> Vec<String> {
        let now = Snapshot::take(pb, root);
        now.0
            .into_iter()
            .filter(|(name, hash)| hash.is_some() && self.0.get(name) != Some(hash))
            .map(|(name, _)| name)
            .collect()
    }
}

/// Runs the playbook's deploy hook for every certificate whose file the
/// run changed (against `before`), adding a line per hook to `report`.
pub fn run_deploy_hooks(pb: &Playbook, ctx: &Ctx, report: &mut Report, before: &Snapshot) {
    let Some(argv) = pb.renewal.deploy_hook.as_ref().filter(|a| !a.is_empty()) else {
        return;
    };
    if !ctx.live_host {
        return;
    }
    let changed = before.changed(pb, ctx.root);
    if changed.is_empty() {
        return;
    }
    let handler = format!("handler: {}", Handler::ReloadNginx.name());
    let reloaded = report.tasks.iter().find(|t| t.name == handler).map(|t| {
        t.status == Status::Changed
            || (t.status == Status::Skipped
                && t.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("not running")))
    });
    if reloaded != Some(true) {
        report.warnings.push(format!(
            "deploy hook not run for {}: nginx was not reloaded with the new certificate",
            changed.join(", ")
        ));
        return;
    }
    if crate::host::stop::stopping() {
        report.warnings.push(format!(
            "deploy hook not run for {}: the run was told to stop (SIGTERM); run it yourself",
            changed.join(", ")
        ));
        return;
    }
    let timeout = Duration::from_secs(u64::from(pb.renewal.deploy_hook_timeout));
    let certs = pb.certificates_by_name();
    for name in changed {
        if let Some(cert) = certs.get(name.as_str()) {
            report.push(run_hook(pb, ctx, argv, cert, timeout));
        }
    }
}

/// The hook for one certificate, with its paths and names in the
/// environment; a failure keeps the new certificate in place.
fn run_hook(
    pb: &Playbook,
    ctx: &Ctx,
    argv: &[String],
    cert: &crate::playbook::Certificate,
    timeout: Duration,
) -> TaskReport {
    let name = &cert.name;
    // The plain copies of a certificate portico made (what a hook copies
    // elsewhere); an operator's own files as they are.
    let paths = match cert.source {
        crate::playbook::Source::Files { .. } => CertPaths::of(cert),
        _ => CertPaths::copies(name),
    };
    let domains: Vec<String> = crate::plan::certificate_names(pb, cert)
        .into_iter()
        .collect();
    let cmd = Command::mutation(argv.iter().cloned())
        .env("PORTICO_CERT_NAME", name)
        .env("PORTICO_CERT_PATH", &paths.cert.display().to_string())
        .env("PORTICO_KEY_PATH", &paths.key.display().to_string())
        .env("PORTICO_DOMAINS", &domains.join(" "))
        .timeout(timeout)
        .private_args();
    let line = format!("deploy hook for certificate {name}");
    // The program only: a hook's arguments may hold a secret.
    let shown = cmd.shown();
    match ctx.runner.run(&cmd) {
        Ok(out) if out.success() => TaskReport::planned(line, vec![format!("ran {shown}")]),
        Ok(out) => {
            let status = out
                .code
                .map_or("killed".to_string(), |c| format!("exit {c}"));
            let said = out.stderr.trim();
            TaskReport::failed_named(
                line,
                Vec::new(),
                format!(
                    "{shown}: {status}{}{said}; the new certificate stays in place",
                    if said.is_empty() { "" } else { ": " }
                ),
            )
        }
        Err(e) => TaskReport::failed_named(
            line,
            Vec::new(),
            format!("{e}; the new certificate stays in place"),
        ),
    }
}
