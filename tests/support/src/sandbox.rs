//! A host of its own for `portico apply` on `/`, without booting: private
//! mount, network and PID namespaces in which scratch copies stand over
//! /etc/nginx, /etc/ssl, /etc/portico, /var/lib/portico and nginx's own
//! directories, /run is empty (no systemd: portico drives nginx directly),
//! and only loopback exists. nginx, pebble and the test's backends run in
//! there; curl is entered into it. Everything in it dies with its PID 1,
//! which the test started and stops by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directories a sandbox has its own copy of (created empty on the
/// host where missing: a mount needs a place).
const PRIVATE: &[&str] = &[
    "/etc/nginx",
    "/etc/ssl",
    "/etc/portico",
    "/var/lib/portico",
    "/var/lib/nginx",
    "/var/log/nginx",
    "/etc/pebble",
    // node_exporter's textfile directory, where tests/run's promtool
    // package puts it on the host: a sandbox's metrics never land there.
    "/var/lib/prometheus",
];

/// One sandbox.
pub struct Sandbox {
    /// The scratch tree (`dir/etc/nginx` is the sandbox's /etc/nginx).
    pub dir: tempfile::TempDir,
    holder: Child,
    pid: u32,
    /// What was started inside in the background (waited for on drop).
    children: std::cell::RefCell<Vec<Child>>,
}

