//! The manifest: what portico made on this host, in
//! `/var/lib/portico/managed.json`. Each entry is a thing (file, link,
//! directory, firewall rule, unit, line), its hash when it is a file, and
//! the playbook object it belongs to. A run compares it with what the
//! playbook asks for: what is no longer asked for is pruned, and a file
//! portico wants to write that is neither in it nor recognisably
//! portico's is refused (unless adopted).
//!
//! The logic here is pure over the [`Root`] seam; the engine carries out
//! what it decides.

use crate::paths;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::host::root::RootError;
use crate::host::Root;
use crate::owned::{sha256_hex, Disposal, Owned, Thing};
use crate::report::{Report, Status};
use crate::task::TaskId;

/// This run's archive directory: the time and this process (two runs in
/// one second, one of them killed, never share one), and a number where
/// that is taken already: PIDs repeat after a reboot, and a container
/// that reboots in under a second runs the same commands with the same
/// PIDs in the same second. Runs that archive hold the host's lock, so
/// none takes the name between the look and the use.
pub fn archive_for_run(root: &Root, now: i64) -> PathBuf {
    let base = PathBuf::from(paths::ARCHIVE_DIR).join(format!(
        "{}-{}",
        crate::when::stamp(now),
        crate::host::pid()
    ));
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => PathBuf::from(format!("{}-{n}", base.display())),
        })
        .find(|dir| !root.exists(dir))
        .expect("some number is free")
}

/// The manifest format this portico writes.
const VERSION: u32 = 1;

/// Why the manifest cannot be used.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// Reading or writing it failed.
    #[error(transparent)]
    Fs(#[from] RootError),
    /// It is not a manifest this portico understands.
    #[error(
        "{path}: {0}; portico cannot tell what it made without it. Restore it from a backup, or \
         move it aside (the next apply then takes over only files that carry portico's header)",
        path = paths::MANIFEST
    )]
    Unreadable(String),
}

/// One thing portico made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What it is.
    #[serde(flatten)]
    pub thing: Thing,
    /// The playbook object it belongs to (`site api`, `certificate web`).
    pub owner: String,
    /// What pruning does with it.
    #[serde(default, skip_serializing_if = "is_remove")]
    pub disposal: Disposal,
    /// Files: the SHA-256 of the bytes portico left there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Links: where portico pointed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PathBuf>,
}

fn is_remove(d: &Disposal) -> bool {
    *d == Disposal::Remove
}

/// Everything portico made on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format.
    pub version: u32,
    /// The things, sorted.
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// The manifest on this host; `None` when there is none yet.
    pub fn load(root: &Root) -> Result<Option<Manifest>, ManifestError> {
        let Some(bytes) = root.read(Path::new(paths::MANIFEST))? else {
            return Ok(None);
        };
        let mut m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ManifestError::Unreadable(format!("not valid JSON: {e}")))?;
        drop(bytes);
        // 40,000 entries at 10,000 sites: the room doubling left goes.
        m.entries.shrink_to_fit();
        if m.version != VERSION {
            return Err(ManifestError::Unreadable(format!(
                "format version {} (this portico reads {VERSION})",
                m.version
            )));
        }
        for (i, e) in m.entries.iter().enumerate() {
            if let Some(why) = entry_problem(&e.thing).or_else(|| owner_problem(e)) {
                return Err(ManifestError::Unreadable(format!(
                    "entries[{i}] ({}): {why}",
                    e.thing
                )));
            }
        }
        Ok(Some(m))
    }

    /// Writes it atomically (0600: it maps the host's TLS layout).
    pub fn save(&self, root: &Root) -> Result<(), ManifestError> {
        root.create_dir_all(Path::new(paths::STATE_DIR), 0o755)?;
        // Streamed: at 10,000 sites the text is megabytes, beside the old
        // manifest and the new one.
        root.write_atomic_streamed(Path::new(paths::MANIFEST), 0o600, &mut |file| {
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut out, self)?;
            std::io::Write::write_all(&mut out, b"\n")?;
            std::io::Write::flush(&mut out)
        })?;
        Ok(())
    }

    /// The entry for `thing`, if portico made it.
    pub fn get(&self, thing: &Thing) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.thing == thing)
    }

    /// The entries sorted by thing, one for each (the last given wins).
    /// Sorted in place: a map keyed by a copy of each thing held 40,000
    /// more paths at 10,000 sites, beside the old manifest and the new.
    fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Manifest {
        let mut entries: Vec<Entry> = entries.into_iter().collect();
        // The last entry of each thing is marked, looking from the end, and
        // the others dropped: then no two are equal, and an unstable sort
        // (in place; a stable one takes a copy's worth of scratch) is exact.
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        let mut last = vec![false; entries.len()];
        for (i, e) in entries.iter().enumerate().rev() {
            last[i] = seen.insert(&e.thing);
        }
        drop(seen);
        let mut i = 0;
        entries.retain(|_| {
            i += 1;
            last[i - 1]
        });
        entries.sort_unstable_by(|a, b| a.thing.cmp(&b.thing));
        entries.shrink_to_fit();
        Manifest {
            version: VERSION,
            entries,
        }
    }
}

