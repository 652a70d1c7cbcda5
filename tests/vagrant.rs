//! vagrant/: the Vagrantfile's structure, loaded by Ruby against a recording
//! stand-in of Vagrant's API (fast, and it sees every setting of every box,
//! including the published ones no test here can download), and the
//! provisioning script on a freshly booted Debian 12 machine.
//! `vagrant up` itself runs in tests/vagrant_up.rs.
#![cfg(feature = "system")]

use support::machine;

use std::process::Command;

use machine::Machine;
use serde_json::Value;

fn vagrantfile() -> Value {
    let out = Command::new("ruby")
        .args(["tests/vagrant/load.rb", "vagrant/Vagrantfile"])
        .output()
        .expect("ruby is needed to load the Vagrantfile: apt-get install ruby (tests/run does)");
    assert!(
        out.status.success(),
        "the Vagrantfile does not load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_vagrantfile_defines_the_five_boxes_each_provisioned_by_the_shared_script() {
    let v = vagrantfile();
    let sync = &v["vm"]["synced_folder"][0]["args"];
    assert_eq!(sync, &serde_json::json!(["..", "/portico"]));
    let boxes: Vec<(String, String, bool)> = v["vm"]["define"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let vm = &d["config"]["vm"];
            let provision = &vm["provision"][0];
            assert_eq!(provision["args"][0], "shell");
            assert_eq!(provision["opts"]["path"], "provision.sh");
            assert_eq!(provision["opts"]["args"][0], "self-signed");
            (
                d["args"][0].as_str().unwrap().to_string(),
                vm["box"].as_str().unwrap().to_string(),
                d["opts"]["autostart"].as_bool().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = boxes.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "ubuntu2204",
            "ubuntu2404",
            "debian12",
            "rocky9",
            "centos7",
            "debian12-local"
        ]
    );
    assert_eq!(boxes[5].1, "portico/debian12-local");
    let autostart: Vec<&str> = boxes.iter().filter(|b| b.2).map(|b| b.0.as_str()).collect();
    assert_eq!(autostart, ["debian12"], "`vagrant up` alone starts one box");
    assert!(std::path::Path::new("vagrant/provision.sh").exists());
}

/// Vagrant itself (Debian's 2.3.4 with vagrant-libvirt) accepts the file
/// and lists the six machines; nothing is downloaded or started.
#[test]
fn vagrant_itself_validates_the_vagrantfile() {
    let home = tempfile::tempdir().unwrap();
    let vagrant = |args: &[&str]| {
        let out = Command::new("vagrant")
            .args(args)
            .current_dir("vagrant")
            .env("VAGRANT_HOME", home.path())
            // Vagrant's project state from a run elsewhere must not count.
            .env("VAGRANT_DOTFILE_PATH", home.path().join("dotfile"))
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .output()
            .expect("vagrant is needed: apt-get install vagrant vagrant-libvirt (tests/run does)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "vagrant {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    assert!(vagrant(&["validate"]).contains("validated successfully"));
    let machines: Vec<String> = vagrant(&["status", "--machine-readable"])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.get(2) == Some(&"state")).then(|| format!("{} {}", f[1], f[3]))
        })
        .collect();
    assert_eq!(
        machines,
        [
            "ubuntu2204 not_created",
            "ubuntu2404 not_created",
            "debian12 not_created",
            "rocky9 not_created",
            "centos7 not_created",
            "debian12-local not_created"
        ]
    );
}

/// Emulation and the isolated network are the local box's own: no published
/// box gets a libvirt setting beyond memory and CPUs.
#[test]
fn only_the_local_box_gets_qemu_emulation_and_an_isolated_network() {
    let v = vagrantfile();
    for d in v["vm"]["define"].as_array().unwrap() {
        let name = d["args"][0].as_str().unwrap();
        let providers = d["config"]["vm"]["provider"].as_array().unwrap();
        let libvirt = providers
            .iter()
            .find(|p| p["args"][0] == "libvirt")
            .unwrap_or_else(|| panic!("{name}: no libvirt provider block"));
        let mut keys: Vec<&str> = libvirt["config"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        if name == "debian12-local" {
            let lv = &libvirt["config"];
            assert_eq!(lv["driver"], "qemu");
            assert_eq!(lv["cpu_mode"], "custom");
            assert_eq!(lv["management_network_mode"], "none");
            assert_eq!(
                providers.len(),
                1,
                "the local box is for libvirt only: {providers:?}"
            );
        } else {
            assert_eq!(keys, ["cpus", "memory"], "{name}: {libvirt}");
        }
    }
}

/// The provisioning a debian12 box gets, on a fresh booted Debian 12: the
/// shipped binary under /portico/target, iptables as the firewall, the mTLS
/// playbook, and the assertion script's verdict.
#[test]
fn provisioning_works_on_a_fresh_debian_machine() {
    let m = Machine::boot();
    for dir in ["playbooks", "tests/e2e", "vagrant"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if !p.is_file() {
                continue; // vagrant/.vagrant: Vagrant's own state on this host
            }
            let text = std::fs::read_to_string(&p).unwrap();
            m.write(&format!("/portico/{}", p.display()), &text);
        }
    }
    let bin = m
        .root()
        .join("portico/target/x86_64-unknown-linux-gnu/release/portico");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(support::bin::exe(), &bin).unwrap();
    let t = std::time::Instant::now();
    let out = m.run(&["bash", "/portico/vagrant/provision.sh", "mtls"]);
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{text}{}\nprovisioning took {:.1}s",
        String::from_utf8_lossy(&out.stderr),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "provisioning failed");
    assert!(text.contains("iptables accepts 8443"), "{text}");
    assert!(text.contains("== mtls: 0 failed"), "{text}");

    // A scenario that needs an ACME server says so, and touches nothing.
    let out = m.run(&["bash", "/portico/vagrant/provision.sh", "letsencrypt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs ACME_DIRECTORY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
