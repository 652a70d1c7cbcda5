//! `portico validate PLAYBOOK`: everything `apply` would check about a
//! playbook, without touching the host. The playbook is validated, its
//! configuration rendered into a scratch copy of this host's nginx and TLS
//! directories (ACME certificates stood in for by throwaway self-signed
//! ones), and the result put before the installed nginx (`nginx -t`) in a
//! private mount namespace, so nginx sees it at the real paths while the
//! host's files stay as they are. For CI: exit 0 valid, 1 nginx rejects
//! it, 2 the playbook is wrong.

use crate::paths;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{load_playbook, CliError, Fallback, Session};
use crate::host::{Command, Root, Runner};
use crate::manifest::{self, Manifest};
use crate::plan::Converge;
use crate::playbook::Source;
use crate::report::Status;
use crate::task::Mode;

/// `portico validate`'s arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The playbook file (TOML).
    pub playbook: PathBuf,
    /// Validate against the host installed under this directory (its
    /// nginx, certificates and manifest) instead of this one.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
}

/// The host directories copied into the scratch tree (and mounted over
/// the real ones for `nginx -t`).
const COPIED: &[&str] = &[paths::NGINX_CONF_DIR, "/etc/ssl"];

/// Validates, renders and (where nginx is installed) tests the playbook.
pub(super) fn run(a: ValidateArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(Some(&a.playbook), Fallback::Embedded, &a.root)?;
    outln!("playbook: {}: valid", loaded.name);
    let session = Session::open(a.root, false)?;
    let (host, runner, facts) = (&session.root, &session.runner, &session.facts);
    let mut pb = session.resolve(loaded.pb)?;
    if facts.nginx.installed && !crate::host::is_root() {
        return Err(CliError::ValidateNeedsRoot);
    }
    if !facts.nginx.installed {
        outln!(
            "nginx -t: not run: nginx is not installed on this machine (install it to have the \
             rendered configuration tested too)"
        );
        return Ok(0);
    }
    let scratch = crate::host::scratch_dir("portico-validate-")
        .map_err(|(path, source)| CliError::OutputDir { path, source })?;
    let dir = scratch.path();
    let fail = |what: String| {
        outln!("FAILED: {what}");
        Ok(1)
    };
    if let Err(e) = copy_host(runner, host, dir, &pb) {
        return fail(format!(
            "copying this host's configuration to {}: {e}",
            dir.display()
        ));
    }
    // ACME certificates cannot be had without the CA: throwaway
    // self-signed ones for the same names, at the same paths, stand in.
    for c in pb.certificates.iter_mut().filter(|c| c.source.is_acme()) {
        c.source = Source::SelfSigned { days: 1 };
    }
    let tree = Root::new(dir);
    let ctx = session.ctx_in(&tree, Mode::Apply);
    // What this host's portico made and the playbook drops is pruned in
    // the copy too, so nginx sees what apply would leave.
    let old = match Manifest::load(host)? {
        Some(m) => m,
        None => manifest::legacy(host)?,
    };
    let now = ctx.clock.unix_now();
    let plan = crate::plan::full(
        &pb,
        facts,
        now,
        None,
        Some(Converge {
            manifest: &old,
            archive: PathBuf::from(paths::ARCHIVE_DIR).join("validate"),
            purge: true,
            reason: "no longer in the playbook",
        }),
    );
    let report = crate::engine::run(&plan.tasks, &ctx, Mode::Apply);
    if let Some(t) = report.tasks.iter().find(|t| t.status == Status::Failed) {
        return fail(format!(
            "{}: {}",
            t.name,
            t.reason.as_deref().unwrap_or("failed")
        ));
    }
    outln!("rendered: what apply would write, into a scratch copy of /etc/nginx and /etc/ssl");
    let out = runner.run(&nginx_t_command(dir, host));
    match out {
        Ok(o) if o.success() => {
            outln!("nginx -t: the configuration is accepted");
            Ok(0)
        }
        Ok(o) => {
            outln!("nginx -t: REJECTED");
            for line in o.stderr.lines().filter(|l| !l.trim().is_empty()) {
                outln!("  {line}");
            }
            Ok(1)
        }
        Err(e) => fail(format!("nginx -t in a private mount namespace: {e}")),
    }
}

/// Copies nginx's and the TLS directories, the CAs portico keeps, and the
/// certificate files the playbook names, into `dir`.
fn copy_host(
    runner: &dyn Runner,
    host: &Root,
    dir: &Path,
    pb: &crate::playbook::Playbook,
) -> Result<(), String> {
    let into = |path: &str| dir.join(path.trim_start_matches('/'));
    for d in COPIED {
        if !host.exists(Path::new(d)) {
            continue;
        }
        let parent = into(d).parent().map(Path::to_path_buf).unwrap_or_default();
        host.create_dir_all(&parent, 0o755)
            .map_err(|e| e.to_string())?;
        runner
            .run_ok(&Command::mutation([
                "cp",
                "-a",
                d,
                &parent.display().to_string(),
            ]))
            .map_err(|e| e.to_string())?;
    }
    // nginx's temporary paths live in /var/lib, which is mounted from here.
    for d in [paths::NGINX_STATE_DIR, paths::STATE_DIR] {
        host.create_dir_all(&into(d), 0o755)
            .map_err(|e| e.to_string())?;
    }
    let cas = Path::new(paths::STATE_DIR).join("ca");
    if host.exists(&cas) {
        runner
            .run_ok(&Command::mutation([
                "cp".to_string(),
                "-a".to_string(),
                cas.display().to_string(),
                into(paths::STATE_DIR).display().to_string(),
            ]))
            .map_err(|e| e.to_string())?;
    }
    let tree = Root::new(dir);
    for c in &pb.certificates {
        if let Source::Files {
            cert_file,
            key_file,
        } = &c.source
        {
            for f in [cert_file, key_file] {
                let p = Path::new(f);
                if let (Ok(Some(bytes)), false) = (host.read(p), tree.exists(p)) {
                    let parent = p.parent().unwrap_or(Path::new("/"));
                    tree.create_dir_all(parent, 0o755)
                        .and_then(|()| tree.write_atomic(p, &bytes, 0o600))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// `nginx -t` with the scratch tree mounted over the real directories in
/// a mount namespace of its own, made private before anything is mounted,
/// and tmpfs over the log and run directories, so nothing on the host is
/// written.
fn nginx_t_command(dir: &Path, host: &Root) -> Command {
    let d = dir.display();
    // Nothing below may reach the host's mount table: util-linux before
    // 2.27 (EL7) leaves a new namespace's mounts shared with the host.
    let mut script: Vec<String> = vec!["mount --make-rprivate /".into()];
    script.extend(
        COPIED
            .iter()
            .filter(|p| host.exists(Path::new(p)))
            .map(|p| format!("mount --bind '{d}{p}' {p}")),
    );
    script.push(format!("mount --bind '{d}/var/lib' /var/lib"));
    for tmp in ["/run", paths::NGINX_LOG_DIR] {
        if host.exists(Path::new(tmp)) {
            script.push(format!("mount -t tmpfs tmpfs {tmp}"));
        }
    }
    script.push("nginx -t".into());
    let mut argv = vec!["unshare", "--mount"];
    let script = script.join(" && ");
    argv.extend(["sh", "-c", &script]);
    Command::query(argv)
}
