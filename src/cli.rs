//! Command line: `portico apply` and `portico facts`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use thiserror::Error;

use crate::engine::{self, Ctx, Mode};
use crate::facts;
use crate::host::cmd::SystemRunner;
use crate::host::dbus::DbusSystemd;
use crate::host::systemd::{DirectNginx, ServiceOp, Systemd, SystemdError};
use crate::host::Root;
use crate::host::{Command, Runner};
use crate::playbook::{self, PlaybookError};
use crate::tls::ca::{Ca, CaError};

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "Turns a fresh VM into a hardened nginx HTTPS front end, idempotently.",
    long_about = "portico installs nginx, opens the firewall, writes certificates and \
nginx configuration, and reloads nginx only when something changed. Every step \
first checks what it would change; run with --check to see that plan and touch nothing.",
    after_help = "Examples:\n  sudo portico apply                   # the embedded default: self-signed HTTPS proxy to :3000\n  portico apply --check --diff site.toml  # show what would change, with diffs\n  portico facts --json                 # what portico detects on this host\n\nExit codes: 0 success, 1 a task failed, 2 bad input (playbook, flags)."
)]
pub struct Cli {
    /// Log more (-v: info, -vv: debug). Logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Bring the host to what a playbook describes.
    #[command(
        after_help = "Examples:\n  sudo portico apply                        # embedded default playbook\n  sudo portico apply playbooks/self-signed-proxy.toml\n  portico apply --check --diff site.toml    # plan only, unified diffs, keys redacted\n  portico apply --root /tmp/image site.toml # write files under /tmp/image; host steps skipped\n\nWithout a PLAYBOOK the embedded default is used: a self-signed HTTPS reverse\nproxy for this host's name and localhost to http://127.0.0.1:3000, HTTP\nredirected to HTTPS, the active firewall opened for 80 and 443."
    )]
    Apply(ApplyArgs),
    /// Show what portico detects on this host: distro, package manager,
    /// systemd, nginx build and layout, active firewall.
    #[command(after_help = "Examples:\n  portico facts\n  portico facts --json | jq .nginx")]
    Facts(FactsArgs),
    /// Start, stop, reload, restart, enable, disable a service or show its
    /// state, through systemd's D-Bus API (nginx directly where systemd is
    /// not running). Reloading or restarting nginx runs `nginx -t` first.
    #[command(
        after_help = "Examples:\n  sudo portico service reload            # nginx -t, then reload nginx.service\n  portico service status --json\n  sudo portico service restart php8.2-fpm.service"
    )]
    Service(ServiceArgs),
    /// Renew the playbook's ACME certificates that are due; reload nginx once
    /// if any changed. A failure keeps the old certificate and backs off.
    #[command(
        after_help = "Examples:\n  sudo portico renew site.toml            # what is due; nothing due: no order, no reload\n  sudo portico renew --force site.toml    # every ACME certificate, now\n  sudo portico renew --dry-run site.toml  # order and validate, write and reload nothing\n\nState (failures, back-off: 1 minute doubling up to 6 hours) is kept in\n/var/lib/portico/state.json. Exit code 1 when any certificate failed."
    )]
    Renew(RenewArgs),
    /// Run as a service: renew at start and then daily (or on the playbook's
    /// schedule); SIGHUP re-reads the playbook, SIGTERM stops cleanly.
    #[command(
        after_help = "Examples:\n  portico daemon /etc/portico/playbook.toml   # what portico.service runs\n  systemctl reload portico                    # re-read the playbook (SIGHUP)\n\nWith schedule = \"daily\" the time of day is drawn once per host from its\nmachine ID. Logs go to stderr without timestamps: journald adds them."
    )]
    Daemon(DaemonArgs),
    /// A private certificate authority for client certificates (mTLS).
    #[command(
        after_help = "Examples:\n  sudo portico ca init clients\n  sudo portico ca issue clients --cn alice --out ./alice   # alice.crt, .key, .p12, .p12.pass\n  sudo portico ca list clients\n  sudo portico ca revoke clients 4f1c...e2              # re-signs crl.pem and reloads nginx\n\nThe CA lives in /var/lib/portico/ca/NAME (0700, key 0600). Point nginx at ca.crt\n(ssl_client_certificate) and crl.pem (ssl_crl), or name the CA in a playbook\nsite's client_auth."
    )]
    Ca(CaArgs),
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Playbook file (TOML). Default: the embedded default playbook.
    pub playbook: Option<PathBuf>,
    /// Renew every ACME certificate now, due or not, backing off or not.
    #[arg(long)]
    pub force: bool,
    /// Talk to the ACME server (orders, validation) but write and reload nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Playbook file (TOML). Default: the embedded default playbook.
    pub playbook: Option<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCmd,
    /// Keep the CA under DIR/var/lib/portico/ca instead of /var/lib/portico/ca.
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Create the CA (nothing happens when it exists).
    Init {
        #[arg(value_parser = ca_name)]
        name: String,
        /// Lifetime of the CA certificate (1-36500).
        #[arg(long, default_value_t = 3650, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=36500))]
        days: i64,
    },
    /// Issue a client certificate (clientAuth) with its key and a PKCS#12 bundle.
    Issue {
        #[arg(value_parser = ca_name)]
        name: String,
        /// The client's common name; also the output files' name.
        #[arg(long)]
        cn: String,
        /// Lifetime (1-3650); never beyond the CA's own.
        #[arg(long, default_value_t = 365, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        /// Where CN.crt, CN.key (0600), CN.p12 and CN.p12.pass (0600) go.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate by serial (hex, colons allowed) and re-sign the CRL.
    Revoke {
        #[arg(value_parser = ca_name)]
        name: String,
        serial: String,
    },
    /// Show issued certificates: serial, CN, expiry, revoked.
    List {
        #[arg(value_parser = ca_name)]
        name: String,
        #[arg(long)]
        json: bool,
    },
}
/// A CA name, which names its directory: the playbook's rule for names.
fn ca_name(s: &str) -> Result<String, String> {
    if crate::playbook::names::object_name_ok(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a CA name: a letter or digit, then letters, digits, '.', '_', '-' (at most 64)"
        ))
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceAction {
    Start,
    Stop,
    Reload,
    Restart,
    Enable,
    Disable,
    Status,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    pub action: ServiceAction,
    /// The unit (default nginx.service; ".service" is added when missing).
    #[arg(default_value = "nginx.service")]
    pub unit: String,
    /// Print the status as JSON ({unit, active, file}).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Playbook file (TOML). Default: the embedded default playbook.
    pub playbook: Option<PathBuf>,
    /// Only report what would change; touch nothing.
    #[arg(long)]
    pub check: bool,
    /// Print unified diffs of file changes (private keys are redacted).
    #[arg(long)]
    pub diff: bool,
    /// Print the report as JSON: {changed, unchanged, failed, skipped, tasks:[{name,status,changes}]}.
    #[arg(long)]
    pub json: bool,
    /// Operate on the tree under DIR instead of `/`. Files are written there;
    /// packages, firewall and services are reported as skipped.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read the facts of the tree under DIR (files only; no commands are run).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Errors that stop the command before any task runs (exit code 2).
#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error("--root {0}: not a directory")]
    BadRoot(PathBuf),
    #[error("applying to this host needs root; run with sudo, or use --check to only plan")]
    NeedsRoot,
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("`portico service {0}` needs root; run it with sudo")]
    ServiceNeedsRoot(&'static str),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Renew(#[from] crate::renew::RenewError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
}

