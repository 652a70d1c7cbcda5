//! Removing what portico made and the playbook no longer asks for, as
//! ordinary, journaled changes: a file portico can make again is removed;
//! a certificate, a key, or a file someone edited since portico wrote it
//! is moved to the archive; a link is removed; a directory goes once it is
//! empty; a firewall port portico opened is closed; the daemon's unit is
//! stopped and disabled; the include line portico added is taken out.

use std::path::{Path, PathBuf};

use crate::facts::Family;
use crate::host::systemd::ServiceOp;
use crate::manifest::Entry;
use crate::owned::{sha256_hex, Disposal, Thing};
use crate::task::{Action, After, Change, Ctx, Handler, Scope, Task, TaskError, TaskId};
use crate::tasks::file::unified_diff;
use crate::tasks::firewall::{self, Backend};

/// One thing to remove.
pub struct PruneTask {
    /// What the manifest says portico made.
    pub entry: Entry,
    /// This run's archive directory (`/var/lib/portico/archive/<time>`).
    pub archive: PathBuf,
    /// `remove --purge`: delete, never archive.
    pub purge: bool,
    /// For a directory: the paths this run prunes (they count as gone).
    pub going: Vec<PathBuf>,
    /// The distro family (where iptables rules are saved).
    pub family: Family,
    /// Why it goes, for the report.
    pub reason: &'static str,
}

/// Where `path` goes in `archive` (its full path under it, so two files
/// with one name cannot collide), and the change that makes the private
/// directory it goes into.
fn archive_place(archive: &Path, path: &Path) -> (PathBuf, Vec<Change>) {
    let to = archive.join(path.strip_prefix("/").unwrap_or(path));
    let dir = to.parent().map(|dir| {
        Change::new(
            format!("create directory {} (mode 0700)", dir.display()),
            Action::EnsureDir {
                path: dir.to_path_buf(),
                mode: 0o700,
            },
        )
    });
    (to, dir.into_iter().collect())
}

impl PruneTask {
    fn why(&self) -> String {
        format!("{}; {}", self.entry.owner, self.reason)
    }

    fn file(&self, ctx: &Ctx, path: &Path) -> Result<Vec<Change>, TaskError> {
        let Some(meta) = ctx.root.meta(path)? else {
            return Ok(Vec::new());
        };
        // Replaced by a directory or a symlink since: not portico's any more.
        if meta.is_dir || meta.is_symlink {
            return Ok(Vec::new());
        }
        let bytes = ctx.root.read(path)?;
        // Without a recorded hash nobody can say it is what portico wrote.
        let edited = match (&self.entry.sha256, &bytes) {
            (Some(want), Some(b)) => *want != sha256_hex(b),
            _ => true,
        };
        let keep = !self.purge && (self.entry.disposal == Disposal::Archive || edited);
        if !keep {
            let mut change = Change::new(
                format!("remove {} ({})", path.display(), self.why()),
                Action::Remove {
                    path: path.to_path_buf(),
                },
            );
            if let Some(b) = bytes {
                change = change.with_diff(ctx, || unified_diff(path, Some(&b), b"", meta.mode));
            }
            return Ok(vec![change]);
        }
        let (to, mut changes) = archive_place(&self.archive, path);
        let reason = if edited {
            "edited since portico wrote it"
        } else {
            "certificates and keys are archived, never deleted"
        };
        changes.push(Change::new(
            format!(
                "archive {} to {} ({}; {reason})",
                path.display(),
                to.display(),
                self.why()
            ),
            Action::Move {
                from: path.to_path_buf(),
                to,
            },
        ));
        Ok(changes)
    }

