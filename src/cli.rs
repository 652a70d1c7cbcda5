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
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Cmd::Apply(a) => apply(a),
        Cmd::Facts(f) => facts_cmd(f),
        Cmd::Service(s) => service_cmd(s),
    }
}

fn open_root(dir: PathBuf) -> Result<Root, CliError> {
    if !dir.is_dir() {
        return Err(CliError::BadRoot(dir));
    }
    Ok(Root::new(dir))
}

fn apply(a: ApplyArgs) -> Result<i32, CliError> {
    let mut pb = match &a.playbook {
        Some(p) => playbook::load_file(p)?,
        None => playbook::parse(playbook::DEFAULT_NAME, playbook::DEFAULT_PLAYBOOK)?,
    };
    let root = open_root(a.root)?;
    if root.is_host() && !a.check && !nix::unistd::geteuid().is_root() {
        return Err(CliError::NeedsRoot);
    }
    let runner = SystemRunner;
    let facts = facts::gather(&root, &runner);
    pb.resolve_hostname(&facts.hostname);
    let systemd = service_manager(&facts, root.is_host(), &runner)?;
    let ctx = Ctx {
        root: &root,
        runner: &runner,
        systemd: systemd.as_ref(),
        facts: &facts,
        live_host: root.is_host(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let tasks = crate::plan::plan(&pb, &facts, now);
    let mode = if a.check { Mode::Check } else { Mode::Apply };
    let report = engine::run(&tasks, &ctx, mode);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report.render_text(a.diff, a.check));
    }
    Ok(if report.failed > 0 { 1 } else { 0 })
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
    println!("firewall:        {:?}", facts.firewall);
    println!("hostname:        {}", facts.hostname);
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
