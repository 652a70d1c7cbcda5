//! The command line: the arguments (this file), one file per command, and
//! a [`Session`] that opens the host for the commands that touch it.

/// Like `print!`, but a reader that went away (`portico apply | head`) does
/// not stop the command: the rest of the output is dropped and the work goes
/// on, so a host is never left half converged because a pipe closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(::std::format_args!($($arg)*))
    };
}

/// `println!` through [`out!`].
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {
        out!("{}\n", ::std::format_args!($($arg)*))
    };
}

mod apply;
mod ca;
mod daemon;
mod facts;
mod fmt;
mod remove;
mod renew;
mod service;
mod status;
mod stdout;
mod validate;

use crate::paths;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use thiserror::Error;

use crate::facts::Facts;
use crate::host::clock::SystemClock;
use crate::host::cmd::SystemRunner;
use crate::host::dbus::DbusSystemd;
use crate::host::probe::LoopbackProbe;
use crate::host::procs::SystemProcesses;
use crate::host::systemd::{DirectNginx, Systemd, SystemdError};
use crate::host::Root;
use crate::playbook::{self, PlaybookError};
use crate::report::Report;
use crate::task::Ctx;
use crate::tls::ca::CaError;

/// The end of `portico --help`: examples, exit codes, environment. The
/// README's exit-code table says the same (a test compares them).
const AFTER_HELP: &str = "Examples:
  sudo portico apply                      # the installed playbook, else the embedded default
  portico apply --check --diff site.toml  # show what would change, with diffs
  portico validate site.toml              # check a playbook, as a user, in CI
  portico facts --json                    # what portico detects on this host

Exit codes:
  0  success: nothing failed (with --check, nothing would)
  1  a task failed or the host said no (I/O, a service, a lock); validate: nginx rejects it
  2  bad input (a playbook, a flag, a file portico did not write): nothing was changed
  3  --check --exit-code: something would change

