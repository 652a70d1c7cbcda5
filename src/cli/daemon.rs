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
    let first = crate::daemon::Source {
        text: loaded.text,
        pb: loaded.pb,
    };
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
        let acme = source.pb.acme.as_ref()?;
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
    match serde_json::from_str::<serde_json::Value>(&out.stdout) {
        Ok(report) => Outcome {
            line: summarize(&report),
            wake_at: report["queue"]["next_order_at_unix"].as_i64(),
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

/// Logs what a renewal's JSON report says, as the daemon always has, and
/// returns its one-line summary.
fn summarize(report: &serde_json::Value) -> String {
    let count = |k: &str| report[k].as_u64().unwrap_or(0);
    let texts = |k: &str| -> Vec<String> {
        report[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for t in report["tasks"].as_array().into_iter().flatten() {
        if t["status"] == "failed" {
            tracing::warn!(
                "{}: {}",
                t["name"].as_str().unwrap_or("?"),
                t["reason"].as_str().unwrap_or("failed")
            );
        }
    }
    for w in texts("warnings") {
        tracing::warn!("{w}");
    }
    tracing::info!(
        changed = count("changed"),
        unchanged = count("unchanged"),
        failed = count("failed"),
        skipped = count("skipped"),
        "renewal done"
    );
    let queue = &report["queue"];
    let waiting = match (
        queue["certificates"].as_u64(),
        queue["next_order_at"].as_str(),
    ) {
        (Some(n), Some(at)) => format!(", {n} waiting for the account (next order {at})"),
        _ => String::new(),
    };
    format!(
        "{} changed, {} failed, {} backing off{waiting}",
        count("changed"),
        count("failed"),
        texts("backing_off").len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_what_the_report_says() {
        let report = serde_json::json!({
            "changed": 2, "unchanged": 1, "failed": 1, "skipped": 0,
            "tasks": [{"name": "certificate a", "status": "failed", "reason": "CA down"}],
            "warnings": ["certificate b: backing off"],
            "backing_off": ["certificate b: backing off"],
        });
        assert_eq!(summarize(&report), "2 changed, 1 failed, 1 backing off");
        assert_eq!(
            summarize(&serde_json::json!({})),
            "0 changed, 0 failed, 0 backing off"
        );
        let queued = serde_json::json!({
            "changed": 300, "failed": 1700,
            "queue": {"certificates": 1700, "next_order_at": "2026-12-05T10:00:00Z", "next_order_at_unix": 1_796_464_800},
        });
        assert_eq!(
            summarize(&queued),
            "300 changed, 1700 failed, 0 backing off, 1700 waiting for the account (next order 2026-12-05T10:00:00Z)"
        );
    }
}
