//! What a renewal run that found nothing to do remembers, so that the next
//! one can say so without parsing the playbook or reading a certificate:
//! the daemon's pass and a cron's `portico renew` on a host with thousands
//! of certificates cost a few system calls per certificate, not a parse
//! of each.
//!
//! The memo holds only what the full run decided from, each in a form
//! that cannot change unseen:
//! - the playbook's text and the host name its `{hostname}` stands for
//!   (a digest), and whether the run was root's (who may chown);
//! - state.json (back-offs, the CA's renewal windows) by its [`Stamp`];
//! - each ACME certificate's live link (its target) and the stamps of its
//!   pair's two files and directories and of their plain copies, and of
//!   the keys' directory: any write, rename, chmod or chown changes a
//!   stamp. They are taken before the run decides, so a change while it
//!   decides shows too;
//! - the earliest moment anything comes due: a renewal moment, the next
//!   question to the CA (ARI); and the moment the memo was written (a
//!   clock set back before it is a miss);
//! - portico's own version: another may decide otherwise.
//!
//! A change the kernel's coarse clock puts in the same tick (a few ms) as
//! the write before it keeps `ctime`; only a file of the same inode and
//! size changed twice in one tick, once by portico and once by someone
//! else, could go unseen, until the memo's moment comes.
//!
//! Any difference, and the run is the full one. Every run that may change
//! the host removes the memo first (a run killed midway leaves none), so a
//! memo on disk also says the last run that wrote ended cleanly. Only a
//! full run that ended with every certificate quiet writes one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::host::beneath::Beneath;
use crate::host::root::{RootError, Stamp};
use crate::host::Root;
use crate::paths;

/// The memo's shape; another is ignored (a full run writes this one).
pub const VERSION: u32 = 1;

/// What a renewal run with nothing to do left for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memo {
    /// [`VERSION`].
    pub version: u32,
    /// [`key`] of the run that wrote it.
    pub key: String,
    /// When it was written (Unix seconds).
    pub written_at: i64,
    /// Nothing comes due before this (Unix seconds).
    pub until: i64,
    /// state.json as the run left it (`None`: there was none).
    pub state: Option<Stamp>,
    /// What every certificate shares: the keys' plain copies' directory,
    /// and the live links' (a link replaced, added or removed changes it:
    /// links are never changed in place).
    pub shared: [Stamp; 2],
    /// Which directories [`DIRS`] were (device, inode): one swapped for
    /// another or for a link (which portico's writes refuse) is a miss.
    pub dirs: Vec<(u64, u64)>,
    /// Every ACME certificate of the playbook, in the run's order.
    pub certificates: Vec<Quiet>,
}

/// One certificate that needs nothing until [`Memo::until`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    /// Its name in the playbook.
    pub name: String,
    /// Where `live/NAME` points: its live pair.
    pub link: String,
    /// A digest of the stamps of [`files`] (a memo of thousands of
    /// certificates stays small: it is read at every run).
    pub files: String,
}

/// What a certificate's task saw when it had nothing to do (its stamps
/// taken before it read the files), and when the certificate comes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// What the memo keeps of it.
    pub quiet: Quiet,
    /// When it comes due (Unix seconds).
    pub due_at: i64,
}

/// Why a memo does not answer for this run (for the log at `-v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No memo, or one of another version or playbook or host name.
    Other,
    /// Something comes due: the full run decides what.
    Due,
    /// The clock is behind the run that wrote the memo.
    Clock,
    /// The keys' directory or a live link changed since.
    Shared,
    /// A directory of portico's is another since (or a link).
    Dirs,
    /// state.json changed since.
    State,
    /// A certificate's pair or files changed since.
    Certificate(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Other => write!(f, "no memo of a quiet run for this playbook"),
            Miss::Due => write!(f, "something may be due"),
            Miss::Clock => write!(f, "the clock is behind the last run's"),
            Miss::Shared => write!(f, "the keys' directory or a live link changed"),
            Miss::Dirs => write!(f, "a directory of portico's was replaced"),
            Miss::State => write!(f, "{} changed", paths::STATE_FILE),
            Miss::Certificate(name) => write!(f, "certificate {name} changed"),
        }
    }
}

/// What decides a renewal besides the files a memo stamps.
pub struct Inputs<'a> {
    /// The playbook's text.
    pub playbook: &'a str,
    /// The host name `{hostname}` stands for.
    pub hostname: &'a str,
    /// The run is root's: it gives files back to root.
    pub is_root: bool,
    /// node_exporter's textfile directory exists: the playbook's metrics
    /// go there by default (and a memo is only kept without metrics).
    pub metrics_dir: bool,
}