impl CliError {
    /// 2 for bad input (nothing was changed), 1 when the host said no.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Ca(CaError::Fs(_) | CaError::Generate(_) | CaError::Pkcs12(_))
            | CliError::Systemd(_) => 1,
            _ => 2,
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Cmd::Apply(a) => apply(a),
        Cmd::Facts(f) => facts_cmd(f),
        Cmd::Service(s) => service_cmd(s),
        Cmd::Ca(c) => ca_cmd(c),
        Cmd::Renew(r) => renew_cmd(r),
        Cmd::Daemon(d) => daemon_cmd(d),
    }
}

fn open_root(dir: PathBuf) -> Result<Root, CliError> {
    if !dir.is_dir() {
        return Err(CliError::BadRoot(dir));
    }
    Ok(Root::new(dir))
}

/// Loads the playbook (or the embedded default) and resolves `{hostname}`.
fn load_playbook(
    file: Option<&PathBuf>,
    facts: &facts::Facts,
) -> Result<playbook::Playbook, CliError> {
    let mut pb = match file {
        Some(p) => playbook::load_file(p)?,
        None => playbook::parse(playbook::DEFAULT_NAME, playbook::DEFAULT_PLAYBOOK)?,
    };
    pb.resolve_hostname(&facts.hostname, &facts.hostname_source)?;
    Ok(pb)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn print_report(report: &crate::report::Report, json: bool, diff: bool, check: bool) -> i32 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
    } else {
        print!("{}", report.render_text(diff, check));
    }
    if report.failed > 0 {
        1
    } else {
        0
    }
}

