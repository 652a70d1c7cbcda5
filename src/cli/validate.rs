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

use super::{load_playbook, CliError, Session};
use crate::host::{Command, Root, Runner};
use crate::manifest::{self, Manifest};
use crate::plan::Converge;
use crate::playbook::Source;
use crate::report::Status;
use crate::task::Mode;

/// `portico validate`'s arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// one apply installed, /etc/portico/playbook.toml (else the embedded
    /// default).
    pub playbook: Option<PathBuf>,
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Which host (its nginx, certificates and manifest).
    #[command(flatten)]
    pub host: super::HostArg,
}

/// The host directories copied into the scratch tree (and mounted over
/// the real ones for `nginx -t`).
const COPIED: &[&str] = &[paths::NGINX_CONF_DIR, "/etc/ssl"];

/// What validate found, as its JSON says it.
#[derive(Debug, Default, serde::Serialize)]
struct Verdict {
    schema: u32,
    mode: &'static str,
    playbook: String,
    /// What apply would warn about too.
    warnings: Vec<String>,
    /// What is wrong with what the playbook names (files, certificates).
    problems: Vec<String>,
    /// What could not be checked here, and why.
    skipped: Vec<String>,
    /// `nginx -t` on the rendered tree: null when it did not run.
    nginx_accepts: Option<bool>,
    /// What nginx said.
    nginx_said: String,
}

impl Verdict {
    /// 0 valid, 1 nginx rejects it, 2 the playbook is wrong.
    fn exit_code(&self) -> i32 {
        if !self.problems.is_empty() {
            2
        } else if self.nginx_accepts == Some(false) {
            1
        } else {
            0
        }
    }

    fn print(&self, json: bool) {
        if json {
            outln!(
                "{}",
                serde_json::to_string_pretty(self).expect("verdict serializes")
            );
            return;
        }
        outln!("playbook: {}", self.playbook);
        for w in &self.warnings {
            outln!("warning: {w}");
        }
        for p in &self.problems {
            outln!("error: {p}");
        }
        for s in &self.skipped {
            outln!("not checked: {s}");
        }
        match self.nginx_accepts {
            Some(true) => outln!("nginx -t: the rendered configuration is accepted"),
            Some(false) => {
                outln!("nginx -t: REJECTED");
                for line in self.nginx_said.lines().filter(|l| !l.trim().is_empty()) {
                    outln!("  {line}");
                }
            }
            None => {}
        }
        outln!(
            "{}",
            match self.exit_code() {
                0 => "valid",
                1 => "invalid: nginx rejects the configuration",
                _ => "invalid",
            }
        );
    }
}

/// Checks the playbook as `apply --check` would, renders it into a scratch
/// copy of the host, and has nginx test that (as root).
pub(super) fn run(a: ValidateArgs) -> Result<i32, CliError> {
    let root = &a.host.root;
    let loaded = load_playbook(a.playbook.as_deref(), root)?;
    let session = Session::open(root.clone(), false)?;
    let (host, runner, facts) = (&session.root, &session.runner, &session.facts);
    let mut pb = session.resolve(loaded.pb)?;
    let mut v = Verdict {
        schema: crate::report::SCHEMA,
        mode: "validate",
        playbook: loaded.name,
        warnings: crate::plan::warnings(&pb, facts),
        ..Verdict::default()
    };
    let as_root = crate::host::is_root();
    let scratch = crate::host::scratch_dir("portico-validate-")
        .map_err(|(path, source)| CliError::OutputDir { path, source })?;
    let dir = scratch.path();
    if let Err(e) = copy_host(runner, host, dir, &pb, as_root) {
        v.problems.push(format!(
            "copying this host's configuration to {}: {e}",
            dir.display()
        ));
        v.print(a.json.json);
        return Ok(1);
    }
    stand_ins(&mut pb, host, as_root, &mut v.skipped);
    let pb = std::sync::Arc::new(pb);
    let tree = Root::new(dir);
    let ctx = session.ctx_in(&tree, Mode::Apply);
    // What this host's portico made and the playbook drops is pruned in
    // the copy too, so nginx sees what apply would leave.
    let old = match Manifest::load(host)? {
        Some(m) => m,
        None => manifest::legacy(host)?,
    };
    let plan = crate::plan::full(
        &pb,
        facts,
        ctx.clock.unix_now(),
        None,
        Some(Converge {
            manifest: &old,
            archive: PathBuf::from(paths::ARCHIVE_DIR).join("validate"),
            purge: true,
            reason: "no longer in the playbook",
        }),
    );
    let report = crate::engine::run(&plan.tasks, &ctx, Mode::Apply);
    v.problems.extend(
        report
            .tasks
            .iter()
            .filter(|t| t.status == Status::Failed)
            .map(|t| format!("{}: {}", t.name, t.reason.as_deref().unwrap_or("failed"))),
    );
    if v.problems.is_empty() {
        test_rendered(&mut v, runner, dir, host, facts.nginx.installed, as_root);
    }
    v.print(a.json.json);
    Ok(v.exit_code())
}

/// Certificates that cannot be had here stand in as throwaway self-signed
/// ones at the same paths: an ACME certificate (no CA is asked), and, as a
/// user other than root, files only root may read.
fn stand_ins(
    pb: &mut crate::playbook::Playbook,
    host: &Root,
    as_root: bool,
    skipped: &mut Vec<String>,
) {
    for c in &mut pb.certificates {
        // A file that is not there is the playbook's fault, for any user:
        // only one this user may not read stands in.
        let unreadable = match &c.source {
            Source::Files {
                cert_file,
                key_file,
            } => [cert_file, key_file]
                .iter()
                .any(|f| host.read(Path::new(f)).is_err()),
            _ => false,
        };
        if c.source.is_acme() {
            c.source = Source::SelfSigned { days: 1 };
        } else if !as_root && unreadable {
            skipped.push(format!(
                "certificate {}: its files are root's to read (run validate with sudo to check them)",
                c.name
            ));
            c.source = Source::SelfSigned { days: 1 };
        }
    }
}

/// `nginx -t` on the rendered tree, at the paths nginx reads, where it can
/// run here; else what was not checked, and why.
fn test_rendered(
    v: &mut Verdict,
    runner: &dyn Runner,
    dir: &Path,
    host: &Root,
    installed: bool,
    as_root: bool,
) {
    if !installed {
        v.skipped.push(
            "nginx -t: nginx is not installed on this machine (install it to have the rendered \
             configuration tested too)"
                .into(),
        );
        return;
    }
    if !as_root {
        v.skipped.push(
            "nginx -t: testing the rendered configuration at nginx's own paths takes a private \
             mount namespace, which needs root (run validate with sudo)"
                .into(),
        );
        return;
    }
    match runner.run(&nginx_t_command(dir, host)) {
        Ok(o) => {
            v.nginx_accepts = Some(o.success());
            v.nginx_said = o.stderr;
        }
        Err(e) => v
            .problems
            .push(format!("nginx -t in a private mount namespace: {e}")),
    }
}

/// Copies nginx's and the TLS directories, the CAs portico keeps, and the
/// certificate files the playbook names, into `dir`.
fn copy_host(
    runner: &dyn Runner,
    host: &Root,
    dir: &Path,
    pb: &crate::playbook::Playbook,
    as_root: bool,
) -> Result<(), String> {
    let into = |path: &str| dir.join(path.trim_start_matches('/'));
    for d in COPIED {
        // Another user cannot read the keys under /etc/ssl; nginx -t does
        // not run then either, so its TLS directory is not needed.
        if !host.exists(Path::new(d)) || (!as_root && *d != paths::NGINX_CONF_DIR) {
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