/// The digest of `inputs` and of portico's version: a memo answers only
/// for the same.
pub fn key(inputs: &Inputs<'_>) -> String {
    let flag = |b: bool| if b { b"1".as_slice() } else { b"0".as_slice() };
    crate::owned::sha256_hex_of([
        env!("CARGO_PKG_VERSION").as_bytes(),
        b"\0".as_slice(),
        inputs.playbook.as_bytes(),
        b"\0".as_slice(),
        inputs.hostname.as_bytes(),
        b"\0".as_slice(),
        flag(inputs.is_root),
        flag(inputs.metrics_dir),
    ])
}

/// What a memo stamps of `name`'s live pair `pair`: its two files, their
/// plain copies, its directory and the certificate's pairs directory;
/// each relative to [`paths::CERT_DIR`].
fn files(name: &str, pair: &str) -> [PathBuf; 6] {
    let dir = paths::pair_dir(name).join(pair);
    [
        dir.join(paths::PAIR_CERT),
        dir.join(paths::PAIR_KEY),
        paths::cert_file(name),
        paths::key_file(name),
        dir,
        paths::pair_dir(name),
    ]
    .map(|p| in_cert_dir(&p).to_path_buf())
}

/// `path`, one of portico's certificate files, relative to
/// [`paths::CERT_DIR`].
fn in_cert_dir(path: &Path) -> &Path {
    path.strip_prefix(paths::CERT_DIR)
        .expect("certificate files are in CERT_DIR")
}

/// The pair a live link's target names (its last component).
fn pair_of(link: &str) -> &str {
    link.rsplit('/').next().unwrap_or(link)
}

/// Where certificates' files are looked up: [`paths::CERT_DIR`], opened
/// once (`None` when there is none).
pub fn cert_dir(root: &Root) -> Result<Option<Beneath>, RootError> {
    Beneath::open(root, Path::new(paths::CERT_DIR))
}

/// The digest of what a memo stamps for `name` whose live link points to
/// `link`; `None` when one is gone.
pub fn fingerprint(certs: &Beneath, name: &str, link: &str) -> Result<Option<String>, RootError> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files(name, pair_of(link)) {
        let Some(s) = certs.stamp(&f)? else {
            return Ok(None);
        };
        for n in [s.dev, s.ino, s.ctime as u64, s.ctime_nsec as u64, s.size] {
            ctx.update(&n.to_le_bytes());
        }
    }
    // 128 bits of it, in hex.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = ctx.finish();
    let hex = digest.as_ref()[..16]
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect();
    Ok(Some(hex))
}

/// `name`'s live link and the digest of its files' stamps, now; `None`
/// when something is missing.
pub fn observe(root: &Root, name: &str) -> Option<Quiet> {
    let certs = cert_dir(root).ok()??;
    let link = live_link(&certs, name).ok()??;
    let files = fingerprint(&certs, name, &link).ok()??;
    Some(Quiet {
        name: name.to_string(),
        link,
        files,
    })
}

/// What every certificate shares, as [`Memo::shared`] and [`Memo::dirs`]
/// hold it.
pub type Shared = ([Stamp; 2], Vec<(u64, u64)>);

/// [`Shared`] now; `None` when something is missing.
pub fn shared(root: &Root) -> Option<Shared> {
    Some((shared_stamps(root).ok()??, dirs(root).ok()??))
}

/// The stamps of what every certificate shares: the keys' directory and
/// the live links'.
pub fn shared_stamps(root: &Root) -> Result<Option<[Stamp; 2]>, RootError> {
    let keys = root.stamp(Path::new(paths::KEY_COPIES))?;
    let live = root.stamp(Path::new(paths::LIVE_DIR))?;
    Ok(keys.zip(live).map(|(k, l)| [k, l]))
}

/// Where `live/NAME` points.
pub fn live_link(certs: &Beneath, name: &str) -> Result<Option<String>, RootError> {
    Ok(certs
        .read_link(in_cert_dir(&paths::live_link(name)))?
        .map(|t| t.to_string_lossy().into_owned()))
}

/// The directories a renewal reads and writes through, besides those
/// stamped: their identity is checked, not their stamp (state.json and
/// runs.json are written by rename into the first at every run).
const DIRS: [&str; 5] = [
    paths::STATE_DIR,
    paths::CERT_DIR,
    paths::PAIRS_DIR,
    paths::LIVE_DIR,
    paths::CERT_COPIES,
];

