//! TLS material checked by the openssl CLI, and a private CA proven with a
//! real nginx on loopback that requires client certificates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::https::Request;

use serde_json::Value;

use support::bin::portico;

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI (tests/run installs it)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A CA with one issued client under a temp root: (tempdir, ca dir, out dir, serial).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let s = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = s.run(&["ca", "init", "clients"]);
        assert!(out.status.success(), "{}", text(&out));
        s
    }
    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
    fn ca(&self) -> PathBuf {
        self.dir.path().join("var/lib/portico/ca/clients")
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn run(&self, args: &[&str]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--root", self.root()]);
        portico(&a)
    }
    /// Issues CN and returns its serial.
    fn issue(&self, cn: &str) -> String {
        let out_dir = self.out();
        let out = self.run(&[
            "ca",
            "issue",
            "clients",
            "--cn",
            cn,
            "--json",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["serial"].as_str().unwrap().to_string()
    }
    fn file(&self, name: &str) -> String {
        self.out().join(name).display().to_string()
    }
}

#[test]
fn ca_artifacts_pass_openssl() {
    let s = Setup::new();
    let ca = s.ca();
    assert_eq!(mode(&ca), 0o700);
    assert_eq!(mode(&ca.join("ca.key")), 0o600);
    let serial = s.issue("alice");
    let (crt, key, p12, pass) = (
        s.file("alice.crt"),
        s.file("alice.key"),
        s.file("alice.p12"),
        s.file("alice.p12.pass"),
    );
    assert_eq!(mode(Path::new(&key)), 0o600);
    assert_eq!(mode(Path::new(&p12)), 0o600);
    assert_eq!(mode(Path::new(&pass)), 0o600);
    let ca_crt = ca.join("ca.crt").display().to_string();
    let crl = ca.join("crl.pem").display().to_string();

    let v = openssl(&["verify", "-CAfile", &ca_crt, &crt]);
    assert!(
        v.status.success() && text(&v).contains(": OK"),
        "{}",
        text(&v)
    );
    assert!(
        openssl(&["x509", "-checkend", "86400", "-noout", "-in", &crt])
            .status
            .success()
    );
    let eku = text(&openssl(&[
        "x509",
        "-in",
        &crt,
        "-noout",
        "-ext",
        "extendedKeyUsage",
    ]));
    assert!(eku.contains("TLS Web Client Authentication"), "{eku}");
    let from_key = openssl(&["pkey", "-in", &key, "-pubout"]).stdout;
    let from_cert = openssl(&["x509", "-in", &crt, "-pubkey", "-noout"]).stdout;
    assert_eq!(from_key, from_cert, "key does not match the certificate");
    let info = openssl(&[
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        &p12,
        "-passin",
        &format!("file:{pass}"),
    ]);
    assert!(info.status.success(), "{}", text(&info));
    assert!(text(&info).contains("AES-256-CBC"), "{}", text(&info));
    let wrong = openssl(&[
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        &p12,
        "-passin",
        "pass:wrong",
    ]);
    assert!(
        !wrong.status.success(),
        "the bundle opened without its password"
    );

    // Revoke (colon form accepted): the CRL lists it and openssl refuses it.
    let colons: Vec<String> = serial
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let r = s.run(&["ca", "revoke", "clients", &colons.join(":")]);
    assert!(r.status.success(), "{}", text(&r));
    let crl_text = text(&openssl(&["crl", "-in", &crl, "-noout", "-text"]));
    assert!(
        crl_text.contains(&format!("Serial Number: {}", serial.to_uppercase())),
        "{crl_text}"
    );
    let revoked = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &crl,
        "-CAfile",
        &ca_crt,
        &crt,
    ]);
    assert!(
        !revoked.status.success() && text(&revoked).contains("certificate revoked"),
        "{}",
        text(&revoked)
    );

    let list: Value =
        serde_json::from_slice(&s.run(&["ca", "list", "clients", "--json"]).stdout).unwrap();
    assert_eq!(list["schema"], 1);
    let c = &list["certificates"][0];
    assert_eq!(c["serial"], serial);
    assert_eq!(c["cn"], "alice");
    // Dates in RFC 3339, as everywhere in portico's JSON.
    let revoked = c["revoked_at"].as_str().expect("a date");
    assert!(revoked.ends_with('Z') && revoked.contains('T'), "{revoked}");
    assert!(
        c["not_after"].as_str().is_some_and(|d| d.contains('T')),
        "{c}"
    );

    // Bad input: exit 2 and a message naming the problem.
    let again = s.run(&["ca", "revoke", "clients", &serial]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already revoked"));
    let unknown = s.run(&["ca", "revoke", "clients", "abcd"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown).contains("no certificate with serial abcd"));
    let missing = s.run(&["ca", "list", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("portico ca init nope"));
}

/// An nginx started by the test on a loopback port, stopped by PID.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, server_block: &str) -> Nginx {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  \
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  \
             server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name localhost;\n{server_block}\n  }}\n}}\n"
        );
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(support::served::nginx_bin())
            .args([
                "-p",
                &d.to_string(),
                "-e",
                &format!("{d}/error.log"),
                "-c",
                &format!("{d}/nginx.conf"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx (tests/run installs it)");
        let n = Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    /// (status, body) of GET / with optional client cert and key.
    fn get(&self, server_ca: &str, client: Option<(&str, &str)>) -> (String, String) {
        let mut request = Request::get(&format!("https://localhost:{}/", self.port))
            .cacert(server_ca)
            .resolve("localhost", self.port, "127.0.0.1");
        if let Some((cert, key)) = client {
            request = request.client_cert(cert, key);
        }
        let a = request.send();
        (format!("{:03}", a.status), a.body)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers and exits.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

#[test]
fn nginx_accepts_issued_client_certificates_and_rejects_others() {
    let s = Setup::new();
    let _alice = s.issue("alice");
    let bob = s.issue("bob");
    assert!(s.run(&["ca", "revoke", "clients", &bob]).status.success());

    // The server's own certificate: a self-signed one made by portico.
    let site = s.dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let names = ["localhost".to_string()].into();
    let issued = portico::tls::self_signed(
        &names,
        portico::playbook::KeyType::EcdsaP256,
        30,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .unwrap();
    std::fs::write(site.join("server.crt"), &issued.cert_pem).unwrap();
    std::fs::write(site.join("server.key"), &issued.key_pem).unwrap();
    let ca = s.ca();
    let block = format!(
        "    ssl_certificate {site}/server.crt;\n    ssl_certificate_key {site}/server.key;\n    \
         ssl_client_certificate {ca}/ca.crt;\n    ssl_crl {ca}/crl.pem;\n    ssl_verify_client on;\n    \
         location / {{ return 200 \"verified $ssl_client_verify $ssl_client_s_dn\"; }}",
        site = site.display(),
        ca = ca.display()
    );
    let nginx = Nginx::start(&site, &block);
    let server_ca = site.join("server.crt").display().to_string();

    let (alice_crt, alice_key) = (s.file("alice.crt"), s.file("alice.key"));
    let (code, body) = nginx.get(&server_ca, Some((&alice_crt, &alice_key)));
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", "verified SUCCESS CN=alice")
    );

    let (code, body) = nginx.get(&server_ca, None);
    assert_eq!(code, "400");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );

    let (bob_crt, bob_key) = (s.file("bob.crt"), s.file("bob.key"));
    let (code, body) = nginx.get(&server_ca, Some((&bob_crt, &bob_key)));
    assert_eq!(code, "400", "a revoked certificate got in: {body}");
    assert!(body.contains("The SSL certificate error"), "{body}");
    let log = std::fs::read_to_string(site.join("error.log")).unwrap();
    assert!(log.contains("certificate revoked"), "{log}");
}

#[test]
fn a_second_certificate_for_a_name_needs_reissue_and_the_first_stays_valid() {
    let s = Setup::new();
    let first = s.issue("alice");
    let out_dir = s.out();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "ca".to_string(),
            "issue".into(),
            "clients".into(),
            "--cn".into(),
            "alice".into(),
            "--out".into(),
            out_dir.display().to_string(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let before = std::fs::read(s.out().join("alice.crt")).unwrap();
    let a = args(&[]);
    let out = s.run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "alice already has a valid certificate (serial {first})"
        )),
        "{said}"
    );
    assert!(said.contains("--reissue"), "{said}");
    assert_eq!(
        std::fs::read(s.out().join("alice.crt")).unwrap(),
        before,
        "nothing was overwritten"
    );

    let a = args(&["--reissue"]);
    let out = s.run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("serial {first}) stays valid until")),
        "{said}"
    );
    let list = s.run(&["ca", "list", "clients"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listed.matches("alice").count(), 2, "{listed}");
}
