//! A kill at every durable step (`--features failpoints`, see
//! src/host/failpoint.rs). For five runs (an apply that adds an ACME site,
//! one that moves backends, one that drops a site, a forced renewal, and
//! `remove --purge`) each durable step is killed in turn, with SIGKILL, on
//! a sandboxed host (tests/support/sandbox.rs) holding the state before
//! the run. Then, from the disk as the kill left it:
//!
//! - `nginx -t` passes, and nginx killed and started again (what a reboot
//!   does to it) starts and serves the old configuration or the new one;
//! - `state.json`, `managed.json` and `runs.json`, where there are any,
//!   parse, and the metrics file is absent or whole (`promtool check
//!   metrics`);
//! - every certificate portico keeps matches its key;
//! - the next run converges, the one after it changes nothing, and no
//!   temporary file is left.

#![cfg(all(feature = "failpoints", feature = "system"))]

use std::collections::BTreeSet;

use support::sandbox::Sandbox;

const PRIVATE: &[&str] = &[
    "etc/nginx",
    "etc/ssl",
    "etc/portico",
    "var/lib/portico",
    "var/lib/prometheus",
];

/// The metrics file every run rewrites (node_exporter's directory exists
/// in these hosts).
const METRICS: &str = "/var/lib/prometheus/node-exporter/portico.prom";

fn acme(ca_root: &str) -> String {
    format!(
        "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
         ca_root = \"{ca_root}\"\nemail = \"ops@fault.test\"\nagree_terms = true\n"
    )
}

fn site(name: &str, cert: &str, listen: u16, backend: u16) -> String {
    format!(
        "[[site]]\nserver_names = [\"{name}\"]\ncertificate = \"{cert}\"\nlisten = {listen}\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:{backend}\"\n"
    )
}

fn cert(name: &str, source: &str) -> String {
    format!("[[certificate]]\nname = \"{name}\"\nsource = \"{source}\"\n")
}

/// The host before the run: `p` applied, copied aside.
struct Before {
    sb: Sandbox,
    saved: tempfile::TempDir,
}

