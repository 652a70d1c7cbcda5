//! Server certificates: self-signed ones are made here; provided files are
//! validated. Keys are 0600 in a 0700 directory.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::engine::{Change, Ctx, Handler, Scope, Task, TaskError};
use crate::facts::cert::{check_pair, inspect_pem};
use crate::playbook::{CertSource, KeyType};
use crate::tasks::file::file_changes;

/// Where a certificate and its key live on the host.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// portico's own certificate directory: apart from the system's trust
/// store (`/etc/ssl/certs`, a symlink on EL), so the renewal daemon's
/// sandbox can write here and nowhere near the trust store.
pub const CERT_DIR: &str = "/etc/ssl/portico";

impl CertPaths {
    /// The default place of portico-made certificate `name`.
    pub fn managed(name: &str) -> Self {
        CertPaths {
            cert: PathBuf::from(format!("{CERT_DIR}/certs/{name}.crt")),
            key: PathBuf::from(format!("{CERT_DIR}/private/{name}.key")),
        }
    }

    /// Where portico before 0.2 kept certificate `name`, in the system's
    /// trust store directory; a certificate found there is carried over.
    pub fn legacy(name: &str) -> Self {
        CertPaths {
            cert: PathBuf::from(format!("/etc/ssl/certs/portico-{name}.crt")),
            key: PathBuf::from(format!("/etc/ssl/private/portico-{name}.key")),
        }
    }
}

/// The re-issue reason when the playbook asks for another key type.
const KEY_CHANGED: &str = "key type changed";

/// One certificate of the playbook, with the names it must cover.
pub struct CertificateTask {
    pub name: String,
    pub source: CertSource,
    pub names: BTreeSet<String>,
    pub key: KeyType,
    pub days: i64,
    pub remaining_fraction: f64,
    pub paths: CertPaths,
    /// Seconds since the epoch; a field so tests can move time.
    pub now: i64,
    /// The playbook's `[acme]` (for `source = "acme"`).
    pub acme: Option<crate::playbook::Acme>,
    pub reuse_key: bool,
    /// `renew --force`: re-issue even when not due.
    pub force: bool,
    /// `renew --dry-run`: obtain from the server, write nothing.
    pub dry_run: bool,
    /// The playbook `[[ca]]` that signs it (`source = "ca"`).
    pub ca: Option<String>,
    /// The CA's suggested renewal window (ARI) and this certificate's place
    /// in it, in [0, 1); without a window the lifetime rule decides.
    pub ari: Option<(crate::acme::policy::Window, f64)>,
}

impl CertificateTask {
    fn ca_name(&self) -> &str {
        self.ca.as_deref().unwrap_or_default()
    }

