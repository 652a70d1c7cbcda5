//! One run at a time per host (tests/support/sandbox.rs: a host of its
//! own, nginx and pebble really running): two applies of different
//! playbooks started 50 ms apart both succeed and the host ends as the
//! second says; two forced renewals each renew every certificate once,
//! one after the other; `--no-wait` fails at once, `--wait` gives up,
//! and `--check` never waits.
#![cfg(feature = "system")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::sandbox::Sandbox;

fn playbook(ca_root: &str, sites: &[(&str, &str, u16)]) -> String {
    let mut t = format!(
        "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
         ca_root = \"{ca_root}\"\nemail = \"ops@lock.test\"\nagree_terms = true\n"
    );
    for (name, source, backend) in sites {
        t.push_str(&format!(
            "[[certificate]]\nname = \"{name}\"\nsource = \"{source}\"\n\
             [[site]]\nserver_names = [\"{name}.lock.test\"]\ncertificate = \"{name}\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:{backend}\"\n"
        ));
    }
    t
}

/// `portico ARGS` inside the sandbox, started now, not waited for.
fn start(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    let pid = sb.ns_pid().to_string();
    Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-m",
            "-n",
            "-p",
            "--",
            support::bin::exe().to_str().unwrap(),
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn served(sb: &Sandbox, name: &str) -> String {
    let resolve = format!("{name}:443:127.0.0.1");
    sb.curl(&["-k", "--resolve", &resolve], &format!("https://{name}/"))
        .2
}

#[test]
fn two_applies_at_once_both_succeed_and_the_second_wins() {
    let sb = Sandbox::new();
    let ca = sb.start_pebble();
    sb.start_backends(&[3000, 3001]);
    sb.write(
        "/etc/portico/one.toml",
        &playbook(ca, &[("a", "acme", 3000), ("p1", "self-signed", 3000)]),
    );
    sb.write(
        "/etc/portico/two.toml",
        &playbook(ca, &[("a", "acme", 3001), ("p2", "self-signed", 3001)]),
    );
    let first = start(&sb, &["apply", "--replace", "/etc/portico/one.toml"]);
    std::thread::sleep(Duration::from_millis(50));
    let second = start(&sb, &["apply", "--replace", "/etc/portico/two.toml"]);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(first.status.success(), "{}", said(&first));
    assert!(second.status.success(), "{}", said(&second));
    let waited = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        waited.matches("another run holds the host's lock").count(),
        1,
        "the second run says once whom it waits for: {waited}"
    );
    assert!(
        waited.contains("portico apply --replace /etc/portico/one.toml"),
        "{waited}"
    );
    assert_eq!(served(&sb, "a.lock.test"), "backend 3001");
    assert_eq!(served(&sb, "p2.lock.test"), "backend 3001");
    assert!(
        !served(&sb, "p1.lock.test").contains("backend"),
        "the first run's site is still served"
    );
    // And the host is exactly the second playbook's.
    let again = sb.portico(
        &[],
        &["apply", "--replace", "--json", "/etc/portico/two.toml"],
    );
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["changed"], 0, "{v}");
}

#[test]
fn two_forced_renewals_renew_every_certificate_once_each_one_after_the_other() {
    let sb = Sandbox::new();
    let ca = sb.start_pebble();
    sb.start_backends(&[3000]);
    let p = playbook(ca, &[("a", "acme", 3000), ("b", "acme", 3000)]);
    sb.write("/etc/portico/p.toml", &p);
    sb.ok(&[
        support::bin::exe().to_str().unwrap(),
        "apply",
        "/etc/portico/p.toml",
    ]);
    let args = ["renew", "--force", "--json", "/etc/portico/p.toml"];
    let t0 = Instant::now();
    let one = start(&sb, &args);
    std::thread::sleep(Duration::from_millis(50));
    let two = start(&sb, &args);
    let (one, two) = (
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    );
    let elapsed = t0.elapsed();
    for (run, out) in [("first", &one), ("second", &two)] {
        assert!(
            out.status.success(),
            "{run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for cert in ["certificate a", "certificate b"] {
            let t = v["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == cert)
                .unwrap();
            assert_eq!(t["status"], "changed", "{run}: {t}");
            assert_eq!(
                t["changes"].as_array().unwrap().len(),
                1,
                "{run}: ordered once: {t}"
            );
        }
    }
    assert!(
        String::from_utf8_lossy(&two.stderr).contains("another run holds the host's lock"),
        "the second renewal did not wait: {}",
        String::from_utf8_lossy(&two.stderr)
    );
    eprintln!("two forced renewals, one after the other: {elapsed:?}");
}

#[test]
fn no_wait_fails_at_once_a_wait_gives_up_and_check_never_waits() {
    let sb = Sandbox::new();
    sb.write(
        "/etc/portico/p.toml",
        "version = 1\n[firewall]\nbackend = \"none\"\n[[certificate]]\nname = \"a\"\nsource = \"self-signed\"\n\
         [[site]]\nserver_names = [\"a.lock.test\"]\ncertificate = \"a\"\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n",
    );
    // Someone holds the lock (flock(1), the same flock(2) portico takes).
    sb.ok(&["mkdir", "-p", "/run/portico"]);
    sb.spawn(&[], &["flock", "/run/portico/lock", "sleep", "30"]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let out = sb.portico(
        &[],
        &["apply", "--replace", "--no-wait", "/etc/portico/p.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not waiting (--no-wait)"));
    let t = Instant::now();
    let out = sb.portico(
        &[],
        &["apply", "--replace", "--wait", "1", "/etc/portico/p.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("giving up (--wait 1)"));
    let t = Instant::now();
    let out = sb.portico(
        &[],
        &["apply", "--replace", "--check", "/etc/portico/p.toml"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(10), "--check waited");
}
