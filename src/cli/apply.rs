//! `portico apply`: bring the host to what a playbook describes, and take
//! away what portico made that it no longer describes.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{
    load_playbook, machine_seed, open_root, record_metrics, run_plan, CliError, Loaded, Output,
    Session,
};
use crate::manifest::{self, Manifest};
use crate::plan::{Converge, Install};
use crate::task::Task;
use crate::tasks::prune::AdoptTask;

/// `portico apply`'s arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Playbook file (TOML); `-` reads it from standard input. Default: the
    /// one apply installed, /etc/portico/playbook.toml; on a host that has
    /// none, the embedded default.
    pub playbook: Option<PathBuf>,
    /// Plan only.
    #[command(flatten)]
    pub plan: super::CheckArgs,
    /// Diffs.
    #[command(flatten)]
    pub diff: super::DiffArg,
    /// JSON.
    #[command(flatten)]
    pub json: super::JsonArg,
    /// Take over files at paths portico writes that it did not write
    /// itself (a copy of each is kept in /var/lib/portico/archive).
    #[arg(long)]
    pub adopt: bool,
    /// Replace the installed playbook even though this one keeps none of
    /// its sites (asked on a terminal; refused otherwise).
    #[arg(long)]
    pub replace: bool,
    /// Which host.
    #[command(flatten)]
    pub host: super::HostArg,
    /// Waiting for another run.
    #[command(flatten)]
    pub lock: super::LockArgs,
    /// Not a flag of apply: said so with the one that is.
    #[arg(long, hide = true)]
    pub dry_run: bool,
}

/// Plans and runs (or, with `--check`, only checks) the playbook.
pub(super) fn run(a: ApplyArgs) -> Result<i32, CliError> {
    if a.dry_run {
        return Err(CliError::NoSuchFlag(
            "apply has no --dry-run: `portico apply --check` plans and touches nothing \
             (`renew --dry-run` is another thing: real orders whose certificates are thrown away)",
        ));
    }
    let started = std::time::Instant::now();
    let root = &a.host.root;
    // The playbook is checked before anything else: bad input touches nothing.
    let loaded = load_playbook(a.playbook.as_deref(), root)?;
    let check = a.plan.check;
    let mut warnings = replacing(&loaded, root, check, a.replace)?;
    let session = Session::open_locked(root.clone(), (!check).then_some(&a.lock))?;
    // Shared with the plan, which renders each site's files when it reads
    // them rather than keeping their text.
    let pb = std::sync::Arc::new(session.resolve(loaded.pb)?);
    let mode = a.plan.mode();
    let ctx = crate::task::Ctx {
        diffs: a.diff.diff,
        ..session.ctx_for(mode)
    };
    let facts = &session.facts;
    if ctx.live_host {
        if let Some(n) = crate::plan::firewall_notice(&pb, facts) {
            eprintln!("{n}");
        }
    }
    let (old, had_manifest) = made_before(ctx.root)?;
    let now = ctx.clock.unix_now();
    let archive = manifest::archive_for_run(ctx.root, now);
    // The kernel's name for this binary, symlinks resolved: the unit task
    // checks that only root can replace it.
    let exe =
        crate::host::current_exe().unwrap_or_else(|| PathBuf::from(crate::paths::INSTALLED_EXE));
    let mut plan = crate::plan::full(
        &pb,
        facts,
        now,
        Some(Install {
            text: &loaded.text,
            exe: &exe,
        }),
        Some(Converge {
            manifest: &old,
            archive: archive.clone(),
            purge: false,
            reason: "no longer in the playbook",
        }),
    );
    let recorded = had_manifest.then_some(&old);
    adopt_or_refuse(ctx.root, recorded, &mut plan, a.adopt, &archive)?;
    let out = Output {
        json: a.json.json,
        diff: a.diff.diff,
        playbook: loaded.name,
        exit_code: a.plan.exit_code,
    };
    warnings.extend(crate::plan::warnings(&pb, facts));
    let ran = run_plan(&ctx, &plan, mode, &old, &out, warnings, Some(&pb));
    if !check {
        record_metrics(
            &ctx,
            crate::metrics::Finished {
                command: "apply",
                outcome: ran.outcome(&ctx, started),
                pb: Some(&pb),
                playbook: &out.playbook,
                seed: &machine_seed(ctx.root),
                file: pb.metrics.file(),
                // Refused above unless portico's or adopted.
                take_over: true,
            },
        );
    }
    Ok(ran.code)
}

