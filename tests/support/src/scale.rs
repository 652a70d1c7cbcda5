//! Many sites on one fixture tree, for the scale bench and the test that
//! the check stays linear: a writable copy of the Debian 12 tree, a
//! playbook of `n` sites each with a certificate of its own, and one
//! command timed with its own peak RSS.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Certificates for `n` ACME sites where an older portico kept them
/// (`certs/cN.crt`, `private/cN.key`), signed by a CA of the bench's own
/// so they look like a CA's, valid for 90 days from yesterday.
pub fn acme_certificates(root: &Path, n: usize) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "scale bench CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(root.join("bench-ca.pem"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let certs = root.join("etc/ssl/portico/certs");
    let keys = root.join("etc/ssl/portico/private");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&keys).unwrap();
    let day = time::Duration::days(1);
    let now = time::OffsetDateTime::now_utc();
    for i in 0..n {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![format!("s{i}.scale.test")]).unwrap();
        p.not_before = now - day;
        p.not_after = now + day * 89;
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(certs.join(format!("c{i}.crt")), cert.pem()).unwrap();
        std::fs::write(keys.join(format!("c{i}.key")), key.serialize_pem()).unwrap();
    }
}

/// One command's wall time (seconds) and peak RSS (KiB).
pub fn run(bin: &Path, args: &[&str]) -> (f64, i64) {
    let start = Instant::now();
    // Waited for with wait4(2) below, which std's Child cannot do.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("portico starts");
    let pid = child.id() as i32;
    // wait4(2): this child's own peak RSS, not the largest of all children.
    let mut status = 0;
    // SAFETY: a plain C struct, zeroed, filled in by wait4.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are to
    // locals that outlive the call.
    let got = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        status & 0x7f == 0,
        "portico {args:?} was killed by signal {}",
        status & 0x7f
    );
    (secs, usage.ru_maxrss)
}

/// A writable copy of the Debian 12 fixture tree.
pub fn tree() -> tempfile::TempDir {
    crate::fixtures::debian_tree()
}

/// `n` sites, each with a certificate of `source` of its own.
pub fn playbook(n: usize, source: &str) -> String {
    let mut pb = String::from("version = 1\n[firewall]\nbackend = \"none\"\n");
    if source == "acme" {
        // Never asked: nothing is due. A port nothing listens on.
        pb.push_str(
            "[acme]\ndirectory = \"https://127.0.0.1:9/dir\"\nagree_terms = true\nca_root = \"/bench-ca.pem\"\n",
        );
    }
    for i in 0..n {
        pb.push_str(&format!(
            "[[certificate]]\nname = \"c{i}\"\nsource = \"{source}\"\nnames = [\"s{i}.scale.test\"]\n\
             [[site]]\nserver_names = [\"s{i}.scale.test\"]\ncertificate = \"c{i}\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ));
    }
    pb
}