Environment:
  PORTICO_LOG  the log filter, e.g. PORTICO_LOG=debug (logs go to stderr)";

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "Turns a fresh VM into a hardened nginx HTTPS front end, idempotently.",
    long_about = "portico installs nginx, opens the firewall, writes certificates and \
nginx configuration, and reloads nginx only when something changed. Every step \
first checks what it would change; run with --check to see that plan and touch nothing.",
    after_help = AFTER_HELP
)]
/// The command line.
pub struct Cli {
    /// Log more (-v: info, -vv: debug). Logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Bring the host to what a playbook describes.
    #[command(
        after_help = "Examples:\n  sudo portico apply                        # the installed playbook again (else the embedded default)\n  sudo portico apply playbooks/self-signed-proxy.toml\n  portico apply --check --diff site.toml    # plan only, unified diffs, keys redacted\n  portico apply --check --exit-code         # CI drift check: exit 3 when changes are pending\n  portico apply --root /tmp/image site.toml # write files under /tmp/image; host steps skipped\n\nWithout a PLAYBOOK the one apply installed (/etc/portico/playbook.toml) is\nused; on a host that has none, the embedded default: a self-signed HTTPS\nreverse proxy for this host's name and localhost to http://127.0.0.1:3000,\nHTTP redirected to HTTPS, the active firewall opened for 80 and 443. A\nplaybook that keeps none of the installed one's sites needs --replace."
    )]
    Apply(apply::ApplyArgs),
    /// Check a playbook as apply --check would, without touching this
    /// host: every error of the playbook, apply's warnings, its
    /// configuration rendered into a scratch copy of the host and (as root)
    /// tested by the installed nginx.
    #[command(
        after_help = "Examples:\n  portico validate site.toml          # in CI: exit 0 valid, 1 nginx rejects it, 2 the playbook is wrong\n  sudo portico validate --json site.toml\n\nACME certificates are stood in for by throwaway self-signed ones; nothing is\nasked of any CA. nginx -t runs on the rendered tree in a private mount\nnamespace, which needs root: as another user, and without nginx, the output\nsays what was not checked."
    )]
    Validate(validate::ValidateArgs),
    /// Show certificates (issuer, validity, when they renew, failures,
    /// whether nginx serves the file's), sites, nginx and the renewal daemon,
    /// or with --prometheus the metrics. Exit code 1 when a certificate
    /// expired, is missing, keeps failing or is not the one nginx serves, or
    /// nginx is not running (with --prometheus: 0, the problems are in the
    /// metrics).
    #[command(
        after_help = "Examples:\n  portico status                 # the installed playbook, /etc/portico/playbook.toml\n  portico status --json | jq '.certificates[] | {name, days: .current.days_left}'\n  portico status || alert        # a monitoring check\n  portico status --prometheus    # the metrics node_exporter reads from [metrics] textfile"
    )]
    Status(status::StatusArgs),
    /// Show what portico detects on this host: distro, package manager,
    /// systemd, nginx build and layout, active firewall.
    #[command(after_help = "Examples:\n  portico facts\n  portico facts --json | jq .nginx")]
    Facts(facts::FactsArgs),
    /// Renew the playbook's ACME certificates that are due; reload nginx once
    /// if any changed. A failure keeps the old certificate and backs off.
    #[command(
        after_help = "Examples:\n  sudo portico renew site.toml            # what is due; nothing due: no order, no reload\n  sudo portico renew --force site.toml    # every ACME certificate, now\n  sudo portico renew --dry-run site.toml  # order and validate, write and reload nothing\n  portico renew --check                   # what is due, and why; no CA is asked\n\nState (failures, back-off: 1 minute doubling up to 6 hours) is kept in\n/var/lib/portico/state.json. A run after one that found nothing to do takes\na short way while nothing it decided from has changed (the playbook, the\ncertificates' files and modes, the state, the clock past the next renewal\nmoment): /var/lib/portico/nothing-due.json; -v says which way and why.\n\nExit code 1 when any certificate failed, including one whose reload nginx\nrefused (it is rolled back).\n\nSIGTERM stops a run between orders: nothing new starts, what was obtained\nis written. Deploy hooks run by the daemon run in its sandbox, where the\nfile system is read-only but for /etc/ssl/portico, /var/lib/portico,\n/var/log/nginx, /var/lib/nginx, /etc/nginx/portico and the webroot, /home\nis hidden, and writable executable memory (Node.js, Java), setuid programs\nand namespaces are refused: a hook that works at apply can fail there. The\nsandbox guards against mistakes; it is no boundary against a hook that\nmeans harm (it runs as root). Pass secrets in a file, never in arguments."
    )]
    Renew(renew::RenewArgs),
    /// Undo everything portico made on this host (its manifest): sites,
    /// links, certificates (archived), firewall rules it added, the renewal
    /// daemon. nginx stays installed.
    #[command(
        after_help = "Examples:\n  sudo portico remove --check     # what would go\n  sudo portico remove             # keys and certificates are archived under /var/lib/portico/archive\n  sudo portico remove --purge     # also delete keys, CAs, the ACME account and state\n\nWhat portico made is listed in /var/lib/portico/managed.json. Files someone\nedited since portico wrote them are archived, never deleted (except with --purge)."
    )]
    Remove(remove::RemoveArgs),
    /// Start, stop, reload, restart, enable, disable a service or show its
    /// state, through systemd's D-Bus API (nginx directly where systemd is
    /// not running). Reloading or restarting nginx runs `nginx -t` first.
    #[command(
        after_help = "Examples:\n  sudo portico service reload            # nginx -t, then reload nginx.service\n  portico service status --json\n  sudo portico service restart php8.2-fpm.service"
    )]
    Service(service::ServiceArgs),
    /// A private certificate authority for client certificates (mTLS).
    #[command(
        after_help = "Examples:\n  sudo portico ca init clients\n  sudo portico ca issue clients --cn alice --out ./alice   # alice.crt, .key, .p12, .p12.pass\n  sudo portico ca list clients\n  sudo portico ca revoke clients 4f1c...e2              # re-signs crl.pem and reloads nginx\n\nThe CA lives in /var/lib/portico/ca/NAME (0700, key 0600). Point nginx at ca.crt\n(ssl_client_certificate) and crl.pem (ssl_crl), or name the CA in a playbook\nsite's client_auth."
    )]
    Ca(ca::CaArgs),
    /// Lay out playbooks in one style (spacing, blank lines), keeping
    /// their comments; with --check, list those that are not laid out.
    #[command(
        after_help = "Examples:\n  portico fmt site.toml            # rewritten in place\n  portico fmt --check playbooks/*.toml   # in CI: exit 1 when one is not laid out\n  portico fmt - < site.toml        # from standard input to standard output\n\nOnly a valid playbook is laid out (its errors are printed otherwise, exit 2)."
    )]
    Fmt(fmt::FmtArgs),
    /// Run as a service: renew at start and then daily (or on the playbook's
    /// schedule); SIGHUP re-reads the playbook, SIGTERM stops cleanly.
    #[command(
        after_help = "Examples:\n  portico daemon /etc/portico/playbook.toml   # what portico.service runs\n  systemctl reload portico                    # re-read the playbook (SIGHUP)\n\nWith schedule = \"daily\" the time of day is drawn once per host from its\nmachine ID. Logs go to stderr without timestamps: journald adds them."
    )]
    Daemon(daemon::DaemonArgs),
}