/// Opens the host under `root_dir`, gathers its facts and connects to its
/// service manager, then runs `f` with all of it.
fn with_host<T>(
    root_dir: PathBuf,
    writes: bool,
    f: impl FnOnce(&Ctx, &facts::Facts) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let root = open_root(root_dir)?;
    if writes && root.is_host() && !nix::unistd::geteuid().is_root() {
        return Err(CliError::NeedsRoot);
    }
    let runner = SystemRunner;
    let facts = facts::gather(&root, &runner);
    let systemd = service_manager(&facts, root.is_host(), &runner)?;
    let ctx = Ctx {
        root: &root,
        runner: &runner,
        systemd: systemd.as_ref(),
        facts: &facts,
        live_host: root.is_host(),
    };
    f(&ctx, &facts)
}

fn apply(a: ApplyArgs) -> Result<i32, CliError> {
    // The playbook is checked before anything else: bad input touches nothing.
    if let Some(p) = &a.playbook {
        playbook::load_file(p)?;
    }
    with_host(a.root.clone(), !a.check, |ctx, facts| {
        let pb = load_playbook(a.playbook.as_ref(), facts)?;
        if ctx.live_host {
            if let Some(n) = crate::plan::firewall_notice(&pb, facts) {
                eprintln!("{n}");
            }
        }
        let mut tasks = crate::plan::plan(&pb, facts, unix_now());
        if let Some(file) = &a.playbook {
            let text = std::fs::read_to_string(file).map_err(|source| PlaybookError::Read {
                file: file.display().to_string(),
                source,
            })?;
            // The kernel's name for this binary, symlinks resolved: the
            // unit task checks that only root can replace it.
            let exe =
                std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/portico"));
            tasks.extend(crate::plan::daemon_tasks(&pb, &text, &exe, facts));
        }
        let mode = if a.check { Mode::Check } else { Mode::Apply };
        let mut report = engine::run(&tasks, ctx, mode);
        // In the report (text and --json), so scripts see them too.
        report.warnings.extend(crate::plan::warnings(&pb, facts));
        Ok(print_report(&report, a.json, a.diff, a.check))
    })
}

fn renew_cmd(a: RenewArgs) -> Result<i32, CliError> {
    let pb = match &a.playbook {
        Some(p) => playbook::load_file(p)?,
        None => playbook::parse(playbook::DEFAULT_NAME, playbook::DEFAULT_PLAYBOOK)?,
    };
    let opts = crate::renew::Options {
        force: a.force,
        dry_run: a.dry_run,
    };
    let report = renew_with(pb, a.root, opts)?;
    Ok(print_report(&report, a.json, false, false))
}

/// One renewal run against the host under `root_dir`.
fn renew_with(
    mut pb: playbook::Playbook,
    root_dir: PathBuf,
    opts: crate::renew::Options,
) -> Result<crate::report::Report, CliError> {
    with_host(root_dir, true, |ctx, facts| {
        pb.resolve_hostname(&facts.hostname, &facts.hostname_source)?;
        Ok(crate::renew::renew(&pb, ctx, unix_now(), opts)?)
    })
}