/// The first line of every configuration file portico writes (and of
/// the renewal daemon's unit, which is shipped as it is).
fn has_header(bytes: &[u8]) -> bool {
    let unit_first_line = crate::tasks::daemon_unit::SHIPPED
        .lines()
        .next()
        .unwrap_or("#");
    bytes.starts_with(crate::nginx::render::HEADER.as_bytes())
        || bytes.starts_with(unit_first_line.as_bytes())
}

/// Where portico ever writes: a manifest naming anything else was not
/// written by portico, and pruning it could delete or stop anything.
const WRITES_UNDER: &[&str] = &[
    paths::NGINX_CONF_DIR,
    paths::CERT_DIR,
    paths::CONFIG_DIR,
    paths::STATE_DIR,
    paths::NFTABLES_BOOT_FILE,
    paths::DAEMON_UNIT,
];

/// Why a manifest entry cannot be one portico wrote, if it cannot.
fn entry_problem(thing: &Thing) -> Option<&'static str> {
    let clean = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| !matches!(c, std::path::Component::ParentDir))
    };
    match thing {
        Thing::File { path } | Thing::Link { path } | Thing::Tree { path } => {
            let ok = clean(path) && WRITES_UNDER.iter().any(|w| path.starts_with(w));
            // The metrics file goes where node_exporter reads: anywhere a
            // playbook's `[metrics] textfile` may name, and nothing else.
            let metrics = matches!(thing, Thing::File { .. })
                && path
                    .to_str()
                    .is_some_and(|p| crate::playbook::names::metrics_file_problem(p).is_none());
            (!ok && !metrics).then_some("not a path portico writes")
        }
        // Directories portico creates on the way to its files.
        Thing::Dir { path } => {
            let ok = clean(path)
                && path.components().count() > 2
                && WRITES_UNDER
                    .iter()
                    .any(|w| Path::new(w).starts_with(path) || path.starts_with(w));
            (!ok).then_some("not a directory portico creates")
        }
        Thing::Unit { unit } => {
            (unit != "portico.service").then_some("portico only manages portico.service")
        }
        Thing::Line { path, line } => (path != Path::new(paths::NFTABLES_CONF)
            || line != crate::tasks::firewall::nftables::INCLUDE_LINE)
            .then_some("not the include line portico adds"),
        Thing::Port { backend, .. } => crate::tasks::firewall::Backend::from_name(backend)
            .is_none()
            .then_some("not a firewall portico uses"),
        Thing::Selinux { setting, value } => (!crate::tasks::selinux::may_own(setting, value))
            .then_some("not an SELinux setting portico makes"),
    }
}