impl Before {
    /// `p` applied; `q` (the next playbook, if any) written beside it.
    fn new(sb: Sandbox, p: &str, q: Option<&str>) -> Before {
        sb.write("/etc/portico/p.toml", p);
        if let Some(q) = q {
            sb.write("/etc/portico/q.toml", q);
        }
        let out = sb.portico(&[], &["apply", "--replace", "/etc/portico/p.toml"]);
        assert!(
            out.status.success(),
            "applying P: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Every run below rewrites it: a kill can land in that write too.
        assert!(
            sb.host_path(METRICS).exists(),
            "apply wrote no metrics file"
        );
        let saved = tempfile::tempdir().unwrap();
        for d in PRIVATE {
            copy(&sb.dir.path().join(d), &saved.path().join(d));
        }
        Before { sb, saved }
    }

    /// Puts the host back as it was before the run, nginx serving it.
    fn restore(&self) {
        for d in PRIVATE {
            let live = self.sb.dir.path().join(d);
            // The contents only: the directory itself is a mount point.
            for e in std::fs::read_dir(&live).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
            copy(&self.saved.path().join(d), &live);
        }
        self.sb
            .restart_nginx()
            .expect("nginx serves the host as it was");
    }
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The steps a run makes, by name, from its trace.
fn trace(sb: &Sandbox, run: &[&str]) -> Vec<String> {
    let _ = sb.run(&["rm", "-f", "/tmp/trace"]);
    let out = sb.portico(&[("PORTICO_FAILPOINT_TRACE", "/tmp/trace")], run);
    assert!(
        out.status.success(),
        "the run itself fails: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    sb.ok(&["cat", "/tmp/trace"])
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .collect()
}

/// What must hold after a kill; returns what did not.
/// `metrics`: the metrics file must be there (every run but a purge keeps
/// it, whole).
fn after_kill(sb: &Sandbox, names: &[&str], next: &[&str], metrics: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    let (ok, said) = sb.nginx_t();
    if !ok {
        wrong.push(format!(
            "nginx -t rejects the disk as the kill left it:\n{said}"
        ));
    }
    match sb.restart_nginx() {
        Err(e) => wrong.push(format!("nginx does not start: {e}")),
        Ok(()) => {
            for n in names {
                let resolve = format!("{n}:443:127.0.0.1");
                let (_, status, body) =
                    sb.curl(&["-k", "--resolve", &resolve], &format!("https://{n}/"));
                if !(status == 200 && body.starts_with("backend ")) {
                    wrong.push(format!(
                        "{n}: not served after a restart ({status} {body:?})"
                    ));
                }
            }
        }
    }
    if let Some(problem) = metrics_problem(sb, metrics) {
        wrong.push(problem);
    }
    for f in [
        "/var/lib/portico/state.json",
        "/var/lib/portico/managed.json",
        "/var/lib/portico/runs.json",
    ] {
        let out = sb.run(&["cat", f]);
        if out.status.success() && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err()
        {
            wrong.push(format!("{f} does not parse"));
        }
    }
    // What nginx reads: every live pair is a certificate and its own key.
    let live = mismatched(
        sb,
        "/etc/ssl/portico/live",
        "*",
        "/fullchain.pem",
        "/privkey.pem",
    );
    if !live.is_empty() {
        wrong.push(format!("live pairs whose key is another's: {live}"));
    }
    let first = sb.portico(&[], next);
    if !first.status.success() {
        wrong.push(format!(
            "the next run fails:\n{}{}",
            String::from_utf8_lossy(&first.stdout),
            String::from_utf8_lossy(&first.stderr)
        ));
    }
    let mut second_args = next.to_vec();
    second_args.push("--json");
    let second = sb.portico(&[], &second_args);
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap_or_default();
    if report["changed"].as_u64().unwrap_or(1) != 0 {
        let left = sb.run(&[
            "find",
            "/var/lib/portico",
            "/etc/portico",
            "/etc/ssl/portico",
        ]);
        wrong.push(format!(
            "the run after the next one still changes something:\n{}\non disk:\n{}",
            String::from_utf8_lossy(&second.stdout),
            String::from_utf8_lossy(&left.stdout)
        ));
    }
    // The plain copies (certs/NAME.crt, private/NAME.key) may lag the
    // live pair after a kill between their two writes; the next run makes
    // them its copies again.
    let copies = mismatched(sb, "/etc/ssl/portico/certs", "*.crt", "", "");
    if !copies.is_empty() {
        wrong.push(format!(
            "plain copies whose key is another's after the next run: {copies}"
        ));
    }
    let temps = sb.run(&[
        "sh",
        "-c",
        "find /etc/nginx /etc/ssl /etc/portico /var/lib/portico /var/lib/prometheus -name '*.portico-*'",
    ]);
    let temps = String::from_utf8_lossy(&temps.stdout).trim().to_string();
    if !temps.is_empty() {
        wrong.push(format!("temporary files left: {temps}"));
    }
    wrong
}

/// What is wrong with the metrics file as a kill left it, if anything: it
/// is whole (absent only where not `must_exist`), and whole means `promtool
/// check metrics` finds no problem and it ends with a line (a partial
/// write would not).
fn metrics_problem(sb: &Sandbox, must_exist: bool) -> Option<String> {
    let Ok(text) = std::fs::read_to_string(sb.host_path(METRICS)) else {
        return must_exist.then(|| format!("{METRICS} is gone"));
    };
    let whole = text.ends_with('\n') && text.contains("portico_build_info");
    match support::promtool::check_metrics(&text) {
        Ok(()) if whole => None,
        Ok(()) => Some(format!("{METRICS} is cut short:\n{text}")),
        Err(e) => Some(format!(
            "{METRICS} is not a whole metrics file: {e}\n{text}"
        )),
    }
}

/// The certificates under `dir` (`glob`, with `cert`/`key` appended to
/// each) whose key is not theirs: for live pairs, `live/NAME` +
/// `/fullchain.pem` and `/privkey.pem`; for the plain copies,
/// `certs/NAME.crt` and `private/NAME.key`.
fn mismatched(sb: &Sandbox, dir: &str, glob: &str, cert: &str, key: &str) -> String {
    let key_of = if key.is_empty() {
        "../private/${n%.crt}.key".to_string()
    } else {
        format!("$n{key}")
    };
    let script = format!(
        "cd {dir} 2>/dev/null || exit 0; for n in {glob}; do [ -e \"$n\" ] || continue; \
         a=$(openssl x509 -in \"$n{cert}\" -noout -pubkey 2>&1); \
         b=$(openssl pkey -in \"{key_of}\" -pubout 2>&1); [ \"$a\" = \"$b\" ] || echo \"$n\"; done"
    );
    let out = sb.run(&["sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Kills `run` at each of its durable steps in turn; returns how many
/// steps there were and their names.
fn every_step(
    before: &Before,
    run: &[&str],
    names: &[&str],
    next: &[&str],
) -> (usize, BTreeSet<String>) {
    before.restore();
    let steps = trace(&before.sb, run);
    assert!(!steps.is_empty(), "{run:?} made no durable step");
    let mut problems = Vec::new();
    for i in 1..=steps.len() {
        before.restore();
        let at = format!("#{i}");
        let out = before
            .sb
            .portico(&[("PORTICO_FAILPOINT", at.as_str())], run);
        let killed = out.status.code().is_none();
        let keeps_metrics = !run.contains(&"--purge");
        let wrong = after_kill(&before.sb, names, next, keeps_metrics);
        if !wrong.is_empty() {
            problems.push(format!(
                "killed at step {i} ({}){}:\n  {}",
                steps[i - 1],
                if killed {
                    ""
                } else {
                    " (the run had ended before)"
                },
                wrong.join("\n  ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{run:?}: {} of {} kill points leave the host wrong:\n{}",
        problems.len(),
        steps.len(),
        problems.join("\n")
    );
    eprintln!(
        "faults: {run:?}: {} durable steps, every kill recovered",
        steps.len()
    );
    (steps.len(), steps.into_iter().collect())
}

fn host() -> (Sandbox, &'static str) {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.host_path("/var/lib/prometheus/node-exporter")).unwrap();
    let ca_root = sb.start_pebble();
    sb.start_backends(&[3000, 3001, 3002]);
    (sb, ca_root)
}

#[test]
fn a_kill_at_any_step_of_an_apply_that_adds_an_acme_site() {
    let (sb, ca) = host();
    let p = format!(
        "{}{}{}",
        acme(ca),
        cert("a", "acme"),
        site("a.fault.test", "a", 443, 3000)
    );
    let q = format!(
        "{p}{}{}",
        cert("b", "acme"),
        site("b.fault.test", "b", 443, 3001)
    );
    let before = Before::new(sb, &p, Some(&q));
    let run = ["apply", "/etc/portico/q.toml"];
    every_step(&before, &run, &["a.fault.test"], &run);
}

#[test]
fn a_kill_at_any_step_of_an_apply_that_moves_backends() {
    let (sb, ca) = host();
    let base = format!(
        "{}{}{}",
        acme(ca),
        cert("a", "self-signed"),
        cert("b", "self-signed")
    );
    let p = format!(
        "{base}{}{}",
        site("a.fault.test", "a", 443, 3000),
        site("b.fault.test", "b", 443, 3001)
    );
    let q = format!(
        "{base}{}{}",
        site("a.fault.test", "a", 443, 3001),
        site("b.fault.test", "b", 443, 3002)
    );
    let before = Before::new(sb, &p, Some(&q));
    let run = ["apply", "/etc/portico/q.toml"];
    every_step(&before, &run, &["a.fault.test", "b.fault.test"], &run);
}

#[test]
fn a_kill_at_any_step_of_an_apply_that_drops_a_site() {
    let (sb, ca) = host();
    let base = format!(
        "{}{}{}",
        acme(ca),
        cert("a", "self-signed"),
        cert("b", "acme")
    );
    let p = format!(
        "{base}{}{}",
        site("a.fault.test", "a", 443, 3000),
        site("b.fault.test", "b", 443, 3001)
    );
    let q = format!(
        "{}{}{}",
        acme(ca),
        cert("a", "self-signed"),
        site("a.fault.test", "a", 443, 3000)
    );
    let before = Before::new(sb, &p, Some(&q));
    let run = ["apply", "/etc/portico/q.toml"];
    every_step(&before, &run, &["a.fault.test"], &run);
}

#[test]
fn a_kill_at_any_step_of_a_forced_renewal() {
    let (sb, ca) = host();
    let p = format!(
        "{}{}{}{}{}",
        acme(ca),
        cert("a", "acme"),
        cert("b", "acme"),
        site("a.fault.test", "a", 443, 3000),
        site("b.fault.test", "b", 443, 3001)
    );
    let before = Before::new(sb, &p, None);
    let run = ["renew", "--force", "/etc/portico/p.toml"];
    every_step(
        &before,
        &run,
        &["a.fault.test", "b.fault.test"],
        &["apply", "--replace", "/etc/portico/p.toml"],
    );
}

#[test]
fn a_kill_at_any_step_of_remove_purge() {
    let (sb, ca) = host();
    let p = format!(
        "{}{}{}{}{}",
        acme(ca),
        cert("a", "acme"),
        cert("b", "self-signed"),
        site("a.fault.test", "a", 443, 3000),
        site("b.fault.test", "b", 443, 3001)
    );
    let before = Before::new(sb, &p, None);
    let run = ["remove", "--purge"];
    every_step(&before, &run, &[], &run);
}
