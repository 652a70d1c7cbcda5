//! The repository itself: every shell script passes shellcheck, no package
//! mirror host is written into a tracked file, no build output is tracked,
//! and the apt helper of tests/run leaves nothing behind when an install
//! fails.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

fn tracked_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .output()
        .expect("git is needed");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|f| !f.is_empty() && Path::new(f).exists())
        .map(String::from)
        .collect()
}

/// Every tracked shell script: `*.sh`, and files whose first line names a
/// shell. New scripts are covered without editing a list.
fn shell_scripts() -> Vec<String> {
    tracked_files()
        .into_iter()
        .filter(|f| {
            f.ends_with(".sh")
                || fs::read(f).is_ok_and(|b| {
                    let first = b.split(|c| *c == b'\n').next().unwrap_or_default();
                    first.starts_with(b"#!")
                        && (first.ends_with(b"bash") || first.ends_with(b"/sh"))
                })
        })
        .collect()
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let scripts = shell_scripts();
    for expected in [
        "tests/run",
        ".ci/run",
        "tests/apt.sh",
        "vagrant/provision.sh",
    ] {
        assert!(
            scripts.iter().any(|s| s == expected),
            "{expected} not found among {scripts:?}"
        );
    }
    let out = Command::new("shellcheck")
        .args(["-x"])
        .args(&scripts)
        .output()
        .expect("shellcheck is needed: apt-get install shellcheck (tests/run does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The hosts this machine's apt takes packages from, read the way tests/run
/// reads its mirror: `URIs:` of deb822 sources and `deb` lines of
/// sources.list. The test names no host itself.
fn apt_mirror_hosts() -> BTreeSet<String> {
    let mut text = String::new();
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            text += &fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    text += &fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let uri = l.strip_prefix("URIs:").or_else(|| {
                l.strip_prefix("deb ")
                    .map(|r| r.trim_start_matches(|c| c != 'h'))
            })?;
            uri.split_whitespace()
                .next()?
                .split("://")
                .nth(1)?
                .split(['/', ':'])
                .next()
                .map(String::from)
        })
        .filter(|h| !h.is_empty())
        .collect()
}

#[test]
fn no_package_mirror_host_is_written_into_the_project() {
    let hosts = apt_mirror_hosts();
    assert!(
        !hosts.is_empty(),
        "no apt source found on this machine to compare with"
    );
    let mut found = Vec::new();
    for f in tracked_files() {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for h in &hosts {
            if text.contains(h.as_str()) {
                found.push(format!("{f}: {h}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "mirror hosts written into tracked files (take them from the machine's apt sources; \
         use mirror.example in fixtures): {found:?}"
    );
}

#[test]
fn no_build_or_cache_output_is_tracked() {
    let built: Vec<String> = tracked_files()
        .into_iter()
        .filter(|f| {
            f.contains("__pycache__/")
                || f.ends_with(".pyc")
                || f.starts_with("target/")
                || f.contains("/.vagrant/")
        })
        .collect();
    assert!(built.is_empty(), "build output is tracked: {built:?}");
}

/// A failing `apt-get install` under `set -e` must not leave the
/// policy-rc.d that stops services from starting: every later package
/// upgrade on the host would skip its restarts.
#[test]
fn a_failed_install_leaves_no_policy_rc_d_behind() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy-rc.d");
    let fake_apt = dir.path().join("apt-get");
    // Records that the policy was in place while "installing", then fails.
    fs::write(
        &fake_apt,
        format!(
            "#!/bin/sh\n[ \"$1\" = update ] && exit 0\n[ -x {p} ] && touch {p}.seen\nexit 100\n",
            p = policy.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake_apt)
        .status()
        .unwrap();
    for how in [
        "set -e; apt_install nginx",
        "apt_install nginx || true; exit 0",
    ] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(". tests/apt.sh; {how}"))
            .env("POLICY_RC_D", &policy)
            .env("APT_GET", &fake_apt)
            .output()
            .unwrap();
        assert!(
            dir.path().join("policy-rc.d.seen").exists(),
            "{how}: the policy was not in place during the install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!policy.exists(), "{how}: policy-rc.d left behind");
        fs::remove_file(dir.path().join("policy-rc.d.seen")).unwrap();
    }
}
