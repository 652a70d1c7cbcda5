//! A kill, then a real reboot, on a booted Debian 12 machine (systemd,
//! nginx.service enabled): an apply that moves a backend and adds a site
//! is killed at three of its durable steps (the new generation written,
//! the switch to it, the manifest saved), the machine is rebooted, and
//! nginx must come up serving every site. Needs `--features failpoints`.

#![cfg(all(feature = "failpoints", feature = "system"))]

use support::https::Request;
use support::machine;

use machine::Machine;

fn playbook(sites: &[(&str, u16)]) -> String {
    let mut t = String::from("version = 1\n[firewall]\nbackend = \"none\"\n");
    for (name, backend) in sites {
        t.push_str(&format!(
            "[[certificate]]\nname = \"{name}\"\nsource = \"self-signed\"\n\
             [[site]]\nserver_names = [\"{name}.boot.test\"]\ncertificate = \"{name}\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:{backend}\"\n"
        ));
    }
    t
}

/// The status a site answers with over HTTPS (502: nginx serves it, its
/// backend is not running; 000: nothing).
fn https_status(m: &Machine, name: &str) -> String {
    let request = Request::get(&format!("https://{name}/"))
        .insecure()
        .resolve(name, 443, "127.0.0.1");
    format!("{:03}", m.https(&request).status)
}

#[test]
fn a_killed_apply_then_a_reboot_leaves_nginx_starting_and_serving() {
    let mut m = Machine::boot();
    m.write("/root/p.toml", &playbook(&[("a", 3000), ("b", 3001)]));
    m.write(
        "/root/q.toml",
        &playbook(&[("a", 3001), ("b", 3001), ("c", 3002)]),
    );
    m.ok(&["portico", "apply", "--replace", "/root/p.toml"]);
    let traced = m.run_env(
        &[("PORTICO_FAILPOINT_TRACE", "/root/trace")],
        &["portico", "apply", "--replace", "/root/q.toml"],
    );
    assert!(
        traced.status.success(),
        "{}",
        String::from_utf8_lossy(&traced.stdout)
    );
    let trace = m.ok(&["cat", "/root/trace"]);
    let step = |pred: &dyn Fn(&str, &str) -> bool| -> usize {
        trace
            .lines()
            .find_map(|l| {
                let mut w = l.splitn(3, ' ');
                let (n, name, detail) = (w.next()?, w.next()?, w.next().unwrap_or(""));
                pred(name, detail).then(|| n.parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no such step in the trace:\n{trace}"))
    };
    let points = [
        (
            "the new generation written",
            step(&|n, d| n == "fs.tree" && d.contains("/etc/nginx/portico/gen-")),
        ),
        (
            "the switch to it",
            step(&|n, d| n == "fs.symlink" && d.ends_with("/etc/nginx/portico/live")),
        ),
        (
            "the manifest saved",
            step(&|n, d| n == "fs.rename" && d.ends_with("managed.json")),
        ),
    ];
    for (what, n) in points {
        m.ok(&["portico", "apply", "--replace", "/root/p.toml"]);
        let at = format!("#{n}");
        let killed = m.run_env(
            &[("PORTICO_FAILPOINT", &at)],
            &["portico", "apply", "--replace", "/root/q.toml"],
        );
        assert_eq!(
            killed.status.code(),
            None,
            "{what}: the run was not killed at step {n}"
        );
        m.reboot();
        let active = m.run(&["systemctl", "is-active", "nginx"]);
        assert_eq!(
            String::from_utf8_lossy(&active.stdout).trim(),
            "active",
            "{what}: nginx did not come up after the reboot:\n{}",
            m.ok(&["journalctl", "-u", "nginx", "--no-pager", "-b"])
        );
        for site in ["a.boot.test", "b.boot.test"] {
            assert_eq!(
                https_status(&m, site),
                "502",
                "{what}: {site} is not served after the reboot"
            );
        }
        eprintln!("booted faults: killed at {what} (step {n}), rebooted: nginx serves");
        m.ok(&["portico", "apply", "--replace", "/root/q.toml"]);
        assert_eq!(
            https_status(&m, "c.boot.test"),
            "502",
            "{what}: the next apply did not converge"
        );
    }
}
