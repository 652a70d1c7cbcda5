//! Issuance with instant-acme over HTTP-01 (the challenge answers are files
//! in the webroot nginx's port-80 server serves) or DNS-01 (TXT records a
//! `[[dns]]` provider publishes). The account is created once
//! and kept (0600) under `/var/lib/portico/acme/`.

use crate::paths;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus,
};
use thiserror::Error;

use super::http::RetryAfter;
use crate::timing;

use crate::host::root::RootError;
use crate::host::Root;
use crate::playbook::{Acme, KeyType};

/// How a certificate's failure reads when its order was never started.
pub const NOT_STARTED: &str = "not ordered in this run";

/// How a certificate reads when it waits for its account's order budget
/// (src/acme/ledger.rs).
pub const QUEUED: &str = "queued behind the account's order limit";

/// How a certificate reads when the CA rate-limited its whole account.
pub const HELD: &str = "held with the whole account";

/// Is `reason` one of a certificate that was not ordered, or waits with
/// its account: nothing of its own went wrong, so no back-off of its own.
pub fn not_its_own_failure(reason: &str) -> bool {
    [NOT_STARTED, QUEUED, HELD]
        .iter()
        .any(|p| reason.starts_with(p))
}

/// The problem type of an ACME rate limit (RFC 8555 §6.7).
const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";

/// Why a certificate could not be obtained from the ACME server.
#[derive(Debug, Error)]
pub enum AcmeError {
    /// What the CA issued could not be written.
    #[error("writing what the CA issued: {0}")]
    Install(String),
    /// The order was not started: the run is stopping, or near its limit.
    /// Not the CA's failure: no back-off, the next run tries.
    #[error("{NOT_STARTED}: {0}")]
    NotStarted(&'static str),
    /// A file under the root (account, challenge answers).
    #[error(transparent)]
    Fs(#[from] RootError),
    /// What the server said, or did not say, at a step (its text escaped).
    #[error("ACME {step} ({directory}): {message}")]
    Server {
        /// `new order`, `validation`, ...
        step: &'static str,
        /// The directory URL.
        directory: String,
        /// The server's words, or what was wrong with its answer.
        message: String,
    },
    /// `[acme] ca_root` is not a PEM certificate bundle rustls accepts.
    #[error("{path}: cannot use as the ACME server's CA root: {reason}")]
    CaRoot {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The stored account is not one.
    #[error("{path}: not an ACME account file: {source}")]
    Account {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// `[acme] eab.hmac_key_file` is missing.
    #[error("{0}: EAB HMAC key file does not exist")]
    EabMissing(PathBuf),
    /// The EAB key is not base64url. Its characters are never shown.
    #[error(
        "{path}: the EAB HMAC key is not base64url ({len} bytes read; expected the key as the CA gave it, A-Z a-z 0-9 - _)"
    )]
    EabNotBase64 {
        /// The file.
        path: PathBuf,
        /// How many bytes it held.
        len: usize,
    },
    /// The key to keep (`reuse_key`) does not load.
    #[error("{path}: cannot reuse this key: {source}")]
    ReuseKey {
        /// The key file.
        path: PathBuf,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// A new key.
    #[error(transparent)]
    Key(#[from] crate::tls::TlsError),
    /// The certificate request for the names.
    #[error("certificate request for {names}: {source}")]
    Csr {
        /// The names.
        names: String,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// nginx does not answer the challenges for the names yet.
    #[error(
        "http://127.0.0.1/.well-known/acme-challenge/: nginx does not answer ACME challenges on port 80 for {names}; is another server on port 80?"
    )]
    NotServed {
        /// The names.
        names: String,
    },
    /// Another user could change the webroot: a link swapped in there
    /// could not send portico's writes elsewhere (every step is made
    /// relative to an open directory), but it could make or take the
    /// challenge answers. Nothing is ordered.
    #[error(
        "[acme] webroot {webroot}: {path} is owned by {owner} with mode {mode:04o}, so another user \
         could change what portico writes there; give the webroot a directory only root can write \
         (the default, {default}, is)"
    )]
    WebrootNotRoots {
        /// The playbook's webroot.
        webroot: String,
        /// The directory another user could change.
        path: PathBuf,
        /// Its owner, as [`crate::host::user_name`] says it.
        owner: String,
        /// Its mode.
        mode: u32,
        /// Where portico's own webroot is.
        default: &'static str,
    },
    /// The order ledger could not be read or saved: nothing is ordered
    /// without the account's count (src/acme/ledger.rs).
    #[error("{0}; no order without the account's count of its orders")]
    Ledger(String),
    /// The account has sent its hour's orders: this one waits.
    #[error(
        "{QUEUED}: {made} new orders in the last hour, the limit ([acme] max_orders_per_hour = \
         {limit}); the next may go at {next}"
    )]
    Queued {
        /// Orders sent in the last hour.
        made: usize,
        /// The budget.
        limit: u32,
        /// When a slot frees, RFC 3339.
        next: String,
    },
    /// The CA rate-limited the account earlier: nothing is sent until then.
    #[error(
        "{HELD}: the CA answered rateLimited ({because}); no order on this account before {until}"
    )]
    Held {
        /// When the hold ends, RFC 3339.
        until: String,
        /// What the CA said.
        because: String,
    },
    /// The CA answered `rateLimited` to this order: the whole account waits.
    #[error(
        "{HELD}: ACME {step} ({directory}) answered rateLimited: {message}; no order on this \
         account for {} s", retry_after.unwrap_or(crate::acme::ledger::DEFAULT_HOLD)
    )]
    RateLimited {
        /// `new order`, `finalize`, ...
        step: &'static str,
        /// The directory URL.
        directory: String,
        /// The server's words, escaped.
        message: String,
        /// Its `Retry-After`, seconds, when it gave one.
        retry_after: Option<i64>,
    },
    /// The async runtime the client runs on could not start.
    #[error("cannot start the ACME client's runtime: {0}")]
    Runtime(std::io::Error),
    /// A DNS-01 record could not be published, seen or removed.
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    /// A thread obtaining a certificate panicked.
    #[error("the thread obtaining this certificate panicked")]
    Panicked,
}

