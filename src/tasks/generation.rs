//! portico's nginx configuration on disk, one generation at a time (see
//! [`crate::nginx::generation`]): the task that makes the playbook's
//! generation live, the switch it and the challenge step share, the
//! candidate `nginx -t`, and the sweep of generations no longer live.

use crate::paths;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::host::root::RootError;
use crate::host::{Command, Root};
use crate::nginx::default_server::CatchAll;
use crate::nginx::generation::{self, Generation, Text};
use crate::nginx::render::Target;
use crate::owned::{Owned, Thing};
use crate::task::{Action, Change, Ctx, Handler, Mode, Scope, Task, TaskError, TaskId};
use crate::tasks::file::{file_changes, unified_diff};
use paths::{NGINX_DIR, NGINX_ENTRY, NGINX_LIVE};

/// One file of the playbook's generation, and what must be on disk for it
/// to be part of it (a site's HTTPS server needs its certificate and key,
/// and its client CA).
#[derive(Debug, Clone)]
pub struct GenFile {
    /// Its path inside the generation.
    pub rel: String,
    /// Its text (rendered when read, for a site's files).
    pub content: Text,
    /// Files that must exist (symlinks followed) for it to be included.
    pub needs: Vec<PathBuf>,
    /// What it serves, for the report (`site web`).
    pub owner: String,
}

/// The catch-all servers, decided when the task checks: which sockets a
/// server outside portico already claims, and the installed nginx.
#[derive(Debug, Clone)]
pub struct CatchAllSpec {
    /// One per port portico listens on, every socket wanted.
    pub ports: Vec<CatchAll>,
    /// The nginx rendered for (updated from the host when checked).
    pub target: Target,
}

/// The live generation's directory name, when the link is portico's.
fn live_name(root: &Root) -> Result<Option<String>, RootError> {
    let Some(target) = root.read_link(Path::new(NGINX_LIVE))? else {
        return Ok(None);
    };
    let name = target.to_string_lossy().into_owned();
    Ok((!name.contains('/') && name.starts_with(generation::PREFIX)).then_some(name))
}

/// The live generation: its directory's name and its files.
pub fn current(root: &Root) -> Result<Option<(String, Generation)>, RootError> {
    let Some(name) = live_name(root)? else {
        return Ok(None);
    };
    let files = root
        .read_tree(&Path::new(NGINX_DIR).join(&name))?
        .unwrap_or_default();
    Ok(Some((name, Generation::from_tree(files))))
}

/// Does generation directory `name` hold exactly `gen`'s files, byte for
/// byte? `None` when there is no such directory. Read one file at a time:
/// the usual answer (yes, nothing changed) never holds a second copy of
/// thousands of sites' configuration.
fn holds(root: &Root, name: &str, gen: &Generation) -> Result<Option<bool>, RootError> {
    let (mut same, mut seen) = (true, 0usize);
    let exists = root.each_file(&Path::new(NGINX_DIR).join(name), |rel, bytes| {
        seen += 1;
        same = gen.has(&rel, &bytes);
        same
    })?;
    Ok(exists.then_some(same && seen == gen.files.len()))
}

/// The directory `gen` is written to: `gen-ID`, or where something else
/// is there already (a file of it edited by hand), the first free
/// `gen-ID-N` or one that holds exactly `gen`.
fn dir_for(root: &Root, gen: &Generation) -> Result<String, RootError> {
    let base = gen.dir_name();
    for n in 0..100u32 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        match holds(root, &name, gen)? {
            None | Some(true) => return Ok(name),
            Some(false) => {}
        }
    }
    Ok(format!("{base}-{}", crate::host::pid()))
}

/// An empty generation made live: what nginx includes until the first is
/// tested.
fn empty_generation() -> [Change; 2] {
    let empty = Generation::default();
    [
        Change::new(
            format!(
                "write {} (an empty generation: what nginx includes until the first is tested)",
                empty.dir().display()
            ),
            Action::WriteTree {
                path: empty.dir(),
                files: Vec::new(),
                mode: 0o755,
            },
        ),
        Change::new(
            format!("link {NGINX_LIVE} -> {}", empty.dir_name()),
            Action::Symlink {
                path: NGINX_LIVE.into(),
                target: empty.dir_name().into(),
            },
        ),
    ]
}

