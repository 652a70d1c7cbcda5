//! A renewal run with nothing due on a settled host takes the short way
//! (src/nothing_due.rs: no playbook parse, no certificate read), and says
//! exactly what the full run says; anything the full run would decide
//! differently on makes the next run the full one again.
//!
//! Driven through the binary on the Debian fixture tree with `--root`: ACME
//! certificates carried over from the plain files of an older portico, the
//! CA on a port nothing listens on (nothing is due, so none is asked for an
//! order; its renewal information is asked for and, unanswered, asked again
//! within the hour).

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::scale::{acme_certificates, playbook, tree};

/// The log line of a run that took the short way.
const SHORT: &str = "nothing due before";
/// The log line of a run that had a memo and could not use it.
const FULL: &str = "a full renewal run:";

struct Host {
    dir: tempfile::TempDir,
    playbook: PathBuf,
}

impl Host {
    /// Three ACME certificates, renewed until a run leaves a memo: the
    /// first lays the files out as pairs, the second gives the keys and
    /// their directory their modes, the third finds nothing to do. (A run
    /// that changed a directory every certificate shares leaves none: it
    /// decided before its own change.)
    fn settled() -> Host {
        let dir = tree();
        acme_certificates(dir.path(), 3);
        let playbook = dir.path().join("acme.toml");
        std::fs::write(&playbook, support::scale::playbook(3, "acme")).unwrap();
        let host = Host { dir, playbook };
        host.settle();
        host
    }

    /// Renews until a run leaves a memo, at most three times.
    fn settle(&self) {
        for _ in 0..3 {
            let (out, _) = self.renew(&[]);
            assert!(out.status.success(), "{}", stderr(&out));
            if self.memo().exists() {
                return;
            }
        }
        panic!("three full runs and no memo");
    }

    fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p.as_ref().strip_prefix("/").unwrap())
    }

    fn memo(&self) -> PathBuf {
        self.path(portico::paths::NOTHING_DUE)
    }

    /// `portico renew --json ARGS --root TREE PLAYBOOK`, logging at info.
    fn renew(&self, args: &[&str]) -> (Output, Value) {
        let out = std::process::Command::new(support::bin::exe())
            .env("PORTICO_LOG", "portico=info")
            .arg("renew")
            .arg("--json")
            .args(args)
            .arg("--root")
            .arg(self.dir.path())
            .arg(&self.playbook)
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a report says, without what differs between any two runs.
fn said(report: &Value) -> Value {
    let mut r = report.clone();
    r.as_object_mut().unwrap().remove("warnings");
    r
}

#[test]
fn a_settled_host_takes_the_short_way_and_says_what_the_full_run_says() {
    let host = Host::settled();
    // The full run's report, with the memo out of the way.
    std::fs::rename(host.memo(), host.memo().with_extension("aside")).unwrap();
    let (out, full) = host.renew(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(SHORT), "{}", stderr(&out));
    let (out, short) = host.renew(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(SHORT), "{}", stderr(&out));
    assert_eq!(said(&short), said(&full));
    assert_eq!(short["unchanged"], 3, "{short:#}");
    // --check, too: the same answer, nothing written.
    let (out, check) = host.renew(&["--check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(SHORT), "{}", stderr(&out));
    assert_eq!(check["mode"], "check");
    assert_eq!(check["tasks"], full["tasks"]);
}

/// Each change a full run would decide on, made between two runs: the
/// next run is the full one (and does what the full one does), and the
/// one after it is short again.
#[test]
fn any_change_it_stands_on_brings_the_full_run_back() {
    type Change = fn(&Host);
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "the playbook edited (a comment)",
            |h| {
                let mut text = std::fs::read_to_string(&h.playbook).unwrap();
                text.push_str("# edited\n");
                std::fs::write(&h.playbook, text).unwrap();
            },
            "no memo of a quiet run for this playbook",
        ),
        (
            "a key copy made readable by all",
            |h| {
                use std::os::unix::fs::PermissionsExt;
                let key = h.path(portico::paths::key_file("c1"));
                std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
            },
            "certificate c1 changed",
        ),
        (
            "a certificate copy overwritten",
            |h| {
                let copy = h.path(portico::paths::cert_file("c2"));
                std::fs::write(copy, "not a certificate\n").unwrap();
            },
            "certificate c2 changed",
        ),
        (
            "the live link removed",
            |h| std::fs::remove_file(h.path(portico::paths::live_link("c0"))).unwrap(),
            "a live link changed",
        ),
        (
            "state.json written again",
            |h| {
                let state = h.path(portico::paths::STATE_FILE);
                let text = std::fs::read(&state).unwrap();
                std::fs::write(state.with_extension("new"), text).unwrap();
                std::fs::rename(state.with_extension("new"), state).unwrap();
            },
            "state.json changed",
        ),
    ];
    for (what, change, why) in cases {
        let host = Host::settled();
        // The kernel's ctime moves with a coarse clock: a change in the
        // same tick as the last write could keep it.
        std::thread::sleep(std::time::Duration::from_millis(20));
        change(&host);
        let (out, report) = host.renew(&[]);
        let log = stderr(&out);
        assert!(out.status.success(), "{what}: {log}\n{report:#}");
        assert!(
            log.contains(FULL) && log.contains(why),
            "{what}: the log does not say \"{why}\": {log}"
        );
        // What the full run did about it.
        match what {
            "a key copy made readable by all" => {
                let c1 = task(&report, "certificate c1");
                assert_eq!(c1["status"], "changed", "{what}: {report:#}");
                assert!(c1.to_string().contains("0644 -> 0600"), "{c1:#}");
            }
            "a certificate copy overwritten" | "the live link removed" => {
                assert_eq!(report["changed"], 1, "{what}: {report:#}");
            }
            _ => assert_eq!(report["changed"], 0, "{what}: {report:#}"),
        }
        host.settle();
        let (out, _) = host.renew(&[]);
        assert!(
            stderr(&out).contains(SHORT),
            "{what}: then short again: {}",
            stderr(&out)
        );
    }
}

/// A run that may change the host removes the memo first: one killed
/// midway leaves none, and the next renewal is the full one (which sweeps
/// what the killed run left). `--force` and `--dry-run` always talk to the
/// CA.
#[test]
fn writers_remove_the_memo_and_force_never_takes_the_short_way() {
    let host = Host::settled();
    let (out, report) = host.renew(&["--force"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the CA is not there: {report:#}"
    );
    assert!(!stderr(&out).contains(SHORT), "{}", stderr(&out));
    assert!(!host.memo().exists(), "a failed run leaves no memo");

    let host = Host::settled();
    let apply = std::process::Command::new(support::bin::exe())
        .args(["apply", "--check", "--root"])
        .arg(host.dir.path())
        .arg(&host.playbook)
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", stderr(&apply));
    assert!(
        host.memo().exists(),
        "a check writes nothing, not even that"
    );
    let pb = host.dir.path().join("self-signed.toml");
    std::fs::write(&pb, playbook(1, "self-signed")).unwrap();
    let apply = std::process::Command::new(support::bin::exe())
        .args(["apply", "--replace", "--root"])
        .arg(host.dir.path())
        .arg(&pb)
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", stderr(&apply));
    assert!(!host.memo().exists(), "apply left the memo");
}

fn task<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}: {report:#}"))
}