/// The directory URL a playbook's `directory` names.
pub fn directory_url(directory: &str) -> String {
    match directory {
        "letsencrypt" => "https://acme-v02.api.letsencrypt.org/directory".into(),
        "letsencrypt-staging" => "https://acme-staging-v02.api.letsencrypt.org/directory".into(),
        url => url.into(),
    }
}

/// A file name for a directory URL: its host and path, made safe.
fn account_dir(url: &str) -> PathBuf {
    let clean: String = url
        .trim_start_matches("https://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new(paths::ACME_ACCOUNTS).join(clean)
}

/// The longest challenge token accepted. RFC 8555 asks for at least 128
/// bits (22 characters); CAs send 43. Far above that is not a token.
const MAX_TOKEN: usize = 255;

/// RFC 8555 §8.1: a token is base64url (`A-Z a-z 0-9 - _`), nothing else.
/// It becomes a file name in the webroot, so anything else (`/`, `..`, an
/// absolute path, nothing at all) would let the CA write or delete files.
pub fn token_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a refused token is shown: never the whole of a hostile string.
fn shown(token: &str) -> String {
    let head: String = token.chars().take(40).collect();
    if head.len() < token.len() {
        format!("{head:?}... ({} bytes)", token.len())
    } else {
        format!("{head:?}")
    }
}

/// A freshly issued certificate chain (leaf first) and its key.
pub struct Issued {
    /// The certificate chain, leaf first, PEM.
    pub chain_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// Already written as the certificate's pair (as its order ended).
    pub installed: bool,
}

/// How an order is polled: the first look at once (a local CA is often
/// done already), then short waits growing to a second, or as long as the
/// CA's `Retry-After` asks; never past [`POLL_TIMEOUT`] in all.
const FIRST_WAIT: Duration = Duration::from_millis(5);
const LONGEST_WAIT: Duration = Duration::from_secs(1);
const POLL_TIMEOUT: Duration = Duration::from_secs(90);

/// The wait after `previous`: twice as long, up to [`LONGEST_WAIT`] (no
/// more requests to a public CA than a client starting at 20 ms would make).
fn next_wait(previous: Duration) -> Duration {
    (previous * 2).min(LONGEST_WAIT)
}

/// How long to wait before the next look: what the CA asked for, but never
/// less than our own schedule (a `Retry-After: 0` must not become a flood).
fn wait_before_next(asked: Option<Duration>, ours: Duration) -> Duration {
    asked.map_or(ours, |a| a.max(ours))
}

/// Everything one issuance needs.
pub struct Request<'a> {
    /// The ACME server and the account to use with it.
    pub acme: &'a Acme,
    /// The names to certify (subject alternative names).
    pub names: &'a [String],
    /// The key type of a new key.
    pub key: KeyType,
    /// DNS-01 through this provider; `None`: HTTP-01.
    pub dns: Option<&'a crate::playbook::Dns>,
    /// The key to keep (`reuse_key`): its file and PEM.
    pub reuse_key: Option<(PathBuf, String)>,
    /// The certificate this one replaces (ARI `replaces`), when there is one.
    pub replaces: Option<instant_acme::CertificateIdentifier<'static>>,
}

