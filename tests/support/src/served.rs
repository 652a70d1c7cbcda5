//! Real nginx serving what portico rendered, isolated from the host: the
//! rendered tree is bind-mounted over /etc/nginx, /etc/ssl and
//! /var/lib/portico in a private mount namespace, and nginx listens in a
//! private network namespace that has only loopback. Requests are made with
//! curl entered into that network namespace. nginx is stopped by its PID.
//!
//! Shared by the golden `nginx -t` test and the edge matrix.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico::facts::nginx_conf::{self, Socket};
use portico::facts::{self, Facts};
use portico::host::fake::FakeRunner;
use portico::host::Root;
use portico::playbook::{Playbook, Source};

/// The Debian 12 fixture tree's facts with a known nginx build.
pub fn facts(nginx: &str, openssl: &str) -> Facts {
    let root = Root::new(crate::fixtures::repo("tests/fixtures/trees/debian12"));
    let mut f = facts::gather(&root, &FakeRunner::new());
    f.nginx.installed = true;
    f.nginx.version = Some(nginx.into());
    f.nginx.openssl = Some(openssl.into());
    f.nginx.http2 = true;
    f
}

/// Now, Unix seconds (certificates made for real clients start now).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The host's nginx: in /usr/sbin, which a normal user's PATH leaves out
/// on Debian, else whatever PATH finds.
pub fn nginx_bin() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// The version of the host's nginx (tests/run installs it).
pub fn host_nginx_version() -> String {
    let out = Command::new(nginx_bin())
        .arg("-v")
        .output()
        .expect("nginx (tests/run installs it)");
    let v = String::from_utf8_lossy(&out.stderr);
    v.trim().rsplit('/').next().unwrap().to_string()
}

/// What a tree's own nginx configuration claims as default server.
pub fn taken(root: &Root) -> BTreeSet<Socket> {
    let dump = nginx_conf::dump_from_tree(root, Path::new("/etc/nginx/nginx.conf")).unwrap();
    nginx_conf::default_sockets(&dump)
}

pub fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts rendered trees over /etc/nginx in private namespaces: run as root (tests/run does)"
    );
}

/// A copy of the Debian tree with the playbook's rendered files and the
/// certificates, CAs and dhparam they reference. `keep_default_site`:
/// leave Debian's own default site (a `default_server` on port 80) enabled.
pub fn materialize(pb: &Playbook, f: &Facts, keep_default_site: bool) -> tempfile::TempDir {
    let dir = crate::fixtures::debian_tree();
    let root = Root::new(dir.path());
    if !keep_default_site {
        root.remove(Path::new("/etc/nginx/sites-enabled/default"))
            .unwrap();
    }
    // The generation apply would make live, linked in the way apply links it.
    let gen = portico::plan::generation(pb, f, &taken(&root));
    root.write_tree(&gen.dir(), &gen.tree(), 0o755).unwrap();
    root.symlink(
        Path::new(portico::paths::NGINX_LIVE),
        Path::new(&gen.dir_name()),
    )
    .unwrap();
    root.write_atomic(
        Path::new(portico::paths::NGINX_ENTRY),
        portico::nginx::generation::entry().as_bytes(),
        0o644,
    )
    .unwrap();
    for c in &pb.certificates {
        if matches!(c.source, Source::Files { .. }) {
            continue;
        }
        // ACME and CA-issued ones stand in as self-signed: nginx reads them the same way.
        let names = portico::plan::certificate_names(pb, c);
        let issued = portico::tls::self_signed(&names, c.key, 30, now()).unwrap();
        portico::tasks::pair::install(
            &root,
            &c.name,
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
        )
        .unwrap();
    }
    for ca in &pb.cas {
        portico::tls::ca::Ca::new(&root, &ca.name, now())
            .init(ca.days)
            .unwrap();
    }
    root.create_dir_all(Path::new("/var/lib/portico/acme-challenge"), 0o755)
        .unwrap();
    let dh = Path::new(portico::paths::DHPARAM);
    root.create_dir_all(dh.parent().unwrap(), 0o755).unwrap();
    root.write_atomic(
        dh,
        portico::tls::dhparam::rfc7919_pem(pb.tls.dhparam).as_bytes(),
        0o644,
    )
    .unwrap();
    dir
}

