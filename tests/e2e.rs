//! The four seed playbooks from playbooks/, each on its own freshly booted
//! machine, from nothing (no nginx) to serving with one `portico apply`, then
//! checked by tests/e2e/assert.sh, the same script the Vagrant boxes run.
//!
//! Each machine starts with the firewall its kind of VM ships with (ufw on,
//! firewalld on, iptables rules), so `backend = "auto"` has something to find.
//! The ACME playbooks point at a real pebble inside the machine instead of
//! Let's Encrypt; pebble's DNS answers 127.0.0.1 for every name.
#![cfg(feature = "system")]

use support::machine;

use std::time::Instant;

use machine::pebble::pebble_machine;
use machine::Machine;

const ASSERT: &str = include_str!("e2e/assert.sh");
const BACKENDS: &str = include_str!("e2e/backends.conf");

/// How the machine's firewall looks before portico runs.
#[derive(Clone, Copy)]
enum Firewall {
    /// Ubuntu with ufw enabled (SSH allowed by the admin).
    Ufw,
    /// Rocky/Fedora style: firewalld running with its defaults.
    Firewalld,
    /// Hand-written iptables: SSH and loopback allowed, everything else dropped.
    Iptables,
}

fn prepare_firewall(m: &Machine, fw: Firewall) {
    match fw {
        Firewall::Ufw => {
            m.ok(&["apt-get", "install", "-y", "-q", "ufw"]);
            m.ok(&["ufw", "allow", "22/tcp"]);
            m.ok(&["ufw", "--force", "enable"]);
        }
        Firewall::Firewalld => {
            m.ok(&["apt-get", "install", "-y", "-q", "firewalld"]);
            m.ok(&["systemctl", "enable", "--now", "firewalld"]);
        }
        Firewall::Iptables => {
            m.ok(&["apt-get", "install", "-y", "-q", "iptables"]);
            for rule in [
                "-A INPUT -i lo -j ACCEPT",
                "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A INPUT -p tcp --dport 22 -j ACCEPT",
                "-P INPUT DROP",
            ] {
                let mut argv = vec!["iptables"];
                argv.extend(rule.split(' '));
                m.ok(&argv);
            }
        }
    }
}

/// A seed playbook with its `[acme]` pointed at the machine's pebble.
fn with_pebble(playbook: &str) -> String {
    let mut out = String::new();
    for line in playbook.lines() {
        if line.trim_start().starts_with("directory") {
            continue; // letsencrypt: replaced below
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[acme]" {
            out.push_str(
                "directory = \"https://127.0.0.1:14000/dir\"\nca_root = \"/etc/pebble/ca.pem\"\n",
            );
        }
    }
    assert!(out.contains("127.0.0.1:14000"), "no [acme] in the playbook");
    out
}

/// Boots, applies `playbooks/FILE` once, runs the assertion script; prints
/// the times.
fn scenario(name: &str, file: &str, fw: Firewall, acme_names: Option<&[&str]>) {
    let t0 = Instant::now();
    let mut playbook = std::fs::read_to_string(format!("playbooks/{file}")).unwrap();
    let m = match acme_names {
        Some(names) => {
            playbook = with_pebble(&playbook);
            pebble_machine(names)
        }
        None => Machine::boot(),
    };
    prepare_firewall(&m, fw);
    assert!(
        !m.run(&["sh", "-c", "command -v nginx"]).status.success(),
        "the machine must start without nginx"
    );
    let path = format!("/root/{file}");
    m.write(&path, &playbook);
    let booted = t0.elapsed();

    let t1 = Instant::now();
    let out = m.run(&["portico", "apply", &path]);
    let applied = t1.elapsed();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    m.ok(&["apt-get", "install", "-y", "-q", "testssl.sh"]);
    m.write("/root/e2e/assert.sh", ASSERT);
    m.write("/root/e2e/backends.conf", BACKENDS);
    let mut env = vec![];
    if acme_names.is_some() {
        m.ok(&[
            "sh",
            "-c",
            "curl -sf --cacert /etc/pebble/ca.pem https://127.0.0.1:15000/roots/0 > /root/acme-root.pem",
        ]);
        env.push(("CA_FILE", "/root/acme-root.pem"));
    }
    let t2 = Instant::now();
    let out = m.run_env(&env, &["bash", "/root/e2e/assert.sh", name, &path]);
    let checked = t2.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "scenario {name}: boot+setup {:.1}s, portico apply {:.1}s, assertions {:.1}s, total {:.1}s",
        booted.as_secs_f64(),
        applied.as_secs_f64(),
        checked.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "assertions failed:\n{text}");
    // The script really checked something: a FAIL-free run with few lines
    // would mean it stopped early.
    let passed = text.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(passed >= 15, "only {passed} checks ran:\n{text}");
}

#[test]
fn letsencrypt_reverse_proxy_end_to_end() {
    scenario(
        "letsencrypt",
        "letsencrypt-reverse-proxy.toml",
        Firewall::Ufw,
        Some(&["example.com", "www.example.com"]),
    );
}

#[test]
fn self_signed_proxy_end_to_end() {
    scenario(
        "self-signed",
        "self-signed-proxy.toml",
        Firewall::Firewalld,
        None,
    );
}

#[test]
fn oauth2_internal_services_end_to_end() {
    scenario(
        "oauth2",
        "oauth2-internal-services.toml",
        Firewall::Iptables,
        Some(&["grafana.example.com", "kibana.example.com"]),
    );
}

#[test]
fn mtls_api_end_to_end() {
    scenario("mtls", "mtls-api.toml", Firewall::Firewalld, None);
}

/// The README's "first ten minutes", command by command, on a fresh machine
/// (the binary is already installed there, so the build line is skipped;
/// the machine runs as root, so `sudo` is dropped). Keeps the README honest.
#[test]
fn the_readme_first_ten_minutes_work_as_written() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = &readme[readme
        .find("## Your first ten minutes")
        .expect("the section")..];
    let block = &section[section.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("```").unwrap()];
    let commands: Vec<String> = block
        .lines()
        .map(|l| l.split("  #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with("cargo build"))
        .map(|l| l.replace("sudo ", ""))
        .collect();
    assert!(commands.len() >= 4, "{commands:?}");
    let m = Machine::boot();
    let mut last = String::new();
    for cmd in &commands {
        let out = m.run(&["sh", "-c", cmd]);
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("$ {cmd}\n{last}{}", String::from_utf8_lossy(&out.stderr));
        // curl to a site whose backend is not up exits 0 with a 502 page.
        assert!(out.status.success(), "`{cmd}` failed");
    }
    assert!(
        last.lines().last().unwrap_or("").starts_with("0 changed"),
        "the second apply should change nothing: {last}"
    );
}