/// Errors that stop a command before any task runs.
#[derive(Debug, Error)]
pub enum CliError {
    /// The playbook (or `{hostname}`) is wrong.
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    /// `--root` is not a directory.
    #[error("--root {0}: not a directory")]
    BadRoot(PathBuf),
    /// Changing this host needs root.
    #[error("applying to this host needs root; run with sudo, or use --check to only plan")]
    NeedsRoot,
    /// The service manager said no.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// A flag the command does not have, said with the one meant.
    #[error("{0}")]
    NoSuchFlag(&'static str),
    /// The playbook would replace the installed one and drop all its sites.
    #[error(
        "{0}. Run again with --replace to replace it, or name the installed playbook (or none: a \
         bare `portico apply` applies it)"
    )]
    WouldReplace(String),
    /// `portico service OP` needs root.
    #[error("`portico service {0}` needs root; run it with sudo")]
    ServiceNeedsRoot(&'static str),
    /// A private CA.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// Renewal could not start.
    #[error(transparent)]
    Renew(#[from] crate::renew::RenewError),
    /// The daemon could not start or run.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The manifest cannot be read.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// Another run holds the host's lock.
    #[error(transparent)]
    Lock(#[from] crate::host::lock::LockError),
    /// Paths the playbook wants hold files portico did not write.
    #[error(
        "{}\nportico did not write these and will not overwrite them. Move them away, or run again \
         with --adopt to let portico take them over (a copy of each is kept in {}).",
        .0.iter().map(crate::manifest::Conflict::describe).collect::<Vec<_>>().join("\n"),
        paths::ARCHIVE_DIR
    )]
    NotPortico(Vec<crate::manifest::Conflict>),
    /// `ca issue` for a common name that has a valid certificate.
    #[error(
        "ca {ca}: {cn} already has a valid certificate (serial {}); issuing another leaves that \
         one valid until it is revoked. Run with --reissue to issue anyway, or revoke it first \
         (`portico ca revoke {ca} SERIAL`)",
        .serials.join(", ")
    )]
    StillValid {
        /// The CA.
        ca: String,
        /// The common name.
        cn: String,
        /// Its valid certificates.
        serials: Vec<String>,
    },
    /// A playbook `portico fmt` could not lay out.
    #[error("{file}: {why}")]
    Layout {
        /// The file.
        file: String,
        /// Why.
        why: String,
    },
    /// An output directory the operator named.
    #[error("{}: {source}", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
}