/// One ACME server for a run: its account is loaded (or registered) once
/// and shared by every order of the run, over one HTTP/2 connection.
pub struct Session<'a> {
    root: &'a Root,
    acme: &'a Acme,
    url: String,
    account: tokio::sync::Mutex<Option<Account>>,
    /// What the CA last asked for in `Retry-After`, per URL.
    retry_after: Arc<RetryAfter>,
}

impl<'a> Session<'a> {
    /// A session with the server `acme` names; nothing is sent yet.
    pub fn new(root: &'a Root, acme: &'a Acme) -> Self {
        Session {
            root,
            acme,
            url: directory_url(&acme.directory),
            account: tokio::sync::Mutex::new(None),
            retry_after: Arc::default(),
        }
    }

    /// This session talks to the server and account `acme` names.
    pub fn serves(&self, acme: &Acme) -> bool {
        self.acme == acme
    }

    fn server(&self, step: &'static str) -> impl FnOnce(instant_acme::Error) -> AcmeError + '_ {
        move |e| {
            let message = crate::untrusted::shown(&e.to_string());
            if is_rate_limited(&e) && account_wide(&e) {
                return AcmeError::RateLimited {
                    step,
                    directory: self.url.clone(),
                    message,
                    retry_after: self.retry_after.rate_limited().map(|d| d.as_secs() as i64),
                };
            }
            AcmeError::Server {
                step,
                directory: self.url.clone(),
                message,
            }
        }
    }

    /// The account, loaded or registered by the first order that asks.
    pub async fn account(&self) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(a) = &*cached {
            return Ok(a.clone());
        }
        let account = self.load_or_register().await?;
        *cached = Some(account.clone());
        Ok(account)
    }