impl Sandbox {
    /// A fresh host: Debian 12's nginx configuration (the fixture tree, its
    /// default site disabled), nothing of portico's, nginx not running.
    // Not a Default: it mounts and starts processes.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Sandbox {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the sandbox mounts and makes namespaces: run as root (tests/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        for d in PRIVATE {
            std::fs::create_dir_all(dir.path().join(d.trim_start_matches('/'))).unwrap();
            std::fs::create_dir_all(d).unwrap();
        }
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!(
                "{}/etc/nginx/.",
                crate::fixtures::repo("tests/fixtures/trees/debian12").display()
            ))
            .arg(dir.path().join("etc/nginx"))
            .status()
            .unwrap();
        assert!(status.success());
        let _ = std::fs::remove_file(dir.path().join("etc/nginx/sites-enabled/default"));
        // nginx's temp directories, owned as the package makes them.
        std::fs::create_dir_all(dir.path().join("var/lib/nginx/body")).unwrap();
        let r = dir.path().display();
        let mut script = String::from("set -e; mount --make-rprivate /; ");
        for d in PRIVATE {
            script.push_str(&format!("mount --bind {r}{d} {d}; "));
        }
        script.push_str("mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; ");
        // PID 1 reaps whatever is orphaned inside (nginx's master after it
        // daemonizes, and after a kill), as an init does.
        script.push_str(
            "ip link set lo up; exec /usr/bin/python3 -c 'import os,time\n\
             while True:\n\
             \x20 try: os.waitpid(-1, 0)\n\
             \x20 except ChildProcessError: time.sleep(0.02)'",
        );
        let holder = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux)");
        // The namespaces' PID 1 is unshare's child.
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let children = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/children",
                holder.id(),
                holder.id()
            ))
            .unwrap_or_default();
            if let Some(p) = children.split_whitespace().next() {
                let p: u32 = p.parse().unwrap();
                let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
                if cmd.starts_with("/usr/bin/python3") {
                    break p;
                }
            }
            assert!(Instant::now() < deadline, "the sandbox did not come up");
            std::thread::sleep(Duration::from_millis(10));
        };
        Sandbox {
            dir,
            holder,
            pid,
            children: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The namespaces' PID 1, as the host sees it (for `nsenter -t`).
    pub fn ns_pid(&self) -> u32 {
        self.pid
    }

    /// `argv` entered into the sandbox's namespaces, with `env`.
    fn enter(&self, env: &[(&str, &str)], argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-m", "-n", "-p", "--"]);
        c.args(argv);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs `argv` inside, with `env`.
    pub fn run_env(&self, env: &[(&str, &str)], argv: &[&str]) -> Output {
        self.enter(env, argv)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter (util-linux)")
    }

    /// Runs `argv` inside.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.run_env(&[], argv)
    }

    /// Runs `argv` inside; panics unless it exits 0; its stdout.
    pub fn ok(&self, argv: &[&str]) -> String {
        crate::stdout_of_success(argv, self.run(argv))
    }

    /// Starts `argv` inside in the background (it dies with the sandbox);
    /// returns the PID of the `nsenter` that runs it.
    pub fn spawn(&self, env: &[(&str, &str)], argv: &[&str]) -> u32 {
        let child = self
            .enter(env, argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter (util-linux)");
        let id = child.id();
        self.children.borrow_mut().push(child);
        id
    }

    /// A path inside, as the host sees it.
    pub fn host_path(&self, path: &str) -> PathBuf {
        for d in PRIVATE {
            if let Ok(rest) = Path::new(path).strip_prefix(d) {
                return self.dir.path().join(d.trim_start_matches('/')).join(rest);
            }
        }
        panic!("{path} is not in a directory the sandbox has its own copy of");
    }

    /// Writes a file inside (one of the private directories).
    pub fn write(&self, path: &str, content: &str) {
        let p = self.host_path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// `portico ARGS` inside, with `env` (the binary: [`crate::bin::exe`]).
    pub fn portico(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let bin = crate::bin::exe().to_string_lossy().into_owned();
        let mut argv = vec![bin.as_str()];
        argv.extend_from_slice(args);
        self.run_env(env, &argv)
    }

    /// nginx's master, when one runs.
    pub fn nginx_master(&self) -> Option<u32> {
        let pid = self.run(&["cat", "/run/nginx.pid"]);
        let pid: u32 = String::from_utf8_lossy(&pid.stdout).trim().parse().ok()?;
        self.run(&["kill", "-0", &pid.to_string()])
            .status
            .success()
            .then_some(pid)
    }

    /// `nginx -t` on the disk as it is: (accepted, what nginx said).
    pub fn nginx_t(&self) -> (bool, String) {
        let out = self.run(&["nginx", "-t"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// What a reboot does to nginx: the running one is gone (killed, as
    /// power would), and a new one starts from the disk as it is. `Err`
    /// with what nginx said when it does not start.
    pub fn restart_nginx(&self) -> Result<(), String> {
        // Master and workers at once, as a power cut takes them.
        self.run(&["pkill", "-KILL", "-x", "nginx"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.run(&["pgrep", "-x", "nginx"]).status.success() {
            assert!(Instant::now() < deadline, "nginx did not die");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.run(&["rm", "-f", "/run/nginx.pid"]);
        let out = self.run(&["nginx"]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `request` made inside.
    pub fn https(&self, request: &crate::https::Request) -> crate::https::Answer {
        let argv = request.argv();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.run(&argv);
        crate::https::Answer::parse(out.status.code().unwrap_or(-1), &out.stdout)
    }

    /// curl inside: (exit code, HTTP status, body). `args` before the URL.
    pub fn curl(&self, args: &[&str], url: &str) -> (i32, u16, String) {
        let request = args
            .iter()
            .fold(crate::https::Request::get(url), |r, a| r.arg(a));
        let a = self.https(&request);
        (a.exit, a.status, a.body)
    }

    /// Starts pebble (and its DNS, answering 127.0.0.1 for every name)
    /// inside; returns the path of its listener's CA, for `ca_root`.
    pub fn start_pebble(&self) -> &'static str {
        self.start_pebble_env(&[("PEBBLE_VA_NOSLEEP", "1")])
    }

    /// [`Sandbox::start_pebble`] with pebble's own environment (its
    /// validation's sleep, `PEBBLE_VA_SLEEPTIME`, say).
    pub fn start_pebble_env(&self, env: &[(&str, &str)]) -> &'static str {
        for (path, text) in crate::machine::pebble::pebble_files() {
            self.write(path, &text);
        }
        self.spawn(&[], &crate::machine::pebble::CHALLTESTSRV);
        let mut pebble_env = vec![("PEBBLE_WFE_NONCEREJECT", "0")];
        pebble_env.extend_from_slice(env);
        self.spawn(
            &pebble_env,
            &[
                "pebble",
                "-config",
                "/etc/pebble/config.json",
                "-dnsserver",
                "127.0.0.1:8053",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, status, _) = self.curl(
                &["--cacert", "/etc/pebble/ca.pem"],
                "https://127.0.0.1:14000/dir",
            );
            if code == 0 && status == 200 {
                return "/etc/pebble/ca.pem";
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not come up (is it installed? tests/run installs it)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Backends on 127.0.0.1 at `ports`, each answering every request with
    /// 200 and `backend PORT` (a Python HTTP server, Debian's python3).
    pub fn start_backends(&self, ports: &[u16]) {
        for port in ports {
            self.start_http(*port, 200);
        }
    }

    /// A server on 127.0.0.1:`port` answering every request with `status`
    /// (an oauth2-proxy that knows nobody: 401).
    pub fn start_status_server(&self, port: u16, status: u16) {
        self.start_http(port, status);
    }

    fn start_http(&self, port: u16, status: u16) {
        const CODE: &str = "import http.server,sys\n\
            p=int(sys.argv[1]); st=int(sys.argv[2])\n\
            class H(http.server.BaseHTTPRequestHandler):\n\
            \x20 def do_GET(s):\n\
            \x20   b=('backend %d' % p).encode() if st == 200 else b'no'\n\
            \x20   s.send_response(st); s.send_header('Content-Length', str(len(b))); s.end_headers(); s.wfile.write(b)\n\
            \x20 do_POST = do_GET\n\
            \x20 def log_message(s,*a): pass\n\
            http.server.ThreadingHTTPServer(('127.0.0.1',p),H).serve_forever()\n";
        self.spawn(
            &[],
            &[
                "/usr/bin/python3",
                "-c",
                CODE,
                &port.to_string(),
                &status.to_string(),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.curl(&[], &format!("http://127.0.0.1:{port}/")).1 != status {
            assert!(
                Instant::now() < deadline,
                "the test server on {port} did not come up (Debian's python3: tests/run installs it)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // PID 1 of the namespace: everything inside goes with it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for mut c in self.children.borrow_mut().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