impl CliError {
    /// What to print, a line per problem: every problem of a playbook
    /// stands on its own line (each `error: FILE:LINE:COL: ...`).
    pub fn lines(&self) -> Vec<String> {
        match self {
            CliError::Playbook(PlaybookError::Invalid(p)) => {
                p.to_string().lines().map(String::from).collect()
            }
            e => vec![e.to_string()],
        }
    }

    /// 2 for bad input or a refusal (a playbook, a flag, a name, a file
    /// portico did not write, a broken manifest: nothing was changed),
    /// 1 when the host or its files said no (I/O, services, a lock).
    pub fn exit_code(&self) -> i32 {
        let missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        match self {
            CliError::Playbook(PlaybookError::Read { source, .. }) if !missing(source) => 1,
            CliError::OutputDir { source, .. } if !missing(source) => 1,
            CliError::Ca(CaError::Fs(_) | CaError::Generate(_) | CaError::Pkcs12(_))
            | CliError::Systemd(_)
            | CliError::Lock(_)
            | CliError::Renew(_)
            | CliError::Daemon(_) => 1,
            _ => 2,
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Cmd::Apply(a) => apply::run(a),
        Cmd::Facts(f) => facts::run(f),
        Cmd::Service(s) => service::run(s),
        Cmd::Ca(c) => ca::run(c),
        Cmd::Renew(r) => renew::run(r),
        Cmd::Daemon(d) => daemon::run(d),
        Cmd::Remove(r) => remove::run(r),
        Cmd::Status(s) => status::run(s),
        Cmd::Validate(v) => validate::run(v),
        Cmd::Fmt(f) => fmt::run(f),
    }
}

fn open_root(dir: PathBuf) -> Result<Root, CliError> {
    if !dir.is_dir() {
        return Err(CliError::BadRoot(dir));
    }
    Ok(Root::new(dir))
}

/// What the daemon draws its daily minute from: the machine ID, else
/// the host name.
fn machine_seed(root: &Root) -> String {
    root.read_to_string(Path::new(paths::MACHINE_ID))
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::facts::gather(root, &SystemRunner).hostname)
}

/// A playbook as a command read it.
struct Loaded {
    /// How messages and reports name it: its path, or the embedded default.
    name: String,
    /// Its text (what `apply` installs).
    text: String,
    /// Parsed and validated.
    pb: playbook::Playbook,
}

/// A playbook's text from `path`, or from standard input for `-` (as for
/// most Unix tools); `name` is how errors name it.
fn read_playbook_text(path: &Path, name: &str) -> Result<String, PlaybookError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        crate::host::read_text(path)
    }
    .map_err(|source| PlaybookError::Read {
        file: name.to_string(),
        source,
    })
}

/// Reads and validates the named playbook; with none, the one `apply`
/// installed under this root, and on a host that has none the embedded
/// default (every command alike).
fn load_playbook(file: Option<&Path>, root_dir: &Path) -> Result<Loaded, CliError> {
    read_playbook(file, root_dir)?.parse()
}

/// A playbook's text, not parsed yet.
struct Text {
    /// How messages and reports name it: its path, or the embedded default.
    name: String,
    /// Its text.
    text: String,
}

impl Text {
    /// Parsed and validated.
    fn parse(self) -> Result<Loaded, CliError> {
        let pb = playbook::parse(&self.name, &self.text)?;
        Ok(Loaded {
            name: self.name,
            text: self.text,
            pb,
        })
    }
}