    /// The CA no longer knows the stored account (deactivated, or a test
    /// CA that was reset): forget it and register again. `stale` is the
    /// account that was refused; another order may have replaced it already.
    async fn register_again(&self, stale: &Account) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(a) = &*cached {
            if a.id() != stale.id() {
                return Ok(a.clone());
            }
        }
        tracing::warn!("the ACME server does not know the stored account; registering a new one");
        self.root
            .remove(&account_dir(&self.url).join("account.json"))?;
        let account = self.load_or_register().await?;
        *cached = Some(account.clone());
        Ok(account)
    }

    async fn load_or_register(&self) -> Result<Account, AcmeError> {
        let builder = Account::builder_with_http(Box::new(self.http_client()?));
        let file = account_dir(&self.url).join("account.json");
        if let Some(json) = self.root.read_to_string(&file)? {
            let creds: AccountCredentials =
                serde_json::from_str(&json).map_err(|source| AcmeError::Account {
                    path: file.clone(),
                    source,
                })?;
            let _t = timing::step("acme account", "load (directory)");
            return builder
                .from_credentials(creds)
                .await
                .map_err(self.server("load account"));
        }
        let acme = self.acme;
        let contact = acme.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = self.eab_key()?;
        let _t = timing::step("acme account", "register");
        let (account, creds) = builder
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: acme.agree_terms,
                    only_return_existing: false,
                },
                self.url.clone(),
                eab.as_ref(),
            )
            .await
            .map_err(self.server("create account"))?;
        // The account key is a secret: 0600 in a 0700 directory, never logged.
        self.root
            .create_dir_all(Path::new(paths::ACME_ACCOUNTS), 0o700)?;
        self.root.create_dir_all(&account_dir(&self.url), 0o700)?;
        let json = serde_json::to_vec(&creds).expect("credentials serialize");
        self.root.write_atomic(&file, &json, 0o600)?;
        Ok(account)
    }

    /// The HTTP client for this server: trusting the playbook's `ca_root`
    /// when it names one, and watching `Retry-After`.
    fn http_client(&self) -> Result<super::http::Observed, AcmeError> {
        let acme = self.acme;
        let ca_root = match &acme.ca_root {
            Some(pem) => {
                Some(
                    self.root
                        .read(Path::new(pem))?
                        .ok_or_else(|| AcmeError::CaRoot {
                            path: PathBuf::from(pem),
                            reason: "the file does not exist".into(),
                        })?,
                )
            }
            None => None,
        };
        let http =
            super::http::client(ca_root.as_deref()).map_err(|reason| match &acme.ca_root {
                Some(pem) => AcmeError::CaRoot {
                    path: PathBuf::from(pem),
                    reason,
                },
                None => AcmeError::Server {
                    step: "client setup",
                    directory: self.url.clone(),
                    message: reason,
                },
            })?;
        Ok(super::http::Observed::wrap(http, self.retry_after.clone()))
    }

    /// The external account binding's key, when the playbook has one.
    fn eab_key(&self) -> Result<Option<ExternalAccountKey>, AcmeError> {
        let Some(eab) = &self.acme.eab else {
            return Ok(None);
        };
        let key_file = Path::new(&eab.hmac_key_file);
        let raw = self
            .root
            .read_to_string(key_file)?
            .ok_or_else(|| AcmeError::EabMissing(key_file.to_path_buf()))?;
        use base64::Engine;
        // The decoder's error names the offending character and where it
        // is: a secret must not be echoed, even in part.
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim().trim_end_matches('='))
            .map_err(|_| AcmeError::EabNotBase64 {
                path: key_file.to_path_buf(),
                len: raw.trim().len(),
            })?;
        Ok(Some(ExternalAccountKey::new(eab.kid.clone(), &key)))
    }
}

/// The stored account for the playbook's directory, registered if there is none.
pub async fn account(root: &Root, acme: &Acme) -> Result<Account, AcmeError> {
    Session::new(root, acme).account().await
}

/// Orders, answers HTTP-01 through the webroot, finalizes and downloads.
pub async fn issue(ctx: &Session<'_>, req: &Request<'_>) -> Result<Issued, AcmeError> {
    let of = req.names.join(",");
    let account = ctx.account().await?;
    if let Some(p) = &req.acme.profile {
        // A CA without this profile may ignore the field and issue its
        // default certificate: refuse instead of silently getting another.
        let offered: Vec<String> = account.profiles().map(|m| m.name.to_string()).collect();
        if !offered.iter().any(|o| o == p) {
            return Err(AcmeError::Server {
                step: "new order",
                directory: ctx.url.clone(),
                message: format!(
                    "the CA does not offer the profile {p:?} ([acme] profile); it offers {}",
                    if offered.is_empty() {
                        "none".to_string()
                    } else {
                        offered.join(", ")
                    }
                ),
            });
        }
    }
    let ids: Vec<Identifier> = req
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    let new_order = || {
        let new = NewOrder::new(&ids);
        match &req.acme.profile {
            Some(p) => new.profile(p),
            None => new,
        }
    };
    // RFC 9773: name the certificate being replaced, so the CA can exempt
    // the renewal from rate limits. A CA without ARI, or one that will not
    // take this certificate as replaced (already replaced, other names),
    // gets the same order without it.
    if let Some(id) = &req.replaces {
        tracing::debug!("ordering as the replacement of {id}");
        let t = timing::step("acme new order", &of);
        let ordered = account.new_order(&new_order().replaces(id.clone())).await;
        drop(t);
        match ordered {
            Ok(order) => return finish(ctx, req, order).await,
            // A limit is the account's: asking again only meets it again.
            Err(e) if is_rate_limited(&e) => return Err(ctx.server("new order")(e)),
            Err(e) => tracing::debug!("order with `replaces` refused ({e}); ordering without"),
        }
    }
    let new = new_order();
    let t = timing::step("acme new order", &of);
    let order = match account.new_order(&new).await {
        // Register again, once.
        Err(e) if e.to_string().contains("accountDoesNotExist") => ctx
            .register_again(&account)
            .await?
            .new_order(&new)
            .await
            .map_err(ctx.server("new order"))?,
        other => other.map_err(ctx.server("new order"))?,
    };
    drop(t);
    finish(ctx, req, order).await
}

