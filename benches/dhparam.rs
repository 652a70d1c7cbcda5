//! The dhparam step against `openssl dhparam 2048`, in the same run:
//! `cargo bench --bench dhparam`.
//!
//! The step is what the dhparam task does when the file is missing: check the
//! target (read, compare), then write the RFC 7919 group atomically (temp
//! file, fsync, rename, fsync of the directory).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portico::host::Root;
use portico::playbook::DhGroup;
use portico::tls::dhparam::rfc7919_pem;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    root.create_dir_all(Path::new("/etc/nginx"), 0o755).unwrap();
    let path = Path::new("/etc/nginx/portico-dhparam.pem");
    let runs = 200;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            root.remove(path).unwrap();
            let t = Instant::now();
            let pem = rfc7919_pem(DhGroup::Ffdhe2048);
            if root.read(path).unwrap().as_deref() != Some(pem.as_bytes()) {
                root.write_atomic(path, pem.as_bytes(), 0o644).unwrap();
            }
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[runs / 2];
    let worst = times[runs - 1];

    let t = Instant::now();
    let out = Command::new("openssl")
        .args(["dhparam", "-out"])
        .arg(dir.path().join("openssl.pem"))
        .arg("2048")
        .output()
        .expect("openssl CLI");
    let openssl = t.elapsed();
    assert!(out.status.success());

    println!("portico dhparam step (RFC 7919 ffdhe2048, atomic write), median of {runs}: {median:?} (worst {worst:?})");
    println!("openssl dhparam 2048 (anchor, same run):                                {openssl:?}");
    println!(
        "ratio openssl / portico: {:.0}x",
        openssl.as_secs_f64() / median.as_secs_f64()
    );
}