fn daemon_cmd(a: DaemonArgs) -> Result<i32, CliError> {
    let pb = match &a.playbook {
        Some(p) => playbook::load_file(p)?,
        None => playbook::parse(playbook::DEFAULT_NAME, playbook::DEFAULT_PLAYBOOK)?,
    };
    let root = open_root(a.root.clone())?;
    let seed = root
        .read_to_string(std::path::Path::new("/etc/machine-id"))
        .ok()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| facts::gather(&root, &SystemRunner).hostname);
    let root_dir = a.root;
    crate::daemon::run(a.playbook, pb, seed.trim(), move |pb| {
        match renew_with(
            pb.clone(),
            root_dir.clone(),
            crate::renew::Options::default(),
        ) {
            Ok(r) => {
                for t in r
                    .tasks
                    .iter()
                    .filter(|t| t.status == crate::report::Status::Failed)
                {
                    tracing::warn!("{}: {}", t.name, t.reason.as_deref().unwrap_or("failed"));
                }
                tracing::info!(
                    changed = r.changed,
                    unchanged = r.unchanged,
                    failed = r.failed,
                    skipped = r.skipped,
                    "renewal done"
                )
            }
            Err(e) => tracing::error!("renewal: {e}"),
        }
    })?;
    Ok(0)
}

/// systemd over D-Bus where it runs; nginx driven directly where it does not.
fn service_manager<'a>(
    facts: &facts::Facts,
    live_host: bool,
    runner: &'a SystemRunner,
) -> Result<Box<dyn Systemd + 'a>, CliError> {
    if facts.systemd && live_host {
        Ok(Box::new(DbusSystemd::connect()?))
    } else {
        Ok(Box::new(DirectNginx { runner }))
    }
}

fn facts_cmd(f: FactsArgs) -> Result<i32, CliError> {
    let root = open_root(f.root)?;
    let facts = facts::gather(&root, &SystemRunner);
    if f.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&facts).expect("facts serialize")
        );
        return Ok(0);
    }
    let d = &facts.distro;
    println!(
        "distro:          {} {} ({:?} family){}",
        d.id,
        d.version,
        d.family,
        if d.supported {
            ""
        } else {
            " [not a supported release]"
        }
    );
    println!("package manager: {:?}", facts.package_manager);
    println!(
        "systemd:         {}",
        if facts.systemd {
            "running"
        } else {
            "not running"
        }
    );
    let n = &facts.nginx;
    match (&n.version, n.installed) {
        (Some(v), _) => println!(
            "nginx:           {v} (OpenSSL {}, http2 {}, http3 {}, layout {:?})",
            n.openssl.as_deref().unwrap_or("?"),
            n.http2,
            n.http3,
            n.layout
        ),
        (None, true) => println!(
            "nginx:           installed (version unknown), layout {:?}",
            n.layout
        ),
        (None, false) => println!(
            "nginx:           not installed (layout will be {:?})",
            n.layout
        ),
    }
    let persists = match facts.firewall_persists {
        Some(true) => "; its rules are restored at boot",
        Some(false) => "; nothing restores its rules at boot",
        None => "",
    };
    println!(
        "firewall:        {:?}{}{persists}",
        facts.firewall,
        if facts.firewall_families.is_empty() {
            String::new()
        } else {
            format!(" ({})", facts.firewall_families.join(", "))
        }
    );
    println!(
        "hostname:        {:?} (from {})",
        facts.hostname, facts.hostname_source
    );
    Ok(0)
}