/// Polls the order until `done` says its status is what the next step
/// needs, or it failed. The first look is at once; see [`FIRST_WAIT`].
async fn poll(
    ctx: &Session<'_>,
    order: &mut instant_acme::Order,
    step: &'static str,
    of: &str,
    done: fn(OrderStatus) -> bool,
) -> Result<OrderStatus, AcmeError> {
    let start = Instant::now();
    let mut wait = FIRST_WAIT;
    let url = order.url().to_string();
    loop {
        let t = timing::step("acme poll", &format!("{of} ({step})"));
        let state = order.refresh().await.map_err(ctx.server(step))?;
        let (status, error) = (state.status, state.error.clone());
        drop(t);
        if let Some(problem) = error {
            return Err(AcmeError::Server {
                step,
                directory: ctx.url.clone(),
                message: crate::untrusted::shown(&instant_acme::Error::Api(problem).to_string()),
            });
        }
        if done(status) || status == OrderStatus::Invalid {
            return Ok(status);
        }
        // The CA's word on when to look again wins over ours.
        let next = wait_before_next(ctx.retry_after.take(&url), wait);
        if start.elapsed().saturating_add(next) > POLL_TIMEOUT {
            return Err(AcmeError::Server {
                step,
                directory: ctx.url.clone(),
                message: format!(
                    "the order is still {:?} after {} s (the CA asks to look again in {} s); giving up",
                    status,
                    start.elapsed().as_secs(),
                    next.as_secs()
                ),
            });
        }
        tokio::time::sleep(next).await;
        wait = next_wait(wait);
    }
}

/// The name an authorization is for, for messages.
/// Is `e` the CA's `rateLimited` problem?
fn is_rate_limited(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(RATE_LIMITED))
}

/// Is `e` a limit of the whole account (new orders, registrations), as
/// the CA's words say? A limit of one set of names (duplicate
/// certificates, failed authorizations, a registered domain's
/// certificates) is that certificate's failure alone, with its own
/// back-off: holding the account for it would hold every other
/// certificate too.
fn account_wide(e: &instant_acme::Error) -> bool {
    let instant_acme::Error::Api(p) = e else {
        return false;
    };
    let detail = p.detail.as_deref().unwrap_or_default().to_ascii_lowercase();
    ["new orders", "account", "registrations"]
        .iter()
        .any(|w| detail.contains(w))
}

impl AcmeError {
    /// Did this order end before anything was sent to the CA for it (so
    /// the slot it took in the account's budget is given back)?
    pub fn sent_no_order(&self) -> bool {
        matches!(
            self,
            AcmeError::NotStarted(_)
                | AcmeError::NotServed { .. }
                | AcmeError::WebrootNotRoots { .. }
                | AcmeError::Held { .. }
                | AcmeError::CaRoot { .. }
                | AcmeError::Account { .. }
                | AcmeError::EabMissing(_)
                | AcmeError::EabNotBase64 { .. }
        )
    }
}

fn identifier(authz: &instant_acme::AuthorizationHandle<'_>) -> String {
    match &authz.identifier().identifier {
        Identifier::Dns(name) => crate::untrusted::shown(name),
        other => crate::untrusted::shown(&format!("{other:?}")),
    }
}

/// Answers the order's challenges (HTTP-01 through the webroot, or DNS-01
/// through the playbook's provider), finalizes, downloads.
async fn finish(
    ctx: &Session<'_>,
    req: &Request<'_>,
    mut order: instant_acme::Order,
) -> Result<Issued, AcmeError> {
    match req.dns {
        None => validate_http01(ctx, req, &mut order).await?,
        Some(dns) => validate_dns01(ctx, req, &mut order, dns).await?,
    }
    complete(ctx, req, &mut order).await
}