/// Files at paths the plan writes that portico did not make: refused, or
/// with `--adopt` archived first by tasks put before all others.
fn adopt_or_refuse(
    root: &crate::host::Root,
    recorded: Option<&Manifest>,
    plan: &mut crate::plan::Plan,
    adopt: bool,
    archive: &Path,
) -> Result<(), CliError> {
    let wanted = plan.wanted.iter().map(|(_, o)| o);
    let conflicts = manifest::conflicts(root, recorded, wanted)?;
    if conflicts.is_empty() {
        return Ok(());
    }
    if !adopt {
        return Err(CliError::NotPortico(conflicts));
    }
    let adopt: Vec<Box<dyn Task>> = conflicts
        .into_iter()
        .map(|c| {
            Box::new(AdoptTask {
                path: c.path,
                archive: archive.to_path_buf(),
            }) as Box<dyn Task>
        })
        .collect();
    plan.tasks.splice(0..0, adopt);
    Ok(())
}

/// What portico made before, and whether its manifest says so: a host set
/// up before the manifest existed starts from the files carrying
/// portico's header.
fn made_before(root: &crate::host::Root) -> Result<(Manifest, bool), CliError> {
    Ok(match Manifest::load(root)? {
        Some(m) => (m, true),
        None => (manifest::legacy(root)?, false),
    })
}

/// A playbook that keeps none of the installed one's sites: refused
/// without `--replace` (or a yes on a terminal); in check mode, said.
fn replacing(
    loaded: &Loaded,
    root: &Path,
    check: bool,
    replace: bool,
) -> Result<Vec<String>, CliError> {
    let Some(dropped) = drops_every_site(loaded, root)? else {
        return Ok(Vec::new());
    };
    let why = format!(
        "{} keeps none of the sites of the installed playbook {} ({})",
        loaded.name,
        crate::paths::INSTALLED_PLAYBOOK,
        dropped.join(", ")
    );
    if check {
        return Ok(vec![format!("{why}: apply would need --replace")]);
    }
    if !replace && !super::confirm(&format!("{why}; replace it?")) {
        return Err(CliError::WouldReplace(why));
    }
    Ok(Vec::new())
}

/// When a playbook is installed and `loaded` is another that keeps none of
/// its sites: the installed sites it would drop.
fn drops_every_site(loaded: &Loaded, root: &Path) -> Result<Option<Vec<String>>, CliError> {
    if loaded.name == crate::paths::INSTALLED_PLAYBOOK {
        return Ok(None);
    }
    // The same text keeps every site: no second parse (of 10,000 sites).
    let same_text = open_root(root.to_path_buf())
        .ok()
        .and_then(|r| r.read(Path::new(crate::paths::INSTALLED_PLAYBOOK)).ok())
        .flatten()
        .is_some_and(|t| t == loaded.text.as_bytes());
    if same_text {
        return Ok(None);
    }
    let Ok(installed) = load_playbook(None, root) else {
        // An installed playbook that does not read is replaced knowingly
        // or not at all: its own error says so at the next renewal.
        return Ok(None);
    };
    if installed.name != crate::paths::INSTALLED_PLAYBOOK || installed.pb.sites.is_empty() {
        return Ok(None);
    }
    let kept: Vec<String> = loaded.pb.sites.iter().map(|s| s.id()).collect();
    let old: Vec<String> = installed.pb.sites.iter().map(|s| s.id()).collect();
    Ok((!old.iter().any(|s| kept.contains(s))).then_some(old))
}