/// The text of the named playbook; with none, the one `apply` installed
/// under this root, and on a host that has none the embedded default.
fn read_playbook(file: Option<&Path>, root_dir: &Path) -> Result<Text, CliError> {
    let read = |path: &Path, name: String| -> Result<Text, CliError> {
        let text = read_playbook_text(path, &name)?;
        Ok(Text { name, text })
    };
    if let Some(p) = file {
        let name = if p == Path::new("-") {
            "(standard input)".to_string()
        } else {
            p.display().to_string()
        };
        return read(p, name);
    }
    let installed = open_root(root_dir.to_path_buf())?
        .host_path(Path::new(paths::INSTALLED_PLAYBOOK))
        .ok()
        .filter(|p| p.is_file());
    if let Some(host_path) = installed {
        return read(&host_path, paths::INSTALLED_PLAYBOOK.to_string());
    }
    Ok(Text {
        name: playbook::DEFAULT_NAME.to_string(),
        text: playbook::DEFAULT_PLAYBOOK.to_string(),
    })
}

/// Prints a report as text or JSON; returns the exit code (1: a task failed).
fn print_report(report: &Report, json: bool, diff: bool, check: bool) -> i32 {
    if json {
        print_json(report, diff);
    } else {
        out!("{}", report.render_text(diff, check));
    }
    exit_code(report)
}

/// A report as JSON: its diffs only when they were asked for.
fn print_json(report: &Report, diff: bool) {
    let mut report = report.clone();
    if !diff {
        for t in &mut report.tasks {
            t.diffs.clear();
        }
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serializes")
    );
}

/// 1 when a task failed.
fn exit_code(report: &Report) -> i32 {
    if report.failed > 0 {
        1
    } else {
        0
    }
}

/// How a command prints its report.
struct Output {
    /// JSON at the end instead of streamed text.
    json: bool,
    /// Unified diffs of file changes.
    diff: bool,
    /// The playbook used, as the report names it.
    playbook: String,
    /// `--check --exit-code`: 3 when something would change.
    exit_code: bool,
}

/// Asks `question` on a terminal (stdin and stderr both one); false
/// without a terminal to ask on, or unless the answer is yes.
fn confirm(question: &str) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Runs a plan (streaming its text report), records what portico now owns
/// in the manifest (not in check mode, and not after `remove --purge`
/// deleted the state directory), prints the rest; returns the exit code.
fn run_plan(
    ctx: &Ctx,
    plan: &crate::plan::Plan,
    mode: crate::task::Mode,
    old: &crate::manifest::Manifest,
    out: &Output,
    warnings: Vec<String>,
    hooks: Option<&playbook::Playbook>,
) -> Ran {
    let check = mode == crate::task::Mode::Check;
    let streamer = Streamer::new(out.diff, check);
    if !out.json {
        outln!("playbook: {}", out.playbook);
    }
    let opts = crate::engine::RunOptions {
        progress: (!out.json).then_some(&streamer as &dyn crate::report::Progress),
        obtain_in_parallel: crate::acme::PARALLEL,
    };
    let certificates = hooks.map(|pb| crate::hooks::Snapshot::take(pb, ctx.root));
    let mut report = crate::engine::run_with(&plan.tasks, ctx, mode, opts);
    report.playbook = Some(out.playbook.clone());
    report.warnings.extend(warnings);
    let before = report.tasks.len();
    let purged = plan.purge;
    // Recorded before any hook runs: a hook may take long or be
    // interrupted, and what this run made must be known either way.
    if !check && !purged {
        let recorded =
            crate::manifest::after_run(ctx.root, old, &plan.wanted, &plan.pruned, &report)
                .and_then(|m| m.save(ctx.root));
        if let Err(e) = recorded {
            report.push(crate::report::TaskReport::failed_named(
                format!("manifest {}", paths::MANIFEST),
                Vec::new(),
                format!(
                    "{e}; the changes of this run are in place, but the next run cannot tell \
                     which of them portico made"
                ),
            ));
        }
    }
    if !check && !purged && report.changed + report.failed > 0 {
        if let Err(e) = crate::recover::sweep(ctx.root) {
            tracing::warn!("removing generations and key pairs no longer live: {e}");
        }
    }
    if let (Some(pb), Some(snapshot), false) = (hooks, &certificates, check) {
        crate::hooks::run_deploy_hooks(pb, ctx, &mut report, snapshot);
    }
    if !out.json {
        for t in &report.tasks[before..] {
            out!("{}", t.render_text(false, check));
        }
    }
    if out.json {
        print_json(&report, out.diff);
    } else {
        out!("{}", report.render_summary(check));
    }
    let code = match exit_code(&report) {
        0 if check && out.exit_code && report.changed > 0 => 3,
        code => code,
    };
    Ran {
        code,
        changed: report.changed as u64,
        failed: report.failed as u64,
    }
}