    /// The private CA that signs it, for `source = "ca"`.
    fn signing_ca<'a>(&self, ctx: &Ctx<'a>) -> Option<crate::tls::ca::Ca<'a>> {
        (self.source == CertSource::Ca).then(|| crate::tls::ca::Ca::new(ctx.root, self.ca_name()))
    }

    /// Why the current certificate must be replaced, or `None` when it is fine.
    pub fn reissue_reason(&self, ctx: &Ctx) -> Result<Option<String>, TaskError> {
        self.reissue_reason_at(ctx, &self.paths)
    }

    /// [`Self::reissue_reason`] for the certificate and key at `paths`.
    fn reissue_reason_at(&self, ctx: &Ctx, paths: &CertPaths) -> Result<Option<String>, TaskError> {
        if self.force {
            return Ok(Some("forced".into()));
        }
        let Some(pem) = ctx.root.read(&paths.cert)? else {
            return Ok(Some("missing".into()));
        };
        if ctx.root.meta(&paths.key)?.is_none() {
            return Ok(Some("its key is missing".into()));
        }
        let Some(info) = inspect_pem(&pem) else {
            return Ok(Some(
                "the existing file is not a readable certificate".into(),
            ));
        };
        if info.names != self.names {
            return Ok(Some(format!(
                "names changed ({} -> {})",
                join(&info.names),
                join(&self.names)
            )));
        }
        if let Some(ca) = self.signing_ca(ctx) {
            // Re-created CA (new key): what it signed before no longer chains.
            let ca_pem = ctx.root.read(&ca.cert_path())?.unwrap_or_default();
            if ca_pem.is_empty() || !pem.windows(ca_pem.len()).any(|w| w == ca_pem.as_slice()) {
                return Ok(Some(format!(
                    "not issued by the current ca {}",
                    self.ca_name()
                )));
            }
        }
        if info.key != self.key.name() {
            return Ok(Some(format!(
                "{KEY_CHANGED} ({} -> {})",
                info.key,
                self.key.name()
            )));
        }
        let (window, jitter) = match self.ari {
            Some((w, j)) => (Some(w), j),
            None => (None, 0.0),
        };
        if crate::acme::policy::due(
            self.now,
            info.not_before,
            info.not_after,
            self.remaining_fraction,
            window,
            jitter,
        ) {
            return Ok(Some(
                if window.is_some() {
                    "due: inside the CA's suggested renewal window (ARI)"
                } else {
                    "due for renewal"
                }
                .into(),
            ));
        }
        Ok(None)
    }

    /// A good certificate at the pre-0.2 path, none at the current one: copy
    /// it over (no new order, no new key). `None` when there is nothing to
    /// carry over or it would be re-issued anyway.
    fn carry_over(&self, ctx: &Ctx) -> Result<Option<Vec<Change>>, TaskError> {
        let legacy = CertPaths::legacy(&self.name);
        if self.source == CertSource::Files
            || self.paths.cert != CertPaths::managed(&self.name).cert
            || ctx.root.exists(&self.paths.cert)
            || self.reissue_reason_at(ctx, &legacy)?.is_some()
        {
            return Ok(None);
        }
        let (Some(key), Some(cert)) = (ctx.root.read(&legacy.key)?, ctx.root.read(&legacy.cert)?)
        else {
            return Ok(None);
        };
        let mut changes = file_changes(ctx, &self.paths.key, &key, 0o600, 0o700)?;
        changes.extend(file_changes(ctx, &self.paths.cert, &cert, 0o644, 0o755)?);
        if let Some(first) = changes.first_mut() {
            first.summary = format!(
                "{} [carried over from {}; certificates now live in {CERT_DIR}]",
                first.summary,
                legacy.cert.display()
            );
        }
        Ok(Some(changes))
    }

    fn check_acme(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let acme = self.acme.clone().ok_or_else(|| {
            TaskError::Other("an ACME certificate needs an [acme] section".into())
        })?;
        let Some(reason) = self.reissue_reason(ctx)? else {
            let key = ctx.root.read(&self.paths.key)?.unwrap_or_default();
            return file_changes(ctx, &self.paths.key, &key, 0o600, 0o700);
        };
        let directory = crate::acme::issue::directory_url(&acme.directory);
        Ok(vec![Change {
            summary: format!(
                "obtain a certificate for {} from {directory} [{reason}]",
                join(&self.names)
            ),
            action: crate::engine::Action::AcmeIssue(Box::new(crate::acme::Job {
                acme,
                names: self.names.iter().cloned().collect(),
                key: self.key,
                // A key of the old type cannot be kept for the new one.
                reuse_key: self.reuse_key && !reason.starts_with(KEY_CHANGED),
                cert_path: self.paths.cert.clone(),
                key_path: self.paths.key.clone(),
                dry_run: self.dry_run,
            })),
            diff: None,
        }])
    }

    fn check_files(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let cert = &self.paths.cert;
        let missing = |p: &std::path::Path, what: &str| {
            TaskError::Other(format!("{}: {what} file does not exist", p.display()))
        };
        let pem = ctx
            .root
            .read(cert)?
            .ok_or_else(|| missing(cert, "certificate"))?;
        let key = ctx
            .root
            .read(&self.paths.key)?
            .ok_or_else(|| missing(&self.paths.key, "key"))?;
        let info = check_pair(&pem, &key).map_err(|e| {
            TaskError::Other(format!(
                "{} with {}: {e}",
                cert.display(),
                self.paths.key.display()
            ))
        })?;
        if info.not_after <= self.now {
            return Err(TaskError::Other(format!(
                "{}: certificate has expired",
                cert.display()
            )));
        }
        let uncovered: BTreeSet<_> = self.names.difference(&info.names).cloned().collect();
        if !uncovered.is_empty() {
            return Err(TaskError::Other(format!(
                "{}: does not cover {}",
                cert.display(),
                join(&uncovered)
            )));
        }
        Ok(Vec::new())
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Task for CertificateTask {
    fn name(&self) -> String {
        format!("certificate {}", self.name)
    }

    fn after(&self) -> Vec<String> {
        match self.source {
            CertSource::Ca => vec![format!("ca {}", self.ca_name())],
            _ => Vec::new(),
        }
    }

    /// Signed by a CA this same run may create: `--check` cannot sign yet.
    fn reads(&self) -> Vec<String> {
        self.after()
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        if let Some(changes) = self.carry_over(ctx)? {
            return Ok(changes);
        }
        match self.source {
            CertSource::SelfSigned => {}
            CertSource::Files => return self.check_files(ctx),
            CertSource::Acme => return self.check_acme(ctx),
            CertSource::Ca => {}
        }
        let Some(reason) = self.reissue_reason(ctx)? else {
            // Right certificate; only make sure the key is not readable by others.
            let key = ctx.root.read(&self.paths.key)?.unwrap_or_default();
            return file_changes(ctx, &self.paths.key, &key, 0o600, 0o700);
        };
        let (issued, what) = match self.signing_ca(ctx) {
            Some(ca) => (
                ca.server_certificate(&self.names, self.key, self.days)
                    .map_err(|e| TaskError::Other(e.to_string()))?,
                format!("certificate from ca {}", self.ca_name()),
            ),
            None => (
                crate::tls::self_signed(&self.names, self.key, self.days)
                    .map_err(|e| TaskError::Other(e.to_string()))?,
                "self-signed certificate".to_string(),
            ),
        };
        let mut changes = file_changes(
            ctx,
            &self.paths.key,
            issued.key_pem.as_bytes(),
            0o600,
            0o700,
        )?;
        changes.extend(file_changes(
            ctx,
            &self.paths.cert,
            issued.cert_pem.as_bytes(),
            0o644,
            0o755,
        )?);
        if let Some(first) = changes.first_mut() {
            first.summary = format!("{} [{what} {reason}]", first.summary);
        }
        Ok(changes)
    }
}
