//! What a renewal run records when its reload fails (a sandboxed host,
//! tests/support/sandbox.rs, with pebble and nginx running): nginx refuses
//! the configuration at the reload, every file of the run is put back, the
//! old certificate keeps serving, and the renewal counts as a failure: the
//! report says so, the exit code is 1, and state.json backs it off.
#![cfg(feature = "system")]

use support::sandbox::Sandbox;

const PLAYBOOK: &str = "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\n\
    directory = \"https://127.0.0.1:14000/dir\"\nca_root = \"/etc/pebble/ca.pem\"\n\
    email = \"ops@renew.test\"\nagree_terms = true\n[[certificate]]\nname = \"a\"\nsource = \"acme\"\n\
    [[site]]\nserver_names = [\"a.renew.test\"]\ncertificate = \"a\"\n\
    [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n";

fn served_serial(sb: &Sandbox) -> String {
    let out = sb.run(&[
        "sh",
        "-c",
        "openssl s_client -connect 127.0.0.1:443 -servername a.renew.test </dev/null 2>/dev/null | openssl x509 -noout -serial",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_renewal_whose_reload_fails_is_a_failure_backed_off_and_the_old_certificate_serves() {
    let sb = Sandbox::new();
    sb.start_pebble();
    sb.start_backends(&[3000]);
    sb.write("/etc/portico/p.toml", PLAYBOOK);
    assert!(sb
        .portico(&[], &["apply", "--replace", "/etc/portico/p.toml"])
        .status
        .success());
    let before = served_serial(&sb);
    assert!(before.starts_with("serial="), "{before}");
    let cert_before = sb.ok(&["cat", "/etc/ssl/portico/certs/a.crt"]);

    // Someone's own file that nginx refuses: every reload now fails.
    sb.write("/etc/nginx/conf.d/zz-broken.conf", "this is not nginx;\n");
    let out = sb.portico(&[], &["renew", "--force", "--json", "/etc/portico/p.toml"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let cert = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "certificate a")
        .unwrap();
    assert_eq!(cert["status"], "failed", "{report:#}");
    assert!(
        cert["reason"].as_str().unwrap().contains("rolled back"),
        "{cert}"
    );
    // Put back, still serving.
    assert_eq!(sb.ok(&["cat", "/etc/ssl/portico/certs/a.crt"]), cert_before);
    assert_eq!(served_serial(&sb), before);
    // Counted and backed off.
    let state: serde_json::Value =
        serde_json::from_str(&sb.ok(&["cat", "/var/lib/portico/state.json"])).unwrap();
    let a = &state["certificates"]["a"];
    assert_eq!(a["failures"], 1, "{state:#}");
    assert!(a["next_attempt"].as_i64().is_some(), "{state:#}");
    assert!(
        a["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("rolled back"),
        "{state:#}"
    );
}

/// A first boot before DNS points here: the first apply cannot have the
/// certificate, so the site is not served over HTTPS and `status` says so
/// (exit 1). Once DNS is right, a renewal run (what the daemon does) gets
/// the certificate and makes the site live itself: no apply needed.
#[test]
fn a_site_waiting_for_its_certificate_is_completed_by_the_renewal_that_gets_it() {
    let sb = Sandbox::new();
    sb.start_pebble();
    sb.start_backends(&[3000]);
    let pb = PLAYBOOK.replace("a.renew.test", "first.renew.test");
    sb.write("/etc/portico/p.toml", &pb);
    // DNS does not point here yet: the CA looks elsewhere.
    let set = |path: &str, body: &str| {
        sb.ok(&[
            "curl",
            "-sS",
            "-X",
            "POST",
            "-d",
            body,
            &format!("http://127.0.0.1:8055/{path}"),
        ]);
    };
    set(
        "add-a",
        r#"{"host":"first.renew.test","addresses":["10.255.255.1"]}"#,
    );
    let first = sb.portico(
        &[],
        &["apply", "--replace", "--json", "/etc/portico/p.toml"],
    );
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let status = sb.portico(&[], &["status", "/etc/portico/p.toml"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("site first.renew.test: not served over HTTPS"),
        "{text}"
    );

    set("clear-a", r#"{"host":"first.renew.test"}"#);
    let renew = sb.portico(&[], &["renew", "--force", "--json", "/etc/portico/p.toml"]);
    assert!(
        renew.status.success(),
        "{}",
        String::from_utf8_lossy(&renew.stdout)
    );
    let resolve = "first.renew.test:443:127.0.0.1";
    let (_, code, body) = sb.curl(&["-k", "--resolve", resolve], "https://first.renew.test/");
    assert_eq!((code, body.as_str()), (200, "backend 3000"));
    let status = sb.portico(&[], &["status", "/etc/portico/p.toml"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

/// SIGTERM to a renewal run (what the daemon passes on when it is
/// stopped): no order starts after it, what was obtained is written (live
/// pair and copies), and what was not ordered is not a failure: no
/// back-off, the next run orders it.
#[test]
fn a_stopped_renewal_starts_no_new_order_and_keeps_what_it_obtained() {
    let sb = Sandbox::new();
    // Each validation takes pebble up to 3 s: orders are in flight when
    // the stop comes.
    sb.start_pebble_env(&[("PEBBLE_VA_SLEEPTIME", "3"), ("PEBBLE_AUTHZREUSE", "0")]);
    sb.start_backends(&[3000]);
    let mut pb = PLAYBOOK
        .split("[[certificate]]")
        .next()
        .unwrap()
        .to_string();
    for i in 0..8 {
        pb.push_str(&format!(
            "[[certificate]]\nname = \"c{i}\"\nsource = \"acme\"\n[[site]]\nserver_names = [\"c{i}.renew.test\"]\n\
             certificate = \"c{i}\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ));
    }
    sb.write("/etc/portico/p.toml", &pb);
    assert!(sb
        .portico(&[], &["apply", "--replace", "/etc/portico/p.toml"])
        .status
        .success());
    let pid = sb.ns_pid().to_string();
    let run = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-m",
            "-n",
            "-p",
            "--",
            support::bin::exe().to_str().unwrap(),
        ])
        .args(["renew", "--force", "--json", "/etc/portico/p.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The renewal process inside the sandbox (nsenter's child).
    sb.ok(&["pkill", "-TERM", "-f", "portico renew --force"]);
    let out = run.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let (mut renewed, mut not_ordered) = (0, 0);
    for t in report["tasks"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if !name.starts_with("certificate ") {
            continue;
        }
        match t["status"].as_str().unwrap() {
            "changed" => renewed += 1,
            "failed"
                if t["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("not ordered in this run") =>
            {
                not_ordered += 1
            }
            other => panic!("{name}: {other}: {t}"),
        }
    }
    assert_eq!(renewed + not_ordered, 8, "{report:#}");
    assert!(
        not_ordered > 0,
        "the stop came too late to show anything: {report:#}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&sb.ok(&["cat", "/var/lib/portico/state.json"])).unwrap();
    for i in 0..8 {
        let c = &state["certificates"][format!("c{i}")];
        assert_eq!(
            c["failures"].as_u64().unwrap_or(0),
            0,
            "c{i} backed off: {state:#}"
        );
        let live = sb.ok(&["cat", &format!("/etc/ssl/portico/live/c{i}/fullchain.pem")]);
        let copy = sb.ok(&["cat", &format!("/etc/ssl/portico/certs/c{i}.crt")]);
        assert_eq!(live, copy, "c{i}: the copy is not the live certificate");
    }
    eprintln!("stopped: {renewed} renewed before the stop, {not_ordered} left for the next run");
    // The next run orders what was left.
    let next = sb.portico(&[], &["renew", "--json", "/etc/portico/p.toml"]);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stdout)
    );
}

/// A deploy hook's arguments may hold a secret: the report and the logs
/// name the program and how many arguments it had, never them, whether it
/// succeeds or fails.
#[test]
fn a_deploy_hooks_arguments_are_never_printed() {
    let sb = Sandbox::new();
    sb.start_pebble();
    sb.start_backends(&[3000]);
    for (exit, seen) in [
        ("0", "ran /bin/sh (4 arguments hidden)"),
        ("3", "/bin/sh (4 arguments hidden)"),
    ] {
        let pb = PLAYBOOK.replace(
            "[[certificate]]",
            &format!(
                "[renewal]\ndeploy_hook = [\"/bin/sh\", \"-c\", \"exit {exit}\", \"--token\", \"S3CRET\"]\n[[certificate]]"
            ),
        );
        sb.write("/etc/portico/p.toml", &pb);
        let applied = sb.portico(&[], &["apply", "--replace", "/etc/portico/p.toml"]);
        assert!(!String::from_utf8_lossy(&applied.stdout).contains("S3CRET"));
        let out = sb.portico(
            &[("PORTICO_LOG", "portico=debug")],
            &["renew", "--force", "/etc/portico/p.toml"],
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains(seen), "exit {exit}: {said}");
        assert!(
            !said.contains("S3CRET"),
            "exit {exit}: the secret was printed:\n{said}"
        );
    }
}
