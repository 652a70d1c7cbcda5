//! `portico daemon`: renew on a schedule until stopped.

use crate::paths;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{load_playbook, open_root, CliError};

/// `portico daemon`'s arguments.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Playbook file (TOML). Default: the one `apply` installed,
    /// /etc/portico/playbook.toml (else the embedded default).
    pub playbook: Option<PathBuf>,
    /// Which host.
    #[command(flatten)]
    pub host: super::HostArg,
}

/// Runs the renewal daemon until SIGTERM.
pub(super) fn run(a: DaemonArgs) -> Result<i32, CliError> {
    let loaded = load_playbook(a.playbook.as_deref(), &a.host.root)?;
    let root = open_root(a.host.root.clone())?;
    tracing::info!(playbook = %loaded.name, "starting");
    // SIGHUP re-reads the file the playbook came from.
    let file = match a.playbook {
        Some(f) => Some(f),
        None if loaded.name == paths::INSTALLED_PLAYBOOK => {
            root.host_path(Path::new(paths::INSTALLED_PLAYBOOK)).ok()
        }
        None => None,
    };
    let first = crate::daemon::Source::new(loaded.text, loaded.pb);
    let seed = super::machine_seed(&root);
    crate::host::give_back_freed_memory();
    crate::daemon::run(
        file,
        first,
        &seed,
        ChildRenewer {
            root,
            root_dir: a.host.root,
        },
    )?;
    Ok(0)
}

/// Renews in a child process; reads the order ledger for the account's
/// next free slot.
struct ChildRenewer {
    root: crate::host::Root,
    root_dir: PathBuf,
}

impl crate::daemon::Renewer for ChildRenewer {
    fn renew(&mut self, source: &crate::daemon::Source) -> crate::daemon::Outcome {
        renew_in_a_child(&source.text, &self.root_dir)
    }

    fn account_free_at(&mut self, source: &crate::daemon::Source) -> Option<i64> {
        use crate::host::Clock;
        let acme = source.acme.as_ref()?;
        let ledger = crate::acme::ledger::Ledger::load_read_only(&self.root).ok()?;
        let account = ledger
            .accounts
            .get(&crate::acme::issue::directory_url(&acme.directory))?;
        let now = crate::host::clock::SystemClock::default().unix_now();
        let at = account.next_chance(now, crate::acme::ledger::limit(acme));
        (at > now).then_some(at)
    }
}

/// The longest a renewal may run before the daemon kills it (and all it
/// started): every order and hook has its own limit inside this one, and
/// the run starts nothing it could not finish in time (crate::limits).
const RENEWAL_TIMEOUT: std::time::Duration = crate::limits::RUN_MAX;

/// One renewal, run as `portico renew --from-daemon --json --root DIR -` with the
/// playbook on its standard input: what it needed (TLS, HTTP/2, parsed
/// certificates, their code) leaves with it, so the daemon stays small
/// between runs. Its warnings and errors reach the journal through the
/// standard error it is passed; its report comes back as JSON. It runs in
/// a process group of its own (a Ctrl-C to a daemon in a terminal does not
/// cut it short) and is killed after [`RENEWAL_TIMEOUT`]. Returns the line
/// `STATUS=` shows, and when to renew again for certificates that wait for
/// their account (the report's `queue`).
fn renew_in_a_child(playbook_text: &str, root_dir: &Path) -> crate::daemon::Outcome {
    use crate::daemon::Outcome;
    use crate::host::{Command, Runner, SystemRunner};
    // This very binary, even if an upgrade replaced the file since.
    let renew = Command::mutation([
        "/proc/self/exe",
        "renew",
        "--from-daemon",
        "--json",
        "--root",
        &root_dir.display().to_string(),
        "-",
    ])
    .stdin(playbook_text)
    .timeout(RENEWAL_TIMEOUT)
    .stderr_passed_on()
    .env_remove("NOTIFY_SOCKET"); // systemd hears from the daemon only
    let out = match SystemRunner.run(&renew) {
        Ok(out) => out,
        Err(e) => {
            tracing::error!("renewal: {e}");
            return Outcome {
                line: format!("could not run: {e}"),
                wake_at: None,
            };
        }
    };
    match serde_json::from_str::<Report>(&out.stdout) {
        Ok(report) => Outcome {
            line: summarize(&report),
            wake_at: report.queue.as_ref().and_then(|q| q.next_order_at_unix),
        },
        Err(_) => {
            // It said why on the journal; say how it ended.
            let how = match out.code {
                Some(c) => format!("exit {c}"),
                None => format!(
                    "killed (a signal, or past {} minutes)",
                    RENEWAL_TIMEOUT.as_secs() / 60
                ),
            };
            tracing::error!("renewal: `portico renew` ended ({how}) without a report");
            Outcome {
                line: format!("could not run: `portico renew` ended ({how})"),
                wake_at: None,
            }
        }
    }
}