/// How a plan's run ended.
struct Ran {
    /// The exit code.
    code: i32,
    /// Tasks changed.
    changed: u64,
    /// Tasks failed.
    failed: u64,
}

impl Ran {
    /// The run as the metrics record it, ending now.
    fn outcome(&self, ctx: &Ctx, started: std::time::Instant) -> crate::metrics::Outcome {
        crate::metrics::Outcome {
            at: ctx.clock.unix_now(),
            duration_seconds: started.elapsed().as_secs_f64(),
            changed: self.changed,
            failed: self.failed,
            succeeded: self.failed == 0,
        }
    }
}

/// Records a finished run of `command` in the metrics (and rewrites their
/// file); a file that cannot be written is said on stderr, never fatal.
fn record_metrics(ctx: &Ctx, f: crate::metrics::Finished<'_>) {
    if let Some(warning) = crate::metrics::after_run(ctx, &f) {
        tracing::warn!("{warning}");
    }
}

/// The text report, streamed: each task's lines on stdout as it finishes
/// (not all at the end, after minutes of package installs), and on a
/// terminal the task in progress on stderr.
struct Streamer {
    diff: bool,
    check: bool,
    tty: bool,
}

impl Streamer {
    fn new(diff: bool, check: bool) -> Streamer {
        Streamer {
            diff,
            check,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

impl crate::report::Progress for Streamer {
    fn started(&self, name: &str) {
        if self.tty {
            eprint!("\r\x1b[K{:>12}  {name}", "...");
        }
    }

    fn finished(&self, task: &crate::report::TaskReport) {
        use std::io::Write;
        if self.tty {
            eprint!("\r\x1b[K");
        }
        out!("{}", task.render_text(self.diff, self.check));
        let _ = std::io::stdout().flush();
    }
}

/// `--root DIR`: which host a command reads (and writes).
#[derive(Debug, Clone, clap::Args)]
pub struct HostArg {
    /// Operate on the tree under DIR instead of `/` (files only: services,
    /// packages and the firewall are left alone).
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    pub root: PathBuf,
}

/// `--json`: the report for tools.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JsonArg {
    /// Print JSON instead of text ("schema": 1; see the README).
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--check` and `--exit-code`: plan only.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CheckArgs {
    /// Only report what would change; touch nothing (needs no root).
    #[arg(long)]
    pub check: bool,
    /// With --check: exit 3 when something would change, 0 when nothing
    /// would (a drift check for CI).
    #[arg(long, requires = "check")]
    pub exit_code: bool,
}

impl CheckArgs {
    /// The run's mode.
    fn mode(&self) -> crate::task::Mode {
        if self.check {
            crate::task::Mode::Check
        } else {
            crate::task::Mode::Apply
        }
    }
}

/// `--diff`: unified diffs of file changes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DiffArg {
    /// Print unified diffs of file changes (private keys are redacted; a
    /// certificate is shown by its subject, names, issuer and validity).
    #[arg(long)]
    pub diff: bool,
}

/// How a command that changes the host waits for another run to finish.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// Wait up to SECONDS for another portico run on this host to finish
    /// (one run at a time: it holds /run/portico/lock), then exit 1.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, global = true)]
    pub wait: u64,
    /// Exit 1 at once when another portico run holds the lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
}

impl LockArgs {
    fn wait(&self) -> crate::host::lock::Wait {
        (!self.no_wait).then(|| std::time::Duration::from_secs(self.wait))
    }
}

/// The command line as the lock file shows it to whoever waits.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut shown = vec!["portico".to_string()];
    shown.extend(args.into_iter().skip(1));
    shown.join(" ")
}

/// The host under a root, opened: its facts and every seam a run needs.
struct Session {
    root: Root,
    runner: SystemRunner,
    clock: SystemClock,
    procs: SystemProcesses,
    probe: LoopbackProbe,
    facts: Facts,
    systemd: Box<dyn Systemd>,
    /// The host's lock, held for as long as the session lives.
    _lock: Option<crate::host::lock::HostLock>,
}

/// Takes the host's lock for a command that changes it (none with
/// `lock: None`: a check, which never waits), then begins writing
/// ([`begin_writing`]: sweeps what a killed run left half-made).
fn lock_host(
    root_dir: &Path,
    lock: Option<&LockArgs>,
) -> Result<Option<crate::host::lock::HostLock>, CliError> {
    lock_host_sweeping(root_dir, lock, true)
}

/// [`lock_host`]; `sweep`: false for a renewal, which takes the lock
/// first and begins writing only once it knows it will (a run with nothing
/// due or a `--dry-run` writes nothing).
fn lock_host_sweeping(
    root_dir: &Path,
    lock: Option<&LockArgs>,
    sweep: bool,
) -> Result<Option<crate::host::lock::HostLock>, CliError> {
    let Some(args) = lock else {
        return Ok(None);
    };
    let root = open_root(root_dir.to_path_buf())?;
    if root.is_host() && !crate::host::is_root() {
        return Err(CliError::NeedsRoot);
    }
    let wait = args.wait();
    let held = crate::host::lock::acquire(&root, &command_line(), wait, &|holder| {
        eprintln!(
            "portico: another run holds the host's lock ({holder}); waiting up to {} s \
             (--wait SECONDS, --no-wait)",
            wait.map_or(0, |w| w.as_secs())
        );
    })?;
    if sweep {
        begin_writing(&root, held.interrupted);
    }
    Ok(Some(held))
}

/// Is `dir` a directory, not a link to one? (Where the metrics go by
/// default: only a real textfile directory.)
fn is_real_dir(root: &Root, dir: &str) -> bool {
    root.meta(Path::new(dir))
        .ok()
        .flatten()
        .is_some_and(|m| m.is_dir && !m.is_symlink)
}

/// The first steps of a run that may change the host, under its lock:
/// the memo of a quiet renewal goes (crate::nothing_due: a run killed
/// from here on leaves none), and after a run that did not end cleanly
/// (its line still in the lock file) what it left half-made is swept.
fn begin_writing(root: &Root, interrupted: bool) {
    // One that cannot be removed (its directory made a link, which no
    // write of portico's goes through) still answers for nothing this
    // run changes: what it writes moves the stamps the memo holds, and a
    // replaced directory is a miss. The run goes on and reports what it
    // cannot write, as ever.
    if let Err(e) = crate::nothing_due::forget(root) {
        tracing::warn!("{e}");
    }
    if !interrupted {
        return;
    }
    match crate::recover::sweep(root) {
        Ok(gone) if !gone.is_empty() => {
            tracing::info!("removed what an interrupted run left: {}", gone.join(", "))
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cleaning up after an interrupted run: {e}"),
    }
}

impl Session {
    /// [`Session::open`] for a command that changes the host: the lock
    /// first (see [`lock_host`]), then the facts.
    fn open_locked(root_dir: PathBuf, lock: Option<&LockArgs>) -> Result<Session, CliError> {
        let held = lock_host(&root_dir, lock)?;
        let mut s = Self::open(root_dir, lock.is_some())?;
        s._lock = held;
        Ok(s)
    }

    /// Opens the host under `root_dir`, gathers its facts and connects to
    /// its service manager. `writes`: the command changes a live host, so
    /// it needs root.
    fn open(root_dir: PathBuf, writes: bool) -> Result<Session, CliError> {
        Self::open_with(root_dir, writes, crate::facts::gather)
    }

    /// [`Session::open`] for a renewal, which needs only the facts files
    /// give (no tool is asked: a run with nothing due stays cheap).
    /// `orders`: it talks to a CA (not `--check`), which needs root. It
    /// sweeps nothing yet: [`Session::begin_writing`] once it will write.
    fn open_for_renewal(
        root_dir: PathBuf,
        lock: Option<&LockArgs>,
        orders: bool,
    ) -> Result<Session, CliError> {
        // A renewal with nothing to do writes nothing: it begins writing
        // (Session::begin_writing) only once it knows it will.
        let held = lock_host_sweeping(&root_dir, lock, false)?;
        let mut s = Self::open_with(root_dir, orders, |root, _| {
            crate::facts::gather_from_files(root)
        })?;
        s._lock = held;
        Ok(s)
    }

    fn open_with(
        root_dir: PathBuf,
        writes: bool,
        gather: fn(&Root, &dyn crate::host::Runner) -> Facts,
    ) -> Result<Session, CliError> {
        let root = open_root(root_dir)?;
        if writes && root.is_host() && !crate::host::is_root() {
            return Err(CliError::NeedsRoot);
        }
        let runner = SystemRunner;
        let facts = gather(&root, &runner);
        // systemd over D-Bus where it runs; nginx driven directly where not.
        let systemd: Box<dyn Systemd> = if facts.systemd && root.is_host() {
            Box::new(DbusSystemd::connect()?)
        } else {
            Box::new(DirectNginx {
                runner: Box::new(SystemRunner),
            })
        };
        Ok(Session {
            root,
            runner,
            clock: SystemClock::default(),
            procs: SystemProcesses,
            probe: LoopbackProbe,
            facts,
            systemd,
            _lock: None,
        })
    }

    /// May a run that writes nothing leave the sweep to the next that
    /// writes? Yes, unless the run before this one on a live host did not
    /// end cleanly. (Under `--root` the lock records nothing: there a
    /// quiet renewal's memo on disk says it, crate::nothing_due.)
    fn after_clean_end(&self) -> bool {
        self._lock
            .as_ref()
            .is_none_or(|l| !l.interrupted || !self.root.is_host())
    }

    /// [`begin_writing`] for a session opened without it.
    fn begin_writing(&self) {
        begin_writing(
            &self.root,
            self._lock.as_ref().is_some_and(|l| l.interrupted),
        );
    }

    /// What every task sees, in a run that applies.
    fn ctx(&self) -> Ctx<'_> {
        self.ctx_for(crate::task::Mode::Apply)
    }

    /// What every task sees, in a run of `mode`.
    fn ctx_for(&self, mode: crate::task::Mode) -> Ctx<'_> {
        self.ctx_in(&self.root, mode)
    }

    /// What every task sees, in a run of `mode` that writes under `root`
    /// (`validate`'s scratch copy of this host): host steps only where
    /// `root` is the live host.
    fn ctx_in<'a>(&'a self, root: &'a Root, mode: crate::task::Mode) -> Ctx<'a> {
        Ctx {
            root,
            runner: &self.runner,
            systemd: self.systemd.as_ref(),
            clock: &self.clock,
            procs: &self.procs,
            probe: &self.probe,
            facts: &self.facts,
            live_host: root.is_host(),
            is_root: crate::host::is_root(),
            mode,
            diffs: false,
        }
    }

    /// The playbook with `{hostname}` resolved for this host.
    fn resolve(&self, mut pb: playbook::Playbook) -> Result<playbook::Playbook, CliError> {
        pb.resolve_hostname(&self.facts.hostname, &self.facts.hostname_source)?;
        pb.metrics
            .resolve_default(|dir| is_real_dir(&self.root, dir));
        Ok(pb)
    }
}