/// The changes that make `gen` live: portico's directory and, on a live
/// host, an empty generation where there is none yet (so the entry file
/// has something to include and a candidate something to be mounted
/// over), the entry file, the new generation written whole, tested in
/// place, and switched to with one rename. Empty when `gen` is live
/// already, byte for byte.
pub fn switch_changes(ctx: &Ctx, gen: &Generation, why: &str) -> Result<Vec<Change>, TaskError> {
    let live = live_name(ctx.root)?;
    let entry = file_changes(
        ctx,
        Path::new(NGINX_ENTRY),
        generation::entry().as_bytes(),
        0o644,
        0o755,
    )?;
    let held = live.as_deref().map(|name| holds(ctx.root, name, gen));
    let is_live = held.transpose()?.flatten() == Some(true);
    if is_live && entry.is_empty() {
        return Ok(Vec::new());
    }
    let mut changes = Vec::new();
    if !ctx.root.exists(Path::new(NGINX_DIR)) {
        changes.push(Change::new(
            format!("create directory {NGINX_DIR} (mode 0755)"),
            Action::EnsureDir {
                path: NGINX_DIR.into(),
                mode: 0o755,
            },
        ));
    }
    if live.is_none() && ctx.live_host {
        changes.extend(empty_generation());
    }
    // The entry before the new generation is tested: it is what makes
    // nginx read portico's directory at all (through the link, which leads
    // to a tested generation or the empty one).
    changes.extend(entry);
    if is_live {
        return Ok(changes);
    }
    let name = dir_for(ctx.root, gen)?;
    let dir = Path::new(NGINX_DIR).join(&name);
    // What changes, for the report and `--diff`: only now is the live
    // generation read whole.
    let old = current(ctx.root)?.map(|(_, g)| g).unwrap_or_default();
    let write = Change::new(
        format!("write {} ({}; {why})", dir.display(), counts(&old, gen)),
        Action::WriteTree {
            path: dir.clone(),
            files: gen.tree(),
            mode: 0o755,
        },
    )
    .with_diff(ctx, || diff(&old, gen));
    changes.push(write);
    changes.push(Change::new(
        format!("nginx -t with {name} in place of the live generation"),
        Action::TestNginx {
            candidate: Some(dir),
        },
    ));
    changes.push(Change::new(
        format!("make {name} live (one rename of {NGINX_LIVE})"),
        Action::Symlink {
            path: NGINX_LIVE.into(),
            target: name.into(),
        },
    ));
    Ok(changes)
}

/// `N files: +added ~changed -removed` against the live generation.
fn counts(old: &Generation, new: &Generation) -> String {
    let added = new
        .files
        .keys()
        .filter(|k| !old.files.contains_key(*k))
        .count();
    let removed = old
        .files
        .keys()
        .filter(|k| !new.files.contains_key(*k))
        .count();
    let changed = new
        .files
        .iter()
        .filter(|(k, v)| old.files.get(*k).is_some_and(|o| o != *v))
        .count();
    format!("{} files: +{added} ~{changed} -{removed}", new.files.len())
}

/// Unified diffs of every file that differs, under the live link's name.
fn diff(old: &Generation, new: &Generation) -> String {
    let mut out = String::new();
    let keys: std::collections::BTreeSet<&String> =
        old.files.keys().chain(new.files.keys()).collect();
    for k in keys {
        let (a, b) = (
            old.files.get(k).map(Text::get),
            new.files.get(k).map(Text::get),
        );
        if a == b {
            continue;
        }
        let path = Path::new(NGINX_LIVE).join(k);
        out.push_str(&unified_diff(
            &path,
            a.as_deref().map(str::as_bytes),
            b.as_deref().map_or(&b""[..], str::as_bytes),
            0o644,
        ));
    }
    out
}