/// Refuses an HTTP-01 webroot (its challenge directory, or one above)
/// that someone other than root and the user portico runs as could
/// change.
pub fn check_webroot(root: &crate::host::Root, webroot: &str) -> Result<(), AcmeError> {
    let dir = Path::new(webroot).join(".well-known/acme-challenge");
    match root.others_can_change(&dir, nix::unistd::geteuid().as_raw())? {
        None => Ok(()),
        Some((path, m)) => Err(AcmeError::WebrootNotRoots {
            webroot: webroot.to_string(),
            path,
            owner: crate::host::user_name(m.uid),
            mode: m.mode,
            default: crate::paths::DEFAULT_WEBROOT,
        }),
    }
}

/// Writes a file per challenge, tells the CA, waits until the order is
/// ready; the files are removed whatever happened.
async fn validate_http01(
    ctx: &Session<'_>,
    req: &Request<'_>,
    order: &mut instant_acme::Order,
) -> Result<(), AcmeError> {
    let root = ctx.root;
    let of = req.names.join(",");
    let challenge_dir = Path::new(&req.acme.webroot).join(".well-known/acme-challenge");
    root.create_dir_all(&challenge_dir, 0o755)?;
    let mut written = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        loop {
            let t = timing::step("acme authorization", &of);
            let Some(authz) = authorizations.next().await else {
                break;
            };
            drop(t);
            let mut authz = authz.map_err(ctx.server("authorization"))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let name = identifier(&authz);
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| no_challenge(ctx, "http-01"))?;
            check_token(ctx, &challenge.token, &name)?;
            let file = challenge_dir.join(&challenge.token);
            // Created, never replaced: cleanup below removes only what
            // this run made.
            root.create_new(
                &file,
                challenge.key_authorization().as_str().as_bytes(),
                0o644,
            )?;
            written.push(file);
            let _t = timing::step("acme challenge ready", &name);
            challenge
                .set_ready()
                .await
                .map_err(ctx.server("challenge"))?;
        }
        wait_ready(ctx, order, &of).await
    }
    .await;
    for f in written {
        let _ = root.remove(&f);
    }
    result
}

/// Publishes every TXT record of the order at once, waits once until every
/// authoritative server answers them all, tells the CA, waits until the
/// order is ready; the records are removed whatever happened.
async fn validate_dns01(
    ctx: &Session<'_>,
    req: &Request<'_>,
    order: &mut instant_acme::Order,
    dns: &crate::playbook::Dns,
) -> Result<(), AcmeError> {
    let of = req.names.join(",");
    let mut wanted: Vec<(String, String)> = Vec::new();
    {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(ctx.server("authorization"))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let domain = requested_domain(ctx, req, &authz)?;
            let challenge = authz
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| no_challenge(ctx, "dns-01"))?;
            check_token(ctx, &challenge.token, &domain)?;
            let record = (domain, challenge.key_authorization().dns_value());
            // A CA repeating an authorization gets one record for it.
            if !wanted.contains(&record) {
                wanted.push(record);
            }
        }
    }
    if wanted.is_empty() {
        return wait_ready(ctx, order, &of).await;
    }
    let provider = crate::dns::Provider::new(ctx.root, dns);
    // Removes the records even when this future is dropped (the order's
    // time limit) or unwinds (a panic over what the CA sent).
    let mut published = crate::dns::Cleanup::new(&provider);
    let result = async {
        provider.publish(&wanted, published.records()).await?;
        provider.wait(published.records()).await?;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(ctx.server("authorization"))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let name = identifier(&authz);
            let mut challenge = authz
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| no_challenge(ctx, "dns-01"))?;
            let _t = timing::step("acme challenge ready", &name);
            challenge
                .set_ready()
                .await
                .map_err(ctx.server("challenge"))?;
        }
        wait_ready(ctx, order, &of).await
    }
    .await;
    published.now(&of).await;
    result
}

/// The name an authorization is for, when it is one this order asked for
/// (`*.` in front for a wildcard): a CA must not make portico publish
/// records at names of its choosing.
fn requested_domain(
    ctx: &Session<'_>,
    req: &Request<'_>,
    authz: &instant_acme::AuthorizationHandle<'_>,
) -> Result<String, AcmeError> {
    let id = authz.identifier();
    let domain = match id.identifier {
        Identifier::Dns(name) if id.wildcard => format!("*.{name}"),
        Identifier::Dns(name) => name.clone(),
        _ => String::new(),
    };
    if req.names.iter().any(|n| n.eq_ignore_ascii_case(&domain)) {
        return Ok(domain.to_ascii_lowercase());
    }
    Err(AcmeError::Server {
        step: "authorization",
        directory: ctx.url.clone(),
        message: format!(
            "the server sent an authorization for {}, which this order did not ask for; nothing was published",
            identifier(authz)
        ),
    })
}