/// The identity (device, inode) of each of [`DIRS`], not following a
/// link; `None` when one is gone.
pub fn dirs(root: &Root) -> Result<Option<Vec<(u64, u64)>>, RootError> {
    let mut out = Vec::with_capacity(DIRS.len());
    for d in DIRS {
        match root.stamp(Path::new(d))? {
            Some(s) => out.push((s.dev, s.ino)),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The memo on disk, if any can be read.
pub fn load(root: &Root) -> Option<Memo> {
    let bytes = root.read(Path::new(paths::NOTHING_DUE)).ok()??;
    serde_json::from_slice::<Memo>(&bytes)
        .ok()
        .filter(|m| m.version == VERSION)
}

/// Writes `memo` (compact: it is read by a program, at every run).
pub fn save(root: &Root, memo: &Memo) -> Result<(), RootError> {
    let json = serde_json::to_vec(memo).expect("memo serializes");
    root.write_atomic(Path::new(paths::NOTHING_DUE), &json, 0o600)
}

/// Removes the memo: the first step of every run that may change the host.
pub fn forget(root: &Root) -> Result<(), RootError> {
    let path = Path::new(paths::NOTHING_DUE);
    // Most runs find none: no unlink, no fsync of the directory.
    if root.meta(path)?.is_none() {
        return Ok(());
    }
    root.remove(path)
}

/// Does `memo` still answer for a run with key `key` at `now`? Reads six
/// stamps per certificate, and eight more.
pub fn holds(root: &Root, memo: &Memo, key: &str, now: i64) -> Result<(), Miss> {
    if memo.key != key {
        return Err(Miss::Other);
    }
    if now < memo.written_at {
        return Err(Miss::Clock);
    }
    if now >= memo.until {
        return Err(Miss::Due);
    }
    let io = |_| Miss::Other;
    if root.stamp(Path::new(paths::STATE_FILE)).map_err(io)? != memo.state {
        return Err(Miss::State);
    }
    if dirs(root).map_err(io)?.as_ref() != Some(&memo.dirs) {
        return Err(Miss::Dirs);
    }
    if shared_stamps(root).map_err(io)? != Some(memo.shared) {
        return Err(Miss::Shared);
    }
    let Some(certs) = cert_dir(root).map_err(io)? else {
        return Err(Miss::Dirs);
    };
    // Thousands of certificates are six system calls each, and the
    // kernel answers them on every core at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = memo.certificates.len().div_ceil(cores).max(PER_THREAD);
    let mut parts = memo.certificates.chunks(part);
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|s| {
        // A thread that cannot be had (a pids limit) checks its part here.
        let others: Vec<_> = parts
            .map(|part| {
                std::thread::Builder::new()
                    .spawn_scoped(s, || unchanged(&certs, part))
                    .map_err(|_| part)
            })
            .collect();
        let mut results = vec![unchanged(&certs, first)];
        for other in others {
            results.push(match other {
                Ok(thread) => thread.join().unwrap_or(Err(Miss::Other)),
                Err(part) => unchanged(&certs, part),
            });
        }
        results.into_iter().collect()
    })
}

/// Fewer certificates than this are checked on one thread.
const PER_THREAD: usize = 512;

/// Is each of `certificates` as the memo has it: the same stamps? (Its
/// live link is the same when the live links' directory is.)
fn unchanged(certs: &Beneath, certificates: &[Quiet]) -> Result<(), Miss> {
    for c in certificates {
        let files = fingerprint(certs, &c.name, &c.link).map_err(|_| Miss::Other)?;
        if files.as_deref() != Some(c.files.as_str()) {
            return Err(Miss::Certificate(c.name.clone()));
        }
    }
    Ok(())
}

/// The report a full run would print: every certificate unchanged.
pub fn report(memo: &Memo, mode: &'static str) -> crate::report::Report {
    use crate::report::{Report, Status, TaskReport};
    use crate::task::TaskId;
    let mut report = Report {
        mode,
        ..Report::default()
    };
    for c in &memo.certificates {
        report.push(TaskReport::new(
            TaskId::Certificate(c.name.clone()),
            Status::Unchanged,
            &[],
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64) -> Stamp {
        Stamp {
            dev: 1,
            ino,
            ctime: 1_800_000_000,
            ctime_nsec: 5,
            size: 100,
        }
    }

    #[test]
    fn the_key_changes_with_every_input() {
        let inputs = |playbook, hostname, is_root, metrics_dir| Inputs {
            playbook,
            hostname,
            is_root,
            metrics_dir,
        };
        let k = key(&inputs("version = 1\n", "edge1", true, false));
        assert_eq!(k, key(&inputs("version = 1\n", "edge1", true, false)));
        for other in [
            inputs("version = 1\n ", "edge1", true, false),
            inputs("version = 1\n", "edge2", true, false),
            inputs("version = 1\n", "edge1", false, false),
            inputs("version = 1\n", "edge1", true, true),
        ] {
            assert_ne!(k, key(&other));
        }
        // The separator keeps text and host name apart.
        assert_ne!(
            key(&inputs("a", "bc", true, false)),
            key(&inputs("ab", "c", true, false))
        );
    }

    #[test]
    fn a_memo_round_trips_and_another_version_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(under(dir.path(), paths::STATE_DIR)).unwrap();
        let memo = Memo {
            version: VERSION,
            key: "k".into(),
            written_at: 5,
            until: 10,
            state: Some(stamp(7)),
            shared: [stamp(8), stamp(9)],
            dirs: vec![(1, 2)],
            certificates: vec![Quiet {
                name: "web".into(),
                link: "../pairs/web/ab12".into(),
                files: "0123456789abcdef0123456789abcdef".into(),
            }],
        };
        save(&root, &memo).unwrap();
        assert_eq!(load(&root), Some(memo.clone()));
        let other = Memo {
            version: VERSION + 1,
            ..memo
        };
        save(&root, &other).unwrap();
        assert_eq!(load(&root), None);
        forget(&root).unwrap();
        assert_eq!(load(&root), None);
        forget(&root).unwrap();
    }

    /// A tree with certificate `web`'s live pair, copies and a state file,
    /// and the memo a quiet run would leave for it.
    fn quiet_tree() -> (tempfile::TempDir, Root, Memo) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let pair = paths::pair_dir("web").join("p1");
        for d in [
            pair.as_path(),
            Path::new(paths::LIVE_DIR),
            Path::new(paths::CERT_COPIES),
            Path::new(paths::KEY_COPIES),
            Path::new(paths::STATE_DIR),
        ] {
            std::fs::create_dir_all(under(base, d)).unwrap();
        }
        // The four files; the last two are the pair's directories.
        for f in &files("web", "p1")[..4] {
            std::fs::write(under(base, Path::new(paths::CERT_DIR).join(f)), b"pem").unwrap();
        }
        std::fs::write(under(base, paths::STATE_FILE), b"{}").unwrap();
        std::os::unix::fs::symlink(&pair, under(base, paths::live_link("web"))).unwrap();
        let root = Root::new(base);
        let certs = cert_dir(&root).unwrap().unwrap();
        let link = live_link(&certs, "web").unwrap().unwrap();
        let memo = Memo {
            version: VERSION,
            key: "k".into(),
            written_at: 900,
            until: 1_000,
            state: root.stamp(Path::new(paths::STATE_FILE)).unwrap(),
            shared: shared_stamps(&root).unwrap().unwrap(),
            dirs: dirs(&root).unwrap().unwrap(),
            certificates: vec![Quiet {
                name: "web".into(),
                files: fingerprint(&certs, "web", &link).unwrap().unwrap(),
                link,
            }],
        };
        (dir, root, memo)
    }

    /// Where `path` of the tree lies under `base`.
    fn under(base: &Path, path: impl AsRef<Path>) -> PathBuf {
        base.join(path.as_ref().strip_prefix("/").unwrap())
    }

    /// Every change of what a memo stands on, on real files: each one
    /// makes it answer no more, and says why.
    #[test]
    fn a_memo_holds_until_anything_it_stands_on_changes() {
        use std::os::unix::fs::PermissionsExt;
        type Change = fn(&Path);
        let web = || Miss::Certificate("web".into());
        let cases: Vec<(&str, Change, Miss)> = vec![
            (
                "a key copy made readable by all",
                |b| {
                    let mode = std::fs::Permissions::from_mode(0o644);
                    std::fs::set_permissions(under(b, paths::key_file("web")), mode).unwrap();
                },
                web(),
            ),
            (
                "a key copy rewritten in place, same size",
                |b| std::fs::write(under(b, paths::key_file("web")), b"PEM").unwrap(),
                web(),
            ),
            (
                "a certificate copy replaced by another file",
                |b| {
                    let copy = under(b, paths::cert_file("web"));
                    std::fs::write(copy.with_extension("new"), b"pem").unwrap();
                    std::fs::rename(copy.with_extension("new"), copy).unwrap();
                },
                web(),
            ),
            (
                "the pair's certificate removed",
                |b| {
                    std::fs::remove_file(under(b, paths::pair_dir("web").join("p1/fullchain.pem")))
                        .unwrap()
                },
                web(),
            ),
            (
                "the live link pointed at another pair",
                |b| {
                    let link = under(b, paths::live_link("web"));
                    std::fs::remove_file(&link).unwrap();
                    std::os::unix::fs::symlink(paths::pair_dir("web").join("p2"), link).unwrap();
                },
                Miss::Shared,
            ),
            (
                "the pair's directory opened to all",
                |b| {
                    let mode = std::fs::Permissions::from_mode(0o711);
                    let dir = under(b, paths::pair_dir("web").join("p1"));
                    std::fs::set_permissions(dir, mode).unwrap();
                },
                web(),
            ),
            (
                "the certificate's pairs directory opened to its group",
                |b| {
                    let mode = std::fs::Permissions::from_mode(0o750);
                    std::fs::set_permissions(under(b, paths::pair_dir("web")), mode).unwrap();
                },
                web(),
            ),
            (
                "the live link pointed at the same pair name elsewhere",
                |b| {
                    let link = under(b, paths::live_link("web"));
                    std::fs::remove_file(&link).unwrap();
                    std::os::unix::fs::symlink("/tmp/elsewhere/p1", link).unwrap();
                },
                Miss::Shared,
            ),
            (
                "the keys' directory opened to all",
                |b| {
                    let mode = std::fs::Permissions::from_mode(0o711);
                    std::fs::set_permissions(under(b, paths::KEY_COPIES), mode).unwrap();
                },
                Miss::Shared,
            ),
            (
                "the state directory swapped for a link to it",
                |b| {
                    let dir = under(b, paths::STATE_DIR);
                    std::fs::rename(&dir, dir.with_extension("real")).unwrap();
                    std::os::unix::fs::symlink(dir.with_extension("real"), dir).unwrap();
                },
                Miss::Dirs,
            ),
            (
                "state.json written again, same bytes",
                |b| {
                    let state = under(b, paths::STATE_FILE);
                    std::fs::write(state.with_extension("new"), b"{}").unwrap();
                    std::fs::rename(state.with_extension("new"), state).unwrap();
                },
                Miss::State,
            ),
            (
                "state.json removed",
                |b| std::fs::remove_file(under(b, paths::STATE_FILE)).unwrap(),
                Miss::State,
            ),
        ];
        for (what, change, miss) in cases {
            let (dir, root, memo) = quiet_tree();
            assert_eq!(holds(&root, &memo, "k", 999), Ok(()), "{what}: before");
            // The kernel's ctime moves with its coarse clock (a tick of a
            // few ms): a change in the same tick as the write it follows
            // would keep it.
            std::thread::sleep(std::time::Duration::from_millis(20));
            change(dir.path());
            assert_eq!(holds(&root, &memo, "k", 999), Err(miss), "{what}");
        }
        let (_dir, root, memo) = quiet_tree();
        assert_eq!(
            holds(&root, &memo, "k", 1_000),
            Err(Miss::Due),
            "its moment came"
        );
        assert_eq!(
            holds(&root, &memo, "k", 899),
            Err(Miss::Clock),
            "a clock set back"
        );
        assert_eq!(
            holds(&root, &memo, "k2", 999),
            Err(Miss::Other),
            "another playbook"
        );
    }

    #[test]
    fn the_report_lists_every_certificate_unchanged_in_order() {
        let memo = Memo {
            version: VERSION,
            key: String::new(),
            written_at: 0,
            until: 0,
            state: None,
            shared: [stamp(9), stamp(10)],
            dirs: Vec::new(),
            certificates: ["b", "a"]
                .iter()
                .map(|n| Quiet {
                    name: (*n).into(),
                    link: "p".into(),
                    files: String::new(),
                })
                .collect(),
        };
        let r = report(&memo, "check");
        assert_eq!((r.changed, r.unchanged, r.failed), (0, 2, 0));
        assert_eq!(r.mode, "check");
        let names: Vec<_> = r.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["certificate b", "certificate a"]);
    }
}