/// A path that only the metrics file may have, listed for another owner.
fn owner_problem(e: &Entry) -> Option<&'static str> {
    let Thing::File { path } = &e.thing else {
        return None;
    };
    let ours = WRITES_UNDER.iter().any(|w| path.starts_with(w));
    (!ours && e.owner != crate::owned::METRICS_OWNER).then_some("not a path portico writes")
}

/// Things that live in files (and are put back by a rollback).
fn is_file_thing(thing: &Thing) -> bool {
    matches!(
        thing,
        Thing::File { .. }
            | Thing::Link { .. }
            | Thing::Dir { .. }
            | Thing::Tree { .. }
            | Thing::Line { .. }
    )
}

/// Records a file portico writes outside a plan (the metrics file) with
/// the bytes it is about to hold, owned by `owner`: recorded before it is
/// written, so a run killed in between leaves a file the next run knows is
/// portico's to replace.
pub fn record_file(
    root: &Root,
    path: &Path,
    owner: &str,
    bytes: &[u8],
) -> Result<(), ManifestError> {
    let Some(mut m) = Manifest::load(root)? else {
        return Ok(());
    };
    let entry = Entry {
        thing: Thing::file(path),
        owner: owner.to_string(),
        disposal: Disposal::Remove,
        sha256: Some(sha256_hex(bytes)),
        target: None,
    };
    if m.get(&entry.thing) == Some(&entry) {
        return Ok(());
    }
    m.entries.retain(|e| e.thing != entry.thing);
    m.entries.push(entry);
    Manifest::from_entries(m.entries).save(root)
}

/// portico's own directories: whatever is in them was put there by portico.
const OWN_DIRS: &[&str] = &[
    paths::CONFIG_DIR,
    paths::CERT_DIR,
    paths::NGINX_DIR,
    paths::STATE_DIR,
];

/// Is `path` in one of portico's own directories (where everything is
/// portico's)?
pub fn in_own_dir(path: &Path) -> bool {
    OWN_DIRS.iter().any(|d| path.starts_with(d))
}

/// The nginx directories a pre-manifest portico wrote into.
const NGINX_DIRS: &[&str] = &[
    paths::NGINX_CONF_D,
    paths::NGINX_SITES_AVAILABLE,
    paths::NGINX_SITES_ENABLED,
];

/// What a portico from before the manifest left in nginx's directories:
/// files carrying its header, and links to them. A host upgraded from it
/// starts from this, so a site dropped from the playbook is still pruned.
pub fn legacy(root: &Root) -> Result<Manifest, ManifestError> {
    let mut entries = Vec::new();
    for dir in NGINX_DIRS {
        for name in root.list_dir(Path::new(dir))? {
            let path = Path::new(dir).join(&name);
            if let Some(target) = root.read_link(&path)? {
                let resolved = if target.is_absolute() {
                    target.clone()
                } else {
                    Path::new(dir).join(&target)
                };
                let ours = root
                    .read(&resolved)
                    .ok()
                    .flatten()
                    .is_some_and(|b| has_header(&b));
                if ours {
                    entries.push(Entry {
                        thing: Thing::Link { path },
                        owner: "portico before the manifest".into(),
                        disposal: Disposal::Remove,
                        sha256: None,
                        target: Some(target),
                    });
                }
                continue;
            }
            if root.meta(&path)?.is_some_and(|m| m.is_dir) {
                continue;
            }
            if let Some(bytes) = root.read(&path)? {
                // A header alone does not prove portico wrote the rest (a
                // copy someone edited keeps it): archived, never deleted.
                if has_header(&bytes) {
                    entries.push(Entry {
                        thing: Thing::file(path),
                        owner: "portico before the manifest".into(),
                        disposal: Disposal::Archive,
                        sha256: None,
                        target: None,
                    });
                }
            }
        }
    }
    Ok(Manifest::from_entries(entries))
}