    fn link(&self, ctx: &Ctx, path: &Path) -> Result<Vec<Change>, TaskError> {
        let target = ctx.root.read_link(path)?;
        // Pointed elsewhere since: someone else's link now (in portico's
        // own directories every link is portico's: a renewal moves them).
        if self.entry.target.is_some()
            && target != self.entry.target
            && !crate::manifest::in_own_dir(path)
        {
            return Ok(Vec::new());
        }
        match ctx.root.meta(path)? {
            Some(m) if m.is_symlink => Ok(vec![Change::new(
                format!("remove link {} ({})", path.display(), self.why()),
                Action::Remove {
                    path: path.to_path_buf(),
                },
            )]),
            // Replaced by something else since: not portico's any more.
            _ => Ok(Vec::new()),
        }
    }

    fn dir(&self, ctx: &Ctx, path: &Path) -> Result<Vec<Change>, TaskError> {
        match ctx.root.meta(path)? {
            Some(m) if m.is_dir && !m.is_symlink => {}
            _ => return Ok(Vec::new()),
        }
        let left = ctx
            .root
            .list_dir(path)?
            .into_iter()
            .filter(|name| !self.going.contains(&path.join(name)))
            .count();
        if left > 0 {
            // Someone else's files live there now: it stays.
            return Ok(Vec::new());
        }
        Ok(vec![Change::new(
            format!("remove empty directory {}", path.display()),
            Action::RemoveDir {
                path: path.to_path_buf(),
            },
        )])
    }

    /// A directory portico fills whole: archived as one (key pairs), or
    /// deleted (generations, which the playbook can make again).
    fn tree(&self, ctx: &Ctx, path: &Path) -> Result<Vec<Change>, TaskError> {
        match ctx.root.meta(path)? {
            Some(m) if m.is_dir && !m.is_symlink => {}
            _ => return Ok(Vec::new()),
        }
        if self.purge || self.entry.disposal == Disposal::Remove {
            return Ok(vec![Change::new(
                format!(
                    "delete {} and everything in it ({})",
                    path.display(),
                    self.why()
                ),
                Action::RemoveTree {
                    path: path.to_path_buf(),
                },
            )]);
        }
        let (to, mut changes) = archive_place(&self.archive, path);
        changes.push(Change::new(
            format!(
                "archive {} to {} ({}; certificates and keys are archived, never deleted)",
                path.display(),
                to.display(),
                self.why()
            ),
            Action::Move {
                from: path.to_path_buf(),
                to,
            },
        ));
        Ok(changes)
    }

    fn unit(&self, ctx: &Ctx, unit: &str) -> Result<Vec<Change>, TaskError> {
        let state = ctx.systemd.state(unit)?;
        let mut changes = Vec::new();
        if state.is_active() {
            changes.push(service(ServiceOp::Stop, unit, &self.why()));
        }
        if matches!(state.file.as_str(), "enabled" | "enabled-runtime") {
            changes.push(service(ServiceOp::Disable, unit, &self.why()));
        }
        Ok(changes)
    }

    fn line(&self, ctx: &Ctx, path: &Path, line: &str) -> Result<Vec<Change>, TaskError> {
        let Some(text) = ctx.root.read_to_string(path)? else {
            return Ok(Vec::new());
        };
        if !text.lines().any(|l| l.trim() == line) {
            return Ok(Vec::new());
        }
        let comment = crate::tasks::firewall::nftables::INCLUDE_COMMENT;
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| l.trim() != line && l.trim() != comment)
            .collect();
        let mut new = kept.join("\n");
        if text.ends_with('\n') && !new.is_empty() {
            new.push('\n');
        }
        let mode = ctx.root.meta(path)?.map_or(0o644, |m| m.mode);
        let change = Change::new(
            format!(
                "take the line {line:?} out of {} ({})",
                path.display(),
                self.why()
            ),
            Action::WriteFile {
                path: path.to_path_buf(),
                content: new.clone().into_bytes(),
                mode,
            },
        )
        .with_diff(ctx, || {
            unified_diff(path, Some(text.as_bytes()), new.as_bytes(), mode)
        });
        Ok(vec![change])
    }
}