/// What the daemon reads of a renewal's JSON report (`portico renew
/// --json`): the counts, the failed tasks, the warnings and the queue. The
/// strings borrow from the report's text, and what is not named here is
/// skipped unread: at 10,000 certificates the report lists 10,000 tasks,
/// which as a JSON tree would be the daemon's largest moment.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Report<'a> {
    changed: u64,
    unchanged: u64,
    failed: u64,
    skipped: u64,
    #[serde(borrow)]
    tasks: Vec<TaskLine<'a>>,
    #[serde(borrow)]
    warnings: Vec<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    backing_off: Vec<std::borrow::Cow<'a, str>>,
    queue: Option<QueueLine>,
}

/// One task of the report.
#[derive(Debug, serde::Deserialize)]
struct TaskLine<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    reason: Option<std::borrow::Cow<'a, str>>,
}

/// The report's `queue`: certificates waiting for the account's next order.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct QueueLine {
    certificates: Option<u64>,
    next_order_at: Option<String>,
    next_order_at_unix: Option<i64>,
}

/// Logs what a renewal's JSON report says, as the daemon always has, and
/// returns its one-line summary.
fn summarize(report: &Report) -> String {
    for t in report.tasks.iter().filter(|t| t.status == "failed") {
        tracing::warn!("{}: {}", t.name, t.reason.as_deref().unwrap_or("failed"));
    }
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        changed = report.changed,
        unchanged = report.unchanged,
        failed = report.failed,
        skipped = report.skipped,
        "renewal done"
    );
    let waiting = match report
        .queue
        .as_ref()
        .and_then(|q| Some((q.certificates?, q.next_order_at.as_deref()?)))
    {
        Some((n, at)) => format!(", {n} waiting for the account (next order {at})"),
        None => String::new(),
    };
    format!(
        "{} changed, {} failed, {} backing off{waiting}",
        report.changed,
        report.failed,
        report.backing_off.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(json: &str) -> String {
        summarize(&serde_json::from_str::<Report>(json).expect("a report"))
    }

    #[test]
    fn the_summary_counts_what_the_report_says() {
        let report = r#"{
            "schema": 3, "mode": "renew",
            "changed": 2, "unchanged": 1, "failed": 1, "skipped": 0,
            "tasks": [{"name": "certificate a", "status": "failed", "reason": "CA \"down\"", "changes": []},
                      {"name": "certificate c", "status": "unchanged", "reason": null}],
            "warnings": ["certificate b: backing off"],
            "backing_off": ["certificate b: backing off"],
            "queue": null
        }"#;
        assert_eq!(summary(report), "2 changed, 1 failed, 1 backing off");
        assert_eq!(summary("{}"), "0 changed, 0 failed, 0 backing off");
        let queued = r#"{
            "changed": 300, "failed": 1700,
            "queue": {"certificates": 1700, "next_order_at": "2026-12-05T10:00:00Z", "next_order_at_unix": 1796464800}
        }"#;
        assert_eq!(
            summary(queued),
            "300 changed, 1700 failed, 0 backing off, 1700 waiting for the account (next order 2026-12-05T10:00:00Z)"
        );
    }

    #[test]
    fn a_real_report_of_renew_json_reads() {
        // What `portico renew --json` prints (src/report.rs), read back:
        // a field renamed there would make every daemon run "without a
        // report".
        let r = crate::report::Report {
            changed: 1,
            failed: 1,
            tasks: vec![crate::report::TaskReport::failed_named(
                "certificate a".into(),
                Vec::new(),
                "the CA said no".into(),
            )],
            queue: Some(crate::report::QueueReport {
                certificates: 3,
                next_order_at: "2026-12-05T10:00:00Z".into(),
                next_order_at_unix: 1_796_464_800,
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&r).unwrap();
        let read: Report = serde_json::from_str(&json).expect("the report reads");
        assert_eq!(read.tasks[0].reason.as_deref(), Some("the CA said no"));
        assert_eq!(
            read.queue.and_then(|q| q.next_order_at_unix),
            Some(1_796_464_800)
        );
        assert_eq!(
            summary(&json),
            "1 changed, 1 failed, 0 backing off, 3 waiting for the account (next order 2026-12-05T10:00:00Z)"
        );
    }
}