/// `nginx -t` on the configuration with `candidate` in place of the live
/// generation, in a private mount namespace (nothing changes on the host).
/// Where namespaces are refused (no CAP_SYS_ADMIN, a sandbox), the
/// candidate is linked in, tested, and the link put back at once.
pub fn test(ctx: &Ctx, candidate: Option<&Path>) -> Result<(), TaskError> {
    if !ctx.live_host {
        return Ok(());
    }
    let live = Path::new(NGINX_LIVE);
    let mut cmd = Command::query(["nginx", "-t", "-q"]);
    if let Some(c) = candidate {
        cmd = cmd.bind(&ctx.root.host_path(c)?, live);
    }
    let out = match ctx.runner.run(&cmd) {
        Err(e) if e.namespaces_refused() && candidate.is_some() => {
            tracing::warn!(
                "cannot test the new nginx configuration in a private mount namespace ({e}); \
                 testing it in place"
            );
            let before = ctx.root.read_link(live)?;
            // What was live is named first, durably: a kill while the
            // untested candidate is linked in is undone by the next run's
            // recovery, before anything else (see `recover`).
            if let Some(b) = &before {
                ctx.root.symlink(Path::new(paths::NGINX_PREVIOUS), b)?;
            }
            let name = candidate.and_then(Path::file_name).unwrap_or_default();
            ctx.root.symlink(live, Path::new(name))?;
            let out = ctx.runner.run(&Command::query(["nginx", "-t", "-q"]));
            match before {
                Some(b) => ctx.root.symlink(live, &b)?,
                None => ctx.root.remove(live)?,
            }
            ctx.root.remove(Path::new(paths::NGINX_PREVIOUS))?;
            out?
        }
        other => other?,
    };
    if out.success() {
        return Ok(());
    }
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains("test failed") && !l.trim().is_empty())
        .collect();
    Err(TaskError::NginxRejected(errors.join("\n")))
}

/// Puts back what an in-place test killed midway left: the generation that
/// was live before it. Run first by every recovery.
pub fn restore_after_interrupted_test(root: &Root) -> Result<bool, RootError> {
    let Some(before) = root.read_link(Path::new(paths::NGINX_PREVIOUS))? else {
        return Ok(false);
    };
    root.symlink(Path::new(NGINX_LIVE), &before)?;
    root.remove(Path::new(paths::NGINX_PREVIOUS))?;
    Ok(true)
}

/// Removes every generation but the live one, and whatever a killed run
/// left half-made in portico's nginx directory.
pub fn collect(root: &Root) -> Result<(), RootError> {
    let keep: Vec<String> = [NGINX_LIVE, paths::NGINX_PREVIOUS]
        .iter()
        .filter_map(|l| root.read_link(Path::new(l)).ok().flatten())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    for name in root.list_dir(Path::new(NGINX_DIR))? {
        if name == "live" || name == "previous" || keep.contains(&name) {
            continue;
        }
        root.remove_tree(&Path::new(NGINX_DIR).join(&name))?;
    }
    Ok(())
}

/// The playbook's nginx configuration: every file rendered, the ones whose
/// certificate (or client CA) is on disk included, the catch-all servers
/// decided against the host, made live as one generation.
pub struct GenerationTask {
    /// Every file the playbook renders, with what each needs.
    pub files: Vec<GenFile>,
    /// The catch-all servers (`None`: the playbook has no site).
    pub catch_all: Option<CatchAllSpec>,
    /// The renewal daemon's unit, when it is installed: its sandbox is
    /// checked against the files nginx opens.
    pub daemon_unit: Option<String>,
    /// nginx's configuration as read when checked (for the notes).
    pub dump: std::cell::RefCell<String>,
}

