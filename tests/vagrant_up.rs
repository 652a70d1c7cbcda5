//! `vagrant up` for real: the local Debian 12 box (vagrant/build-box.sh,
//! built from Debian packages and cached) under vagrant-libvirt with plain
//! QEMU emulation, provisioned with the self-signed and mTLS seeds, whose
//! assertions (tests/e2e/assert.sh) must pass inside the VM; then destroyed.
//! Its own test binary, so no booted-machine test runs beside the VM.
#![cfg(feature = "system")]

use std::process::Command;

#[test]
fn vagrant_up_on_the_local_box_passes_the_seed_assertions_inside_the_vm() {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/x86_64-unknown-linux-gnu/release/portico"
    );
    assert!(
        std::path::Path::new(shipped).exists(),
        "{shipped} is missing: the VM installs the shipped binary (tests/run builds it with cargo zigbuild)"
    );
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vagrant/test-local.sh"
    ))
    .args(["self-signed", "mtls"])
    .output()
    .expect("vagrant/test-local.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The phases' wall times, for the record (CI log).
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "vagrant/test-local.sh failed: {stderr}"
    );
    for scenario in ["self-signed", "mtls"] {
        assert!(
            stdout.contains(&format!("== {scenario}: 0 failed")),
            "no passing {scenario} assertions in the VM's output"
        );
    }
    assert!(stdout.contains("test-local: passed: self-signed mtls"));
}