/// A path portico wants that holds something it did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The path.
    pub path: PathBuf,
    /// The playbook object that wants it.
    pub owner: String,
}

impl Conflict {
    /// One line of the refusal: the path, and who wants it.
    pub fn describe(&self) -> String {
        let who = if self.owner == crate::owned::METRICS_OWNER {
            "the metrics file ([metrics] textfile; `textfile = \"\"` writes none)".to_string()
        } else {
            self.owner.clone()
        };
        format!("{}: exists, and {who} wants this path", self.path.display())
    }
}

/// The wanted files and links that exist, are not in the manifest, and
/// are not recognisably portico's: already what portico would write, a
/// link already pointing where portico would point it, or (on a host with
/// no manifest yet) a file carrying portico's header or in its own
/// directories.
pub fn conflicts<'w>(
    root: &Root,
    manifest: Option<&Manifest>,
    wanted: impl Iterator<Item = &'w Owned>,
) -> Result<Vec<Conflict>, ManifestError> {
    let mut out = Vec::new();
    // Paths the manifest has, whatever they were then (a file that is now
    // wanted as a link: the layout of a newer portico).
    let recorded: std::collections::HashSet<&Path> = manifest
        .map(|m| m.entries.iter().filter_map(|e| e.thing.path()).collect())
        .unwrap_or_default();
    for w in wanted {
        if w.thing.path().is_some_and(|p| recorded.contains(p)) {
            continue;
        }
        let ours = match &w.thing {
            Thing::File { path } => match root.meta(path)? {
                None => continue,
                Some(m) if m.is_symlink || m.is_dir => false,
                Some(_) => {
                    let bytes = root.read(path)?.unwrap_or_default();
                    // portico's own directories are root's and portico's: a
                    // file there it did not record is one a crash kept it
                    // from recording.
                    w.desired.as_deref() == Some(sha256_hex(&bytes).as_str())
                        || in_own_dir(path)
                        || (manifest.is_none() && has_header(&bytes))
                }
            },
            Thing::Link { path } => match root.meta(path)? {
                None => continue,
                Some(_) if in_own_dir(path) => true,
                Some(m) if !m.is_symlink => false,
                Some(_) => root.read_link(path)?.is_some_and(|t| Some(t) == w.target),
            },
            _ => continue,
        };
        if !ours {
            out.push(Conflict {
                path: w.thing.path().map(Path::to_path_buf).unwrap_or_default(),
                owner: w.owner.clone(),
            });
        }
    }
    Ok(out)
}