impl GenerationTask {
    /// The files whose needs are met, and a note for each site left out.
    fn included(&self, ctx: &Ctx) -> (BTreeMap<String, Text>, Vec<String>) {
        let mut files = BTreeMap::new();
        let mut left_out = Vec::new();
        for f in &self.files {
            // Under --check the run would make what is missing first: not
            // looked for (a stat per site).
            let missing = match ctx.mode {
                Mode::Apply => f.needs.iter().find(|p| !ctx.root.resolves(p)),
                Mode::Check => None,
            };
            match missing {
                Some(p) => left_out.push(format!(
                    "{}: not served yet ({} is missing)",
                    f.owner,
                    p.display()
                )),
                _ => {
                    files.insert(f.rel.clone(), f.content.clone());
                }
            }
        }
        (files, left_out)
    }
}

impl Task for GenerationTask {
    fn id(&self) -> TaskId {
        TaskId::NginxConfig
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn notifies(&self) -> Vec<Handler> {
        vec![Handler::ReloadNginx]
    }

    fn rolls_back_on_failure(&self) -> bool {
        true // its nginx -t is the gate of the run
    }

    fn owns(&self) -> Vec<Owned> {
        let mut owned = vec![
            Owned::thing(
                Thing::Tree {
                    path: NGINX_DIR.into(),
                },
                "nginx configuration",
            ),
            Owned::file(
                NGINX_ENTRY,
                "nginx configuration",
                generation::entry().as_bytes(),
            ),
        ];
        if self.catch_all.is_some() {
            owned.extend(crate::tasks::pair::owned(
                crate::tasks::default_server::THROWAWAY,
                "catch-all servers",
                crate::owned::Disposal::Remove,
            ));
        }
        owned
    }

    /// The renewal daemon's sandbox against what nginx opens for writing
    /// (one reading of nginx's configuration serves both).
    fn notes(&self, ctx: &Ctx) -> Vec<String> {
        match (&self.daemon_unit, ctx.live_host) {
            (Some(unit), true) => crate::tasks::daemon_sandbox::notes(&self.dump.borrow(), unit),
            _ => Vec::new(),
        }
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        let (mut files, left_out) = self.included(ctx);
        let mut changes = Vec::new();
        let needs_dump = self.catch_all.is_some() || self.daemon_unit.is_some();
        let dump = if needs_dump {
            crate::tasks::default_server::dump(ctx)?
        } else {
            String::new()
        };
        if let Some(spec) = &self.catch_all {
            let (rel, content, throwaway) =
                crate::tasks::default_server::decide(ctx, &spec.ports, spec.target, &dump)?;
            files.insert(rel, content.into());
            changes.extend(throwaway);
        }
        *self.dump.borrow_mut() = dump;
        let gen = Generation::new(files);
        let why = if left_out.is_empty() {
            "the playbook's configuration".to_string()
        } else {
            left_out.join("; ")
        };
        changes.extend(switch_changes(ctx, &gen, &why)?);
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_place_test_killed_midway_is_undone_by_recovery_and_nothing_live_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        for g in ["gen-good", "gen-untested", "gen-old"] {
            root.write_tree(&Path::new(NGINX_DIR).join(g), &[], 0o755)
                .unwrap();
        }
        // Killed between linking the candidate in and putting the old back.
        root.symlink(Path::new(paths::NGINX_PREVIOUS), Path::new("gen-good"))
            .unwrap();
        root.symlink(Path::new(NGINX_LIVE), Path::new("gen-untested"))
            .unwrap();
        collect(&root).unwrap();
        assert!(
            root.exists(&Path::new(NGINX_DIR).join("gen-good")),
            "what was live stays"
        );
        assert!(!root.exists(&Path::new(NGINX_DIR).join("gen-old")));
        assert!(restore_after_interrupted_test(&root).unwrap());
        assert_eq!(
            root.read_link(Path::new(NGINX_LIVE)).unwrap().unwrap(),
            Path::new("gen-good")
        );
        assert!(!root.exists(Path::new(paths::NGINX_PREVIOUS)));
        assert!(!restore_after_interrupted_test(&root).unwrap());
    }
}