fn service(op: ServiceOp, unit: &str, why: &str) -> Change {
    Change::new(
        format!("{} {unit} ({why})", op.name()),
        Action::Service {
            op,
            unit: unit.into(),
        },
    )
}

impl Task for PruneTask {
    fn id(&self) -> TaskId {
        TaskId::Prune(self.entry.thing.clone())
    }

    fn scope(&self) -> Scope {
        match self.entry.thing {
            Thing::Port { .. } | Thing::Unit { .. } | Thing::Selinux { .. } => Scope::Host,
            _ => Scope::Files,
        }
    }

    fn notifies(&self) -> Vec<Handler> {
        match self.entry.thing.path() {
            Some(p)
                if p.starts_with(crate::paths::NGINX_CONF_DIR)
                    || p.starts_with(crate::paths::CERT_DIR) =>
            {
                vec![Handler::ReloadNginx]
            }
            _ => Vec::new(),
        }
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        match &self.entry.thing {
            Thing::File { path } => self.file(ctx, path),
            Thing::Link { path } => self.link(ctx, path),
            Thing::Dir { path } => self.dir(ctx, path),
            Thing::Tree { path } => self.tree(ctx, path),
            Thing::Unit { unit } => self.unit(ctx, unit),
            Thing::Line { path, line } => self.line(ctx, path, line),
            Thing::Port { backend, port } => match Backend::from_name(backend) {
                Some(b) => firewall::close_changes(b, *port, self.family, ctx),
                None => Ok(Vec::new()),
            },
            Thing::Selinux { setting, value } => {
                crate::tasks::selinux::undo(ctx, setting, value, &self.why())
            }
        }
    }
}

/// Some tasks, in order.
pub type Tasks = Vec<Box<dyn Task>>;

/// Must pruning `thing` happen before the gate: a file nginx includes by
/// itself (an older portico's site files and links in nginx's own
/// directories, the entry file), which a new generation would otherwise
/// meet twice. Everything else goes after the new generation is live (the
/// live one may still use it: a certificate, a generation directory).
fn before_gate(thing: &Thing) -> bool {
    matches!(thing, Thing::File { path } | Thing::Link { path }
        if path.starts_with(crate::paths::NGINX_CONF_DIR) && !path.starts_with(crate::paths::NGINX_DIR))
}

/// Among nginx's own files, the order that keeps every step a
/// configuration nginx accepts: links that enable a site first, then the
/// entry, then HTTPS servers (they use the upstreams the port-80 files
/// define), then the port-80 files, then snippets they include.
fn nginx_rank(path: &Path) -> usize {
    let name = path.to_string_lossy();
    if path == Path::new(crate::paths::NGINX_ENTRY) {
        1
    } else if name.ends_with(".https.conf") {
        2
    } else if name.ends_with(".http.conf") || name.ends_with("default-server.conf") {
        3
    } else {
        4
    }
}