/// The entries the wanted things no longer cover, to be pruned: the
/// manifest's things minus the wanted ones. Directories only go when no
/// wanted path lives under them; the state directory stays (the manifest
/// lives there).
pub fn unwanted<'w>(
    manifest: &Manifest,
    wanted: impl Iterator<Item = &'w Owned> + Clone,
) -> Vec<Entry> {
    // Hashed: tens of thousands of things, looked up once per entry.
    let things: std::collections::HashSet<&Thing> = wanted.clone().map(|w| &w.thing).collect();
    let paths: BTreeSet<&Path> = wanted.filter_map(|w| w.thing.path()).collect();
    // What lies under `dir` sorts right after it (paths compare by
    // component): one look, not a scan of every wanted path.
    let holds_wanted = |dir: &Path| {
        paths
            .range::<Path, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|p| p.starts_with(dir))
    };
    manifest
        .entries
        .iter()
        .filter(|e| !things.contains(&e.thing))
        // Still wanted as something else (a file now a link): the task
        // that wants it replaces it; pruning would remove what it made.
        .filter(|e| match &e.thing {
            Thing::File { path } | Thing::Link { path } | Thing::Tree { path } => {
                !paths.contains(&path.as_path())
            }
            _ => true,
        })
        .filter(|e| match &e.thing {
            Thing::Dir { path } => {
                !holds_wanted(path) && !Path::new(paths::STATE_DIR).starts_with(path)
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// What the next manifest holds, observed after a run:
///
/// - a wanted file or link whose task succeeded, as it is now on disk;
///   one whose task failed or was skipped keeps its old entry (if any);
/// - a firewall port or unit: claimed by a change this run, or kept from
///   the old manifest while still wanted;
/// - an unwanted entry whose prune succeeded is gone, any other stays;
/// - directories: the old ones that still exist, and the ones this run
///   created.
pub fn after_run(
    root: &Root,
    old: &Manifest,
    wanted: &[(TaskId, Owned)],
    pruned: &[(TaskId, Entry)],
    report: &Report,
) -> Result<Manifest, ManifestError> {
    // Looked up once per wanted thing: indexed, not scanned (thousands of
    // sites own tens of thousands of things).
    let statuses: std::collections::HashMap<&TaskId, Status> = report
        .tasks
        .iter()
        .rev() // the first report of a task wins, as a scan would find it
        .filter_map(|t| Some((t.id.as_ref()?, t.status)))
        .collect();
    let status = |id: &TaskId| statuses.get(id).copied();
    let old_entries: std::collections::HashMap<&Thing, &Entry> =
        old.entries.iter().map(|e| (&e.thing, e)).collect();
    let succeeded = |id: &TaskId| matches!(status(id), Some(Status::Changed | Status::Unchanged));
    // After a rollback the files are as they were before the run: every
    // file, link and line keeps its old entry, and no file prune happened.
    let on_disk =
        |id: &TaskId, thing: &Thing| succeeded(id) && !(report.rolled_back && is_file_thing(thing));
    let claimed: BTreeSet<&Thing> = report.tasks.iter().flat_map(|t| &t.claims).collect();
    let (kept, dirs) = (
        kept_old(old, wanted, pruned),
        dirs_after_run(root, old, wanted, report)?,
    );
    // Room for all at once: grown by doubling, 40,000 entries would hold
    // half again as much, and twice that while they move.
    let mut entries: Vec<Entry> =
        Vec::with_capacity(wanted.len() + pruned.len() + kept.len() + dirs.len());
    for (id, w) in wanted {
        let old_entry = old_entries.get(&w.thing).map(|e| (*e).clone());
        let entry = match &w.thing {
            Thing::File { .. } | Thing::Link { .. } | Thing::Tree { .. }
                if on_disk(id, &w.thing) =>
            {
                as_found(root, w)?.or(old_entry)
            }
            Thing::Port { .. } | Thing::Line { .. } | Thing::Selinux { .. }
                if claimed.contains(&w.thing) =>
            {
                Some(fresh(w, None, None))
            }
            Thing::Unit { .. } if succeeded(id) => Some(fresh(w, None, None)),
            _ => old_entry,
        };
        entries.extend(entry);
    }
    for (id, e) in pruned {
        if !on_disk(id, &e.thing) {
            entries.push(e.clone());
        }
    }
    entries.extend(kept);
    entries.extend(dirs);
    Ok(Manifest::from_entries(entries))
}

/// Old entries neither wanted nor pruned in this run (a prune the run did
/// not plan, say under --root): still portico's. Directories aside (see
/// [`dirs_after_run`]).
fn kept_old(old: &Manifest, wanted: &[(TaskId, Owned)], pruned: &[(TaskId, Entry)]) -> Vec<Entry> {
    let handled: BTreeSet<&Thing> = wanted
        .iter()
        .map(|(_, w)| &w.thing)
        .chain(pruned.iter().map(|(_, e)| &e.thing))
        .collect();
    old.entries
        .iter()
        .filter(|e| !handled.contains(&e.thing) && !matches!(e.thing, Thing::Dir { .. }))
        .cloned()
        .collect()
}

/// A wanted thing's entry as made now.
fn fresh(w: &Owned, sha256: Option<String>, target: Option<PathBuf>) -> Entry {
    Entry {
        thing: w.thing.clone(),
        owner: w.owner.clone(),
        disposal: w.disposal,
        sha256,
        target,
    }
}

/// A wanted file, link or tree as it is on disk (its hash, its target),
/// if it is there as that kind of thing.
fn as_found(root: &Root, w: &Owned) -> Result<Option<Entry>, ManifestError> {
    Ok(match &w.thing {
        Thing::File { path } => root
            .read_plain(path)?
            .map(|(bytes, _)| fresh(w, Some(sha256_hex(&bytes)), None)),
        Thing::Link { path } => root
            .read_link(path)?
            .map(|target| fresh(w, None, Some(target))),
        Thing::Tree { path } => match root.meta(path)? {
            Some(m) if m.is_dir && !m.is_symlink => Some(fresh(w, None, None)),
            _ => None,
        },
        _ => None,
    })
}

/// The directories portico owns after the run: the old ones that still
/// exist, and the ones this run created.
fn dirs_after_run(
    root: &Root,
    old: &Manifest,
    wanted: &[(TaskId, Owned)],
    report: &Report,
) -> Result<Vec<Entry>, ManifestError> {
    let dirs = old
        .entries
        .iter()
        .filter_map(|e| match &e.thing {
            Thing::Dir { path } => Some(path.clone()),
            _ => None,
        })
        .chain(report.created_dirs.iter().cloned())
        // The state directory and what is in it (CAs, the ACME account, the
        // archive) outlive any playbook; only `remove --purge` deletes them.
        .filter(|p| !p.starts_with(paths::STATE_DIR) && !Path::new(paths::STATE_DIR).starts_with(p))
        // Only what a manifest may name: under an empty --root portico also
        // creates /etc and /var, which are never its to remove (and a
        // manifest naming them is refused when read back).
        .filter(|p| entry_problem(&Thing::Dir { path: p.clone() }).is_none())
        // A directory that is a tree portico owns whole is recorded as that.
        .filter(|p| {
            !wanted
                .iter()
                .any(|(_, w)| matches!(&w.thing, Thing::Tree { path } if path == p))
        })
        .collect::<BTreeSet<PathBuf>>();
    let mut entries = Vec::new();
    for path in dirs {
        if root.meta(&path)?.is_some_and(|m| m.is_dir && !m.is_symlink) {
            entries.push(Entry {
                thing: Thing::Dir { path },
                owner: "portico".into(),
                disposal: Disposal::Remove,
                sha256: None,
                target: None,
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_directory_already_there_is_never_shared() {
        // A container rebooted in under a second: the same PID, the same
        // second, an archive from the run before the reboot.
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let first = archive_for_run(&root, 1_800_000_000);
        root.create_dir_all(&first.join("etc/ssl/portico/pairs/c"), 0o700)
            .unwrap();
        let second = archive_for_run(&root, 1_800_000_000);
        assert_ne!(first, second);
        assert_eq!(second, PathBuf::from(format!("{}-2", first.display())));
        root.create_dir_all(&second, 0o700).unwrap();
        assert_eq!(
            archive_for_run(&root, 1_800_000_000),
            PathBuf::from(format!("{}-3", first.display()))
        );
    }

    fn entry(thing: Thing) -> Entry {
        Entry {
            thing,
            owner: "site a".into(),
            disposal: Disposal::Remove,
            sha256: None,
            target: None,
        }
    }

    #[test]
    fn one_entry_for_each_thing_sorted_and_the_last_given_wins() {
        let (a, b) = (Thing::file("/etc/a"), Thing::file("/etc/b"));
        let m = Manifest::from_entries([
            entry(b.clone()),
            Entry {
                owner: "site first".into(),
                ..entry(a.clone())
            },
            Entry {
                owner: "site last".into(),
                ..entry(a.clone())
            },
        ]);
        let got: Vec<(&Thing, &str)> = m
            .entries
            .iter()
            .map(|e| (&e.thing, e.owner.as_str()))
            .collect();
        assert_eq!(got, [(&a, "site last"), (&b, "site a")]);
    }

    #[test]
    fn entries_serialize_flat_and_round_trip() {
        let m = Manifest::from_entries([
            Entry {
                sha256: Some("ab".into()),
                ..entry(Thing::file("/etc/nginx/conf.d/a.conf"))
            },
            entry(Thing::Port {
                backend: "ufw".into(),
                port: 443,
            }),
        ]);
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.contains(r#"{"kind":"file","path":"/etc/nginx/conf.d/a.conf","owner":"site a","sha256":"ab"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }

    #[test]
    fn unwanted_keeps_directories_that_still_hold_wanted_things() {
        let m = Manifest::from_entries([
            entry(Thing::file("/etc/nginx/sites-available/old.conf")),
            entry(Thing::file("/etc/ssl/portico/certs/web.crt")),
            entry(Thing::Dir {
                path: "/etc/ssl/portico/certs".into(),
            }),
            entry(Thing::Dir {
                path: "/etc/portico".into(),
            }),
            entry(Thing::Dir {
                path: paths::STATE_DIR.into(),
            }),
        ]);
        let wanted = [Owned::secret(
            "/etc/ssl/portico/certs/web.crt",
            "certificate web",
        )];
        let gone: Vec<Thing> = unwanted(&m, wanted.iter())
            .into_iter()
            .map(|e| e.thing)
            .collect();
        assert_eq!(
            gone,
            [
                Thing::file("/etc/nginx/sites-available/old.conf"),
                Thing::Dir {
                    path: "/etc/portico".into()
                },
            ]
        );
    }

    #[test]
    fn a_hand_written_file_conflicts_and_one_portico_would_write_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let conf = Path::new("/etc/nginx/conf.d/api.conf");
        root.create_dir_all(conf.parent().unwrap(), 0o755).unwrap();
        root.write_atomic(conf, b"server { listen 80; }\n", 0o644)
            .unwrap();
        let wanted = [Owned::file(conf, "site api", b"# rendered\n")];
        let empty = Manifest::default();
        assert_eq!(
            conflicts(&root, Some(&empty), wanted.iter()).unwrap(),
            [Conflict {
                path: conf.into(),
                owner: "site api".into()
            }]
        );
        // What portico would write anyway is portico's to take.
        root.write_atomic(conf, b"# rendered\n", 0o644).unwrap();
        assert!(conflicts(&root, Some(&empty), wanted.iter())
            .unwrap()
            .is_empty());
        // In the manifest: portico's, whatever it holds now.
        root.write_atomic(conf, b"edited\n", 0o644).unwrap();
        let m = Manifest::from_entries([entry(Thing::file(conf))]);
        assert!(conflicts(&root, Some(&m), wanted.iter())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn without_a_manifest_files_with_portico_s_header_are_portico_s() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let conf = Path::new("/etc/nginx/conf.d/api.conf");
        root.create_dir_all(conf.parent().unwrap(), 0o755).unwrap();
        let old = format!("{}server {{}}\n", crate::nginx::render::HEADER);
        root.write_atomic(conf, old.as_bytes(), 0o644).unwrap();
        let wanted = [Owned::file(conf, "site api", b"new\n")];
        assert!(conflicts(&root, None, wanted.iter()).unwrap().is_empty());
        // With a manifest, the header alone is not enough.
        assert_eq!(
            conflicts(&root, Some(&Manifest::default()), wanted.iter())
                .unwrap()
                .len(),
            1
        );
        let seeded = legacy(&root).unwrap();
        assert_eq!(seeded.entries.len(), 1);
        assert_eq!(seeded.entries[0].thing, Thing::file(conf));
    }
}