fn service_cmd(a: ServiceArgs) -> Result<i32, CliError> {
    let unit = if a.unit.contains('.') {
        a.unit.clone()
    } else {
        format!("{}.service", a.unit)
    };
    let root = Root::new("/");
    let runner = SystemRunner;
    let facts = facts::gather(&root, &runner);
    let systemd = service_manager(&facts, true, &runner)?;
    let op = match a.action {
        ServiceAction::Status => {
            let state = systemd.state(&unit)?;
            if a.json {
                let v =
                    serde_json::json!({"unit": unit, "active": state.active, "file": state.file});
                println!("{v}");
            } else {
                println!(
                    "{unit}: {} ({})",
                    state.active,
                    if state.file.is_empty() {
                        "unknown"
                    } else {
                        &state.file
                    }
                );
            }
            return Ok(0);
        }
        ServiceAction::Start => ServiceOp::Start,
        ServiceAction::Stop => ServiceOp::Stop,
        ServiceAction::Reload => ServiceOp::Reload,
        ServiceAction::Restart => ServiceOp::Restart,
        ServiceAction::Enable => ServiceOp::Enable,
        ServiceAction::Disable => ServiceOp::Disable,
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(CliError::ServiceNeedsRoot(op.name()));
    }
    if unit == "nginx.service" && matches!(op, ServiceOp::Reload | ServiceOp::Restart) {
        // A config nginx rejects is never loaded: the running nginx keeps serving.
        let test =
            runner
                .run(&Command::query(["nginx", "-t"]))
                .map_err(|e| SystemdError::Command {
                    unit: unit.clone(),
                    op: op.name(),
                    source: e,
                })?;
        if !test.success() {
            eprintln!(
                "nginx -t failed; not running {}:\n{}",
                op.name(),
                test.stderr.trim_end()
            );
            return Ok(1);
        }
        if op == ServiceOp::Reload {
            let ctx = Ctx {
                root: &root,
                runner: &runner,
                systemd: systemd.as_ref(),
                facts: &facts,
                live_host: true,
            };
            return match crate::tasks::reload::reload_nginx(&ctx) {
                Ok(true) => {
                    println!("{unit}: reloaded (new workers running)");
                    Ok(0)
                }
                Ok(false) => {
                    eprintln!(
                        "{unit}: not running; nothing to reload (use `portico service start`)"
                    );
                    Ok(1)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(1)
                }
            };
        }
    }
    match systemd.run(op, &unit) {
        Ok(()) => {
            println!("{unit}: {} done", op.name());
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}

fn ca_cmd(a: CaArgs) -> Result<i32, CliError> {
    let root = open_root(a.root)?;
    match a.command {
        CaCmd::Init { name, days } => {
            let ca = Ca::new(&root, &name);
            let dir = root.host_path(&ca.dir()).map_err(CaError::from)?;
            if ca.init(days)? {
                println!("created CA {name} in {}", dir.display());
            } else {
                println!("CA {name} exists in {}; left as it is", dir.display());
            }
        }
        CaCmd::Issue {
            name,
            cn,
            days,
            out,
            json,
        } => {
            // The directory the operator named, resolved once (their own
            // symlinks count); below it nothing is written through a symlink.
            let out = std::path::absolute(&out).map_err(|_| CliError::BadRoot(out.clone()))?;
            let out = match (out.parent(), out.file_name()) {
                (Some(parent), Some(name)) if !out.exists() => std::fs::canonicalize(parent)
                    .map(|p| p.join(name))
                    .unwrap_or(out),
                _ => std::fs::canonicalize(&out).unwrap_or(out),
            };
            let files = Ca::new(&root, &name).issue(&cn, days, &Root::new("/"), &out)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&files).expect("serializes")
                );
            } else {
                println!("issued {cn} (serial {})", files.serial);
                for p in [
                    &files.cert,
                    &files.key,
                    &files.p12,
                    &files.p12_password_file,
                ] {
                    println!("  {}", p.display());
                }
            }
        }
        CaCmd::Revoke { name, serial } => {
            let e = Ca::new(&root, &name).revoke(&serial)?;
            println!("revoked {} ({}); CRL re-signed", e.serial, e.cn);
            if root.is_host() {
                // nginx reads ssl_crl at (re)load: until then the revoked
                // certificate would still be accepted.
                return with_host(PathBuf::from("/"), true, |ctx, _| {
                    Ok(match crate::tasks::reload::reload_nginx(ctx) {
                        Ok(true) => {
                            println!("nginx reloaded: the revocation is in force");
                            0
                        }
                        Ok(false) => {
                            println!("nginx is not running; it reads the new CRL when it starts");
                            0
                        }
                        Err(e) => {
                            eprintln!(
                                "error: the CRL is re-signed but nginx was not reloaded, so the \
                                 certificate is still accepted: {e}"
                            );
                            1
                        }
                    })
                });
            }
        }
        CaCmd::List { name, json } => {
            let entries = Ca::new(&root, &name).list()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&entries).expect("serializes")
                );
            } else {
                println!("{:<34} {:<24} {:<20} STATE", "SERIAL", "CN", "EXPIRES");
                for e in entries {
                    let expires = time::OffsetDateTime::from_unix_timestamp(e.not_after)
                        .map(|t| format!("{}", t.date()))
                        .unwrap_or_default();
                    let state = if e.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "valid"
                    };
                    println!("{:<34} {:<24} {:<20} {state}", e.serial, e.cn, expires);
                }
            }
        }
    }
    Ok(0)
}
