//! vagrant/: what can be proven without Vagrant or its boxes (neither can be
//! downloaded here). The Vagrantfile is loaded by Ruby against a recording
//! stand-in of Vagrant's API; the provisioning script runs for real on a
//! freshly booted Debian 12 machine, as it would on the debian12 box.

mod machine;

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
        ["ubuntu2204", "ubuntu2404", "debian12", "rocky9", "centos7"]
    );
    let autostart: Vec<&str> = boxes.iter().filter(|b| b.2).map(|b| b.0.as_str()).collect();
    assert_eq!(autostart, ["debian12"], "`vagrant up` alone starts one box");
    assert!(std::path::Path::new("vagrant/provision.sh").exists());
}

#[test]
fn the_shell_scripts_pass_shellcheck() {
    let scripts = [
        "vagrant/provision.sh",
        "tests/e2e/assert.sh",
        "tests/run",
        "tests/machine/build-base.sh",
    ];
    let out = Command::new("shellcheck")
        .args(scripts)
        .output()
        .expect("shellcheck is needed: apt-get install shellcheck (tests/run does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The provisioning a debian12 box gets, on a fresh booted Debian 12: the
/// binary from /portico/target/release, iptables as the firewall, the mTLS
/// playbook, and the assertion script's verdict.
#[test]
fn provisioning_works_on_a_fresh_debian_machine() {
    let m = Machine::boot();
    for dir in ["playbooks", "tests/e2e", "vagrant"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            m.write(&format!("/portico/{}", p.display()), &text);
        }
    }
    let bin = m.root().join("portico/target/release/portico");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_portico"), &bin).unwrap();
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