/// The mounts that put a materialized tree where nginx looks, as a shell
/// prefix (the mount points must exist on the host: they do once nginx is
/// installed, and /var/lib/portico is made here).
fn mounts(root: &Path) -> String {
    std::fs::create_dir_all("/var/lib/portico").unwrap();
    std::fs::create_dir_all(root.join("var/lib/portico")).unwrap();
    let r = root.display();
    // A tree's own /etc/hosts names the test's backends.
    let hosts = if root.join("etc/hosts").exists() {
        format!(" && mount --bind {r}/etc/hosts /etc/hosts")
    } else {
        String::new()
    };
    format!(
        "mount --bind {r}/etc/nginx /etc/nginx && mount --bind {r}/etc/ssl /etc/ssl && \
         mount --bind {r}/var/lib/portico /var/lib/portico && \
         mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log/nginx{hosts}"
    )
}

/// `nginx -t` on a materialized tree: (success, what nginx said).
pub fn nginx_t(root: &Path) -> (bool, String) {
    let script = format!("{} && nginx -t", mounts(root));
    let t = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let err = String::from_utf8_lossy(&t.stderr).into_owned();
    (
        t.status.success() && err.contains("test is successful"),
        err,
    )
}

/// nginx serving a materialized tree in its own mount and network namespace.
pub struct Served {
    nginx: Child,
    pub dir: tempfile::TempDir,
}

/// What curl saw.
#[derive(Debug, Clone)]
pub struct Answer {
    /// curl's exit code: 0 for any HTTP answer, 52 empty reply, 35 TLS failure.
    pub exit: i32,
    /// The HTTP status (0 without one).
    pub status: u16,
    /// Response headers, as sent.
    pub headers: String,
    pub body: String,
}

impl Served {
    /// Starts nginx on `dir` (from [`materialize`]) with `extra` files
    /// (absolute path, content) written into the tree first.
    pub fn start(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Served {
        for (path, content) in extra {
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let (ok, said) = nginx_t(dir.path());
        assert!(ok, "nginx -t rejected the tree:\n{said}");
        let script = format!(
            "ip link set lo up && {} && exec nginx -g 'daemon off;'",
            mounts(dir.path())
        );
        // unshare and sh exec: the child's PID is nginx's master.
        let nginx = Command::new("unshare")
            .args(["-m", "-n", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) and ip (iproute2)");
        let mut served = Served { nginx, dir };
        served.wait_ready();
        served
    }

    fn pid(&self) -> String {
        self.nginx.id().to_string()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.nginx.try_wait() {
                panic!("nginx exited ({status}): {}", self.error_log());
            }
            // Any answer from port 80 (even an empty one) means it listens.
            let a = self.curl(&["http://127.0.0.1/"]);
            if a.exit != 7 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// nginx's error log, read through its own view of the filesystem.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/root/var/log/nginx/error.log", self.pid()))
            .unwrap_or_default()
    }

    /// curl, inside nginx's network namespace, with `args` (the URL last).
    pub fn curl(&self, args: &[&str]) -> Answer {
        let pid = self.pid();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "curl", "-sS", "-k", "--max-time", "5"])
            .args(["-D", "/dev/stderr", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("nsenter (util-linux) and curl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        Answer {
            exit: out.status.code().unwrap_or(-1),
            status: status.trim().parse().unwrap_or(0),
            headers: String::from_utf8_lossy(&out.stderr).into_owned(),
            body: body.to_string(),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop; its workers follow the master.
        let pid = nix::unistd::Pid::from_raw(self.nginx.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nginx.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

/// A CA certificate that signed nothing a test serves.
pub fn other_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "unrelated CA");
    params.self_signed(&key).unwrap().pem()
}