/// The prune tasks for `unwanted`, split around the `nginx -t` gate: what
/// nginx reads goes before it (a rejection rolls it back); the rest
/// (firewall ports, units, other files, directories) only after it passed,
/// so a rejected playbook never closes a port or stops the daemon. In
/// order: units stop before their files go, include lines before the
/// files they include, links before the files they point to, files before
/// their directories (deepest first).
pub fn tasks(
    unwanted: Vec<Entry>,
    archive: &Path,
    purge: bool,
    family: Family,
    reason: &'static str,
    gate: &TaskId,
) -> (Tasks, Tasks) {
    let rank = |t: &Thing| match t {
        Thing::Unit { .. } => (0, 0),
        Thing::Port { .. } => (1, 0),
        Thing::Selinux { .. } => (1, 1),
        Thing::Line { .. } => (2, 0),
        Thing::Link { .. } => (3, 0),
        Thing::File { path } => (4, nginx_rank(path)),
        Thing::Tree { .. } => (5, 0),
        // Deepest first.
        Thing::Dir { path } => (6, usize::MAX - path.components().count()),
    };
    let mut unwanted = unwanted;
    unwanted.sort_by_key(|e| (rank(&e.thing), e.thing.clone()));
    let going: Vec<PathBuf> = unwanted
        .iter()
        .filter_map(|e| e.thing.path().map(Path::to_path_buf))
        .collect();
    let units: Vec<TaskId> = unwanted
        .iter()
        .filter(|e| matches!(e.thing, Thing::Unit { .. }))
        .map(|e| TaskId::Prune(e.thing.clone()))
        .collect();
    let lines: Vec<TaskId> = unwanted
        .iter()
        .filter(|e| matches!(e.thing, Thing::Line { .. }))
        .map(|e| TaskId::Prune(e.thing.clone()))
        .collect();
    let (mut before, mut after_gate) = (Vec::new(), Vec::new());
    for entry in unwanted {
        let mut after = Vec::new();
        match &entry.thing {
            // A unit's file goes only once the unit is stopped and disabled.
            Thing::File { path } if path.starts_with(crate::paths::SYSTEMD_UNIT_DIR) => {
                after.extend(units.clone())
            }
            // A file another one includes goes only once the include has.
            Thing::File { path } if path.starts_with(crate::paths::NFTABLES_D) => {
                after.extend(lines.clone())
            }
            _ => {}
        }
        let first = before_gate(&entry.thing);
        if !first {
            after.push(gate.clone());
        }
        let task = After::new(
            PruneTask {
                entry,
                archive: archive.to_path_buf(),
                purge,
                going: going.clone(),
                family,
                reason,
            },
            after,
        ) as Box<dyn Task>;
        if first {
            before.push(task);
        } else {
            after_gate.push(task);
        }
    }
    (before, after_gate)
}

/// `remove --purge`: portico's own directories, deleted for good once
/// everything else is gone and nginx accepted the result.
pub struct PurgeTask {
    /// The directories.
    pub dirs: Vec<PathBuf>,
}

impl Task for PurgeTask {
    fn id(&self) -> TaskId {
        TaskId::Purge
    }

    /// What stays in /etc/portico: files portico did not write.
    fn notes(&self, ctx: &Ctx) -> Vec<String> {
        let dir = Path::new(crate::paths::CONFIG_DIR);
        let left = ctx.root.list_dir(dir).unwrap_or_default();
        if left.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "left in {}: {} (not written by portico; remove them yourself if they should go)",
            dir.display(),
            left.join(", ")
        )]
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        Ok(self
            .dirs
            .iter()
            .filter(|d| ctx.root.exists(d))
            // An emptied mount point is as gone as it can be.
            .filter(|d| {
                !(ctx.root.is_mount_point(d) && ctx.root.list_dir(d).is_ok_and(|l| l.is_empty()))
            })
            .map(|d| {
                Change::new(
                    format!("delete {} and everything in it", d.display()),
                    Action::RemoveTree { path: d.clone() },
                )
            })
            .collect())
    }
}

/// `apply --adopt`: a file (or link) portico did not write, moved into the
/// archive before portico takes the path over.
pub struct AdoptTask {
    /// The file.
    pub path: PathBuf,
    /// This run's archive directory.
    pub archive: PathBuf,
}

impl Task for AdoptTask {
    fn id(&self) -> TaskId {
        TaskId::Adopt(self.path.clone())
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn check(&self, ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        // The file, or a link as a link: moved aside whole, so portico
        // then creates its own at the path.
        if !ctx.root.exists(&self.path) {
            return Ok(Vec::new());
        }
        let (to, mut changes) = archive_place(&self.archive, &self.path);
        changes.push(Change::new(
            format!(
                "move {} (not written by portico; taken over with --adopt) to {}",
                self.path.display(),
                to.display()
            ),
            Action::Move {
                from: self.path.clone(),
                to,
            },
        ));
        Ok(changes)
    }
}
