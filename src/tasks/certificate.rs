//! Server certificates: self-signed and CA-signed ones are made here, ACME
//! ones are obtained (the engine turns them into journaled writes), provided
//! files are validated. A certificate and its key are written as one pair
//! ([`crate::tasks::pair`]): key 0600 in 0700 directories, and never one
//! without the other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::facts::cert::{check_pair, inspect_pem, CertInfo, CertProblem, PairProblem};
use crate::nothing_due::Sighting;
use crate::playbook::{KeyType, Source};
use crate::task::{Action, Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tasks::pair::{self, Live};

/// Where a certificate and its key live on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The certificate (full chain, leaf first).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

pub use crate::paths::CERT_DIR;

impl CertPaths {
    /// Where nginx reads portico-made certificate `name`: its live pair.
    pub fn managed(name: &str) -> Self {
        CertPaths {
            cert: crate::paths::live_cert(name),
            key: crate::paths::live_key(name),
        }
    }

    /// The plain copies of portico-made certificate `name` that hooks and
    /// operators use (`certs/NAME.crt`, `private/NAME.key`).
    pub fn copies(name: &str) -> Self {
        CertPaths {
            cert: crate::paths::cert_file(name),
            key: crate::paths::key_file(name),
        }
    }

    /// Where portico before 0.2 kept certificate `name`, in the system's
    /// trust store directory; a certificate found there is carried over.
    pub fn legacy(name: &str) -> Self {
        CertPaths {
            cert: crate::paths::legacy_cert(name),
            key: crate::paths::legacy_key(name),
        }
    }

    /// Where the playbook's certificate lives: its own files, or portico's.
    pub fn of(c: &crate::playbook::Certificate) -> Self {
        match &c.source {
            Source::Files {
                cert_file,
                key_file,
            } => CertPaths {
                cert: PathBuf::from(cert_file),
                key: PathBuf::from(key_file),
            },
            _ => CertPaths::managed(&c.name),
        }
    }
}

/// The re-issue reason when the playbook asks for another key type.
const KEY_CHANGED: &str = "key type changed";

/// How a renewal run treats the certificate (`portico renew`).
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// `--force`: re-issue even when not due.
    pub force: bool,
    /// `--dry-run`: obtain from the server, write nothing.
    pub dry_run: bool,
    /// Backing off after failures: not tried in this run, and why.
    pub hold: Option<String>,
    /// The CA's suggested renewal window (ARI) and this certificate's place
    /// in it, in [0, 1); without a window the lifetime rule decides.
    pub ari: Option<(crate::acme::policy::Window, f64)>,
    /// A renewal run (the daemon, `portico renew`): without a window, an
    /// ACME certificate renews at its place in the lifetime spread. An
    /// `apply` renews only at `remaining_fraction`, never before the
    /// daemon would.
    pub spread: bool,
    /// Where a renewal run keeps what the task saw of a certificate with
    /// nothing to do, for the memo of a quiet run (crate::nothing_due).
    pub witness: Option<std::sync::Arc<Witness>>,
}

/// Where a certificate's task leaves what it saw when it had nothing to
/// do, for the run that made it.
#[derive(Debug, Default)]
pub struct Witness(std::sync::Mutex<Option<Sighting>>);

impl Witness {
    /// What was seen, if the task found nothing to do.
    pub fn seen(&self) -> Option<Sighting> {
        self.0.lock().ok()?.clone()
    }

    fn saw(&self, seen: Sighting) {
        if let Ok(mut cell) = self.0.lock() {
            *cell = Some(seen);
        }
    }

    fn clear(&self) {
        if let Ok(mut cell) = self.0.lock() {
            *cell = None;
        }
    }
}