fn no_challenge(ctx: &Session<'_>, kind: &str) -> AcmeError {
    AcmeError::Server {
        step: "authorization",
        directory: ctx.url.clone(),
        message: format!("the server offers no {kind} challenge"),
    }
}

/// RFC 8555 8.1: refuses a token that is not base64url.
fn check_token(ctx: &Session<'_>, token: &str, name: &str) -> Result<(), AcmeError> {
    if token_ok(token) {
        return Ok(());
    }
    Err(AcmeError::Server {
        step: "authorization",
        directory: ctx.url.clone(),
        message: format!(
            "the server sent the challenge token {} for {}, which is not base64url \
             (RFC 8555 8.1); nothing was written and the authorization is abandoned",
            shown(token),
            name
        ),
    })
}

/// Polls until the CA has validated every authorization.
async fn wait_ready(
    ctx: &Session<'_>,
    order: &mut instant_acme::Order,
    of: &str,
) -> Result<(), AcmeError> {
    let status = poll(ctx, order, "validation", of, |s| s == OrderStatus::Ready).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Server {
            step: "validation",
            directory: ctx.url.clone(),
            message: format!("order is {status:?}, not ready"),
        });
    }
    Ok(())
}

/// Makes the key and CSR, finalizes, waits for and downloads the chain.
async fn complete(
    ctx: &Session<'_>,
    req: &Request<'_>,
    order: &mut instant_acme::Order,
) -> Result<Issued, AcmeError> {
    let of = req.names.join(",");
    let t = timing::step("acme key and csr", &of);
    let key = match &req.reuse_key {
        Some((path, pem)) => {
            rcgen::KeyPair::from_pem(pem).map_err(|source| AcmeError::ReuseKey {
                path: path.clone(),
                source,
            })?
        }
        None => crate::tls::generate_key(req.key)?,
    };
    let csr_err = |source| AcmeError::Csr {
        names: req.names.join(", "),
        source,
    };
    let mut params = rcgen::CertificateParams::new(req.names.to_vec()).map_err(csr_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(csr_err)?;
    drop(t);
    let t = timing::step("acme finalize", &of);
    order
        .finalize_csr(csr.der())
        .await
        .map_err(ctx.server("finalize"))?;
    drop(t);
    if order.state().status != OrderStatus::Valid {
        let status = poll(ctx, order, "certificate", &of, |s| s == OrderStatus::Valid).await?;
        if status != OrderStatus::Valid {
            return Err(AcmeError::Server {
                step: "certificate",
                directory: ctx.url.clone(),
                message: format!("order is {status:?}, not valid"),
            });
        }
    }
    let t = timing::step("acme download", &of);
    let chain_pem = order
        .certificate()
        .await
        .map_err(ctx.server("certificate"))?
        .ok_or_else(|| AcmeError::Server {
            step: "certificate",
            directory: ctx.url.clone(),
            message: "the order is valid but has no certificate".into(),
        })?;
    drop(t);
    Ok(Issued {
        installed: false,
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_grow_and_a_retry_after_never_makes_them_faster() {
        assert_eq!(next_wait(FIRST_WAIT), Duration::from_millis(10));
        assert_eq!(next_wait(Duration::from_millis(900)), LONGEST_WAIT);
        let ours = Duration::from_millis(40);
        assert_eq!(wait_before_next(None, ours), ours);
        assert_eq!(wait_before_next(Some(Duration::ZERO), ours), ours);
        let asked = Duration::from_secs(3);
        assert_eq!(wait_before_next(Some(asked), ours), asked);
    }

    #[test]
    fn tokens() {
        assert!(token_ok("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"));
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "a/b",
            "a.b",
            "a b",
            &"A".repeat(256),
        ] {
            assert!(!token_ok(bad), "{bad:?}");
        }
    }
}