/// One certificate of the playbook, with the names it must cover.
pub struct CertificateTask {
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub source: Source,
    /// The names it must cover.
    pub names: BTreeSet<String>,
    /// The key type.
    pub key: KeyType,
    /// Renew when less than this fraction of the lifetime remains.
    pub remaining_fraction: f64,
    /// Its files.
    pub paths: CertPaths,
    /// Seconds since the epoch, from the clock: what "due" and "expired"
    /// are measured against, and when made certificates start.
    pub now: i64,
    /// The playbook's `[acme]` (for ACME certificates), shared by every
    /// certificate's task.
    pub acme: Option<std::sync::Arc<crate::playbook::Acme>>,
    /// The `[[dns]]` provider of a DNS-01 certificate (shared likewise).
    pub dns: Option<std::sync::Arc<crate::playbook::Dns>>,
    /// What a renewal run asks.
    pub renewal: Renewal,
}

impl CertificateTask {
    /// The private CA that signs it, for `source = "ca"`.
    fn signing_ca<'a>(&self, ctx: &Ctx<'a>) -> Option<(&str, crate::tls::ca::Ca<'a>)> {
        match &self.source {
            Source::Ca { ca, .. } => Some((ca, crate::tls::ca::Ca::new(ctx.root, ca, self.now))),
            _ => None,
        }
    }

    /// The live pair, read once ([`pair::live`]), when it is fine; else
    /// why it must be replaced.
    fn checked_live(&self, ctx: &Ctx) -> Result<Result<(Live, CertInfo), String>, TaskError> {
        if self.renewal.force {
            return Ok(Err("forced".into()));
        }
        let Some(live) = pair::live(ctx.root, &self.name)? else {
            return Ok(Err("missing".into()));
        };
        // A key beside another order's certificate is no pair: nginx would
        // refuse it. Made again, never served. A live pair portico wrote
        // was checked then: its hash says it is intact.
        if !live.intact() {
            return Ok(Err("its key does not belong to it".into()));
        }
        let info = match read_pair(&live.cert, &live.key, true) {
            Ok(info) => info,
            Err(why) => return Ok(Err(why.into())),
        };
        Ok(match self.reason_in(ctx, &live.cert, &info)? {
            Some(why) => Err(why),
            None => Ok((live, info)),
        })
    }

    /// When the certificate with facts `info` comes due (Unix seconds), and
    /// whether the CA's window (ARI) decided it: a moment drawn inside that
    /// window; else, in a renewal run, its place in the lifetime spread;
    /// else exactly at `remaining_fraction`.
    fn due_at(&self, info: &CertInfo) -> (i64, bool) {
        let (window, jitter) = match self.renewal.ari {
            Some((w, j)) => (Some(w), j),
            // The daemon's renewals spread over their lifetime; what apply
            // renews (self-signed, a private CA's) needs no spreading.
            None if self.source.is_acme() && self.renewal.spread => {
                (None, crate::acme::policy::lifetime_jitter(&self.name))
            }
            None => (None, 0.0),
        };
        let at = crate::acme::policy::renew_at(
            info.not_before,
            info.not_after,
            self.remaining_fraction,
            window,
            jitter,
        );
        (at, window.is_some())
    }

    /// Why the plain certificate and key at `paths` (an older portico's
    /// files) would have to be replaced, or `None` when they are fine.
    fn plain_reason(&self, ctx: &Ctx, paths: &CertPaths) -> Result<Option<String>, TaskError> {
        if self.renewal.force {
            return Ok(Some("forced".into()));
        }
        let Some(pem) = ctx.root.read(&paths.cert)? else {
            return Ok(Some("missing".into()));
        };
        let Some(key) = ctx.root.read(&paths.key)? else {
            return Ok(Some("its key is missing".into()));
        };
        match read_pair(&pem, &key, false) {
            Ok(info) => self.reason_in(ctx, &pem, &info),
            Err(why) => Ok(Some(why.into())),
        }
    }

    /// Why the certificate `pem` (its facts `info`) must be replaced: its
    /// names, its issuer, its key type, or its age.
    fn reason_in(
        &self,
        ctx: &Ctx,
        pem: &[u8],
        info: &CertInfo,
    ) -> Result<Option<String>, TaskError> {
        if info.names != self.names {
            return Ok(Some(format!(
                "names changed ({} -> {})",
                join(&info.names),
                join(&self.names)
            )));
        }
        if let Some((name, ca)) = self.signing_ca(ctx) {
            // Re-created CA (new key): what it signed before no longer chains.
            let ca_pem = ctx.root.read(&ca.cert_path())?.unwrap_or_default();
            if ca_pem.is_empty() || !pem.windows(ca_pem.len()).any(|w| w == ca_pem.as_slice()) {
                return Ok(Some(format!("not issued by the current ca {name}")));
            }
        }
        if let Some(why) = source_changed(&self.source, info) {
            return Ok(Some(why));
        }
        if info.key != self.key.name() {
            return Ok(Some(format!(
                "{KEY_CHANGED} ({} -> {})",
                info.key,
                self.key.name()
            )));
        }
        let (at, ari) = self.due_at(info);
        if self.now >= at {
            return Ok(Some(
                if ari {
                    "due: inside the CA's suggested renewal window (ARI)"
                } else {
                    "due for renewal"
                }
                .into(),
            ));
        }
        Ok(None)
    }

    /// A good certificate where an older portico kept it (plain files at
    /// the copies' names, before pairs; or the system's trust store, before
    /// 0.2), no live pair: made the live pair (no new order, no new key).
    /// `None` when there is nothing to carry over or it would be re-issued
    /// anyway.
    fn carry_over(&self, ctx: &Ctx) -> Result<Option<Vec<Change>>, TaskError> {
        if matches!(self.source, Source::Files { .. })
            || self.paths.cert != CertPaths::managed(&self.name).cert
            || ctx.root.exists(&crate::paths::live_link(&self.name))
        {
            return Ok(None);
        }
        for (from, why) in [
            (
                CertPaths::copies(&self.name),
                "laid out as a pair".to_string(),
            ),
            (
                CertPaths::legacy(&self.name),
                format!(
                    "carried over from {}; certificates now live in {CERT_DIR}",
                    CertPaths::legacy(&self.name).cert.display()
                ),
            ),
        ] {
            if self.plain_reason(ctx, &from)?.is_some() {
                continue;
            }
            let (Some(key), Some(cert)) = (ctx.root.read(&from.key)?, ctx.root.read(&from.cert)?)
            else {
                continue;
            };
            return Ok(Some(vec![self.write_pair(ctx, cert, key, &why)?]));
        }
        Ok(None)
    }

    /// The change that writes `cert` and `key` as this certificate's pair.
    fn write_pair(
        &self,
        ctx: &Ctx,
        cert: Vec<u8>,
        key: Vec<u8>,
        why: &str,
    ) -> Result<Change, TaskError> {
        let mut change = Change::new(
            format!(
                "write {} and its key as one pair [{why}]",
                self.paths.cert.display()
            ),
            Action::WritePair {
                name: self.name.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
        );
        if ctx.diffs {
            change.diff = Some(pair::diff(ctx.root, &self.name, &cert, &key)?);
        }
        Ok(change)
    }

    /// A certificate that is right, laid out as it should be: its pair
    /// live and the plain copies its bytes (a pair of plain files from an
    /// older portico becomes one, same bytes), the key 0600 in 0700, all
    /// root's.
    fn layout_changes(&self, ctx: &Ctx, live: &Live) -> Result<Vec<Change>, TaskError> {
        let Some([key_copy, cert_copy]) = pair::copies_of(ctx.root, &self.name, live)? else {
            return Ok(vec![self.write_pair(
                ctx,
                live.cert.clone(),
                live.key.clone(),
                "laid out as a pair",
            )?]);
        };
        let dir = crate::paths::pair_dir(&self.name).join(&live.id);
        let copies = CertPaths::copies(&self.name);
        let mut changes = Vec::new();
        // The files' metadata came with their bytes; the directories'
        // is read here.
        for (path, mode, meta) in [
            (crate::paths::pair_dir(&self.name), 0o700, None),
            (dir.clone(), 0o700, None),
            (
                dir.join(crate::paths::PAIR_KEY),
                0o600,
                Some(&live.key_meta),
            ),
            (
                dir.join(crate::paths::PAIR_CERT),
                0o644,
                Some(&live.cert_meta),
            ),
            (
                copies
                    .key
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                0o700,
                None,
            ),
            (copies.key.clone(), 0o600, Some(&key_copy)),
            (copies.cert.clone(), 0o644, Some(&cert_copy)),
        ] {
            let found = match meta {
                Some(m) => Some(*m),
                None => ctx.root.meta(&path)?,
            };
            let Some(m) = found else {
                continue;
            };
            if m.mode & 0o777 & !mode != 0 {
                let tight = m.mode & mode;
                changes.push(Change::new(
                    format!("chmod {:04o} -> {tight:04o} {}", m.mode, path.display()),
                    Action::SetMode {
                        path: path.clone(),
                        mode: tight,
                    },
                ));
            }
            // Only root can give a file back to root.
            if ctx.is_root && (m.uid, m.gid) != (0, 0) {
                changes.push(Change::new(
                    format!("chown {}:{} -> 0:0 {}", m.uid, m.gid, path.display()),
                    Action::SetOwner {
                        path,
                        uid: 0,
                        gid: 0,
                    },
                ));
            }
        }
        Ok(changes)
    }

    fn check_acme(&self, ctx: &Ctx, reuse_key: bool) -> Result<Vec<Change>, TaskError> {
        let acme = self.acme.clone().ok_or(TaskError::NoAcmeSection)?;
        // Stamped before they are read: a change while this task decides
        // moves a stamp (crate::nothing_due).
        let before = match &self.renewal.witness {
            // Only what the check the engine acts on saw counts (a task
            // may be checked early, then again in its turn).
            Some(w) => {
                w.clear();
                crate::nothing_due::observe(ctx.root, &self.name)
            }
            None => None,
        };
        let reason = match self.checked_live(ctx)? {
            Ok((live, info)) => {
                let changes = self.layout_changes(ctx, &live)?;
                if let (Some(w), Some(quiet), true) =
                    (&self.renewal.witness, before, changes.is_empty())
                {
                    if Path::new(&quiet.link) == pair::live_target(&self.name, &live.id) {
                        w.saw(Sighting {
                            quiet,
                            due_at: self.due_at(&info).0,
                        });
                    }
                }
                return Ok(changes);
            }
            Err(reason) => reason,
        };
        let directory = crate::acme::issue::directory_url(&acme.directory);
        Ok(vec![Change::new(
            format!(
                "obtain a certificate for {} from {directory}{} [{reason}]",
                join(&self.names),
                match &self.dns {
                    Some(d) => format!(" over DNS-01 ({} {})", d.provider.name(), d.name),
                    None => String::new(),
                }
            ),
            Action::Obtain(Box::new(crate::acme::Job {
                acme: (*acme).clone(),
                names: self.names.iter().cloned().collect(),
                key: self.key,
                dns: self.dns.as_deref().cloned(),
                // A key of the old type cannot be kept for the new one.
                reuse_key: reuse_key && !reason.starts_with(KEY_CHANGED),
                name: self.name.clone(),
                cert_path: self.paths.cert.clone(),
                key_path: self.paths.key.clone(),
                dry_run: self.renewal.dry_run,
            })),
        )])
    }

    fn check_files(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let cert = &self.paths.cert;
        let problem = |problem| TaskError::CertFile {
            path: cert.clone(),
            problem,
        };
        let pem = ctx
            .root
            .read(cert)?
            .ok_or_else(|| problem(CertProblem::Missing("certificate")))?;
        let key = ctx
            .root
            .read(&self.paths.key)?
            .ok_or_else(|| TaskError::CertFile {
                path: self.paths.key.clone(),
                problem: CertProblem::Missing("key"),
            })?;
        let info = check_pair(&pem, &key).map_err(|p| {
            problem(CertProblem::Pair {
                key: self.paths.key.clone(),
                problem: p,
            })
        })?;
        if info.not_after <= self.now {
            return Err(problem(CertProblem::Expired));
        }
        let uncovered: BTreeSet<_> = self.names.difference(&info.names).cloned().collect();
        if !uncovered.is_empty() {
            return Err(problem(CertProblem::Uncovered(join(&uncovered))));
        }
        Ok(Vec::new())
    }

    /// Self-signed or from the playbook's CA: made here, written as a pair.
    fn check_made(&self, ctx: &Ctx, days: u32) -> Result<Vec<Change>, TaskError> {
        let reason = match self.checked_live(ctx)? {
            Ok((live, _)) => return self.layout_changes(ctx, &live),
            Err(reason) => reason,
        };
        let (issued, what) = match self.signing_ca(ctx) {
            Some((name, ca)) => (
                ca.server_certificate(&self.names, self.key, days)?,
                format!("certificate from ca {name}"),
            ),
            None => (
                crate::tls::self_signed(&self.names, self.key, days, self.now)?,
                "self-signed certificate".to_string(),
            ),
        };
        Ok(vec![self.write_pair(
            ctx,
            issued.cert_pem.into_bytes(),
            issued.key_pem.into_bytes(),
            &format!("{what}: {reason}"),
        )?])
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Task for CertificateTask {
    fn id(&self) -> TaskId {
        TaskId::Certificate(self.name.clone())
    }

    fn after(&self) -> Vec<TaskId> {
        match &self.source {
            Source::Ca { ca, .. } => vec![TaskId::Ca(ca.clone())],
            _ => Vec::new(),
        }
    }

    /// Signed by a CA this same run may create: `--check` cannot sign yet.
    fn reads(&self) -> Vec<TaskId> {
        self.after()
    }

    fn hold(&self) -> Option<String> {
        self.renewal.hold.clone()
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        if self.renewal.dry_run {
            return Vec::new();
        }
        vec![Handler::ReloadNginx]
    }

    /// portico's certificate and key; files the playbook names are the
    /// operator's, never portico's.
    fn owns(&self) -> Vec<crate::owned::Owned> {
        if matches!(self.source, Source::Files { .. }) {
            return Vec::new();
        }
        let owner = format!("certificate {}", self.name);
        pair::owned(&self.name, &owner, crate::owned::Disposal::Archive)
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        if let Some(changes) = self.carry_over(ctx)? {
            return Ok(changes);
        }
        match &self.source {
            Source::Files { .. } => self.check_files(ctx),
            Source::Acme { reuse_key, .. } => self.check_acme(ctx, *reuse_key),
            Source::SelfSigned { days } | Source::Ca { days, .. } => self.check_made(ctx, *days),
        }
    }
}

/// The certificate's facts, when `pem` and `key` make a pair (a live one
/// was checked when written: its certificate is only read); else why not.
fn read_pair(pem: &[u8], key: &[u8], live: bool) -> Result<CertInfo, &'static str> {
    let parsed = if live {
        inspect_pem(pem).ok_or(PairProblem::Unparsable { index: 0 })
    } else {
        check_pair(pem, key)
    };
    match parsed {
        Ok(info) => Ok(info),
        Err(PairProblem::KeyMismatch) => Err("its key does not belong to it"),
        Err(PairProblem::BadKey) => Err("its key cannot be read"),
        Err(_) => inspect_pem(pem).ok_or("the existing file is not a readable certificate"),
    }
}

/// Switched between sources: what made the certificate is no longer what
/// the playbook says (a private CA's are checked by their CA).
fn source_changed(source: &Source, info: &CertInfo) -> Option<String> {
    let from_private_ca = info.issuer.starts_with(crate::tls::ca::CN_PREFIX);
    match source {
        Source::SelfSigned { .. } if !info.self_issued => Some(format!(
            "source changed: issued by {}, the playbook wants it self-signed",
            info.issuer
        )),
        Source::Acme { .. } if info.self_issued || from_private_ca => Some(format!(
            "source changed: {}, the playbook wants it from the ACME server",
            if info.self_issued {
                "self-signed".to_string()
            } else {
                format!("issued by {}", info.issuer)
            }
        )),
        _ => None,
    }
}
