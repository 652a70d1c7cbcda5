//! The metrics file's life on a host tree (`--root`, real files): where it
//! goes by default, what a change of `[metrics] textfile` prunes, what
//! `remove` keeps and `--purge` takes, and what is refused (a file portico
//! did not write, a directory anyone can write, a FIFO). And what `status`
//! makes of what nginx presents over TLS, from a probe fed the certificates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::bin::portico;

const DIR: &str = "var/lib/prometheus/node-exporter";
const DEFAULT: &str = "var/lib/prometheus/node-exporter/portico.prom";

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = support::fixtures::repo("tests/fixtures/trees/debian12/.");
    assert!(Command::new("cp")
        .args(["-a", src.to_str().unwrap(), dir.path().to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    dir
}

fn at(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Two self-signed sites (one a wildcard on another port), and `extra`.
fn playbook(root: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "version = 1\n[firewall]\nbackend = \"none\"\n{extra}\n\
         [[certificate]]\nname = \"a\"\nsource = \"self-signed\"\n\
         [[certificate]]\nname = \"w\"\nsource = \"self-signed\"\n\
         [[certificate]]\nname = \"unused\"\nsource = \"self-signed\"\nnames = [\"u.test\"]\n\
         [[site]]\nserver_names = [\"a.test\"]\ncertificate = \"a\"\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n\
         [[site]]\nserver_names = [\"*.w.test\"]\ncertificate = \"w\"\nlisten = 8443\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
    );
    let file = root.join("playbook.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `portico ARGS --root ROOT PLAYBOOK`: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = portico(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply(root: &Path, pb: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["apply", "--replace", "--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(pb.to_str().unwrap());
    run(&args)
}

fn manifest(root: &Path) -> String {
    std::fs::read_to_string(at(root, "var/lib/portico/managed.json")).unwrap()
}

#[test]
fn the_metrics_file_follows_the_playbook_through_apply_change_remove_and_purge() {
    let dir = tree();
    let root = dir.path();
    std::fs::create_dir_all(at(root, DIR)).unwrap();
    let pb = playbook(root, "");
    let (code, out, err) = apply(root, &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(at(root, DEFAULT)).unwrap();
    assert!(text.contains("portico_certificate_not_after_timestamp_seconds{certificate=\"a\",source=\"self-signed\"} "), "{text}");
    assert!(
        text.contains("portico_last_run_timestamp_seconds{command=\"apply\",result=\"success\"} "),
        "{text}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(at(root, DEFAULT)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o7777, 0o644);
    assert!(
        manifest(root).contains(&format!("/{DEFAULT}")),
        "{}",
        manifest(root)
    );

    // Again: nothing changes, the file is written anew.
    let (code, out, _) = apply(root, &pb, &["--json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["changed"], 0, "{report:#}");

    // Another path: the old file is pruned, the new one written.
    std::fs::create_dir_all(at(root, "srv/metrics")).unwrap();
    let pb = playbook(root, "[metrics]\ntextfile = \"/srv/metrics/edge.prom\"\n");
    let (code, out, err) = apply(root, &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!at(root, DEFAULT).exists(), "{out}");
    assert!(out.contains(&format!("remove /{DEFAULT}")), "{out}");
    assert!(at(root, "srv/metrics/edge.prom").exists());

    // remove keeps it, says how the removal went, and forgets renewals.
    let (code, out, err) = run(&["remove", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(at(root, "srv/metrics/edge.prom")).unwrap();
    assert!(
        text.contains("command=\"remove\",result=\"success\""),
        "{text}"
    );
    assert!(!text.contains("portico_certificate_"), "{text}");
    // --purge takes it.
    let (code, out, err) = run(&["remove", "--purge", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!at(root, "srv/metrics/edge.prom").exists(), "{out}");
}

#[test]
fn without_node_exporters_directory_no_metrics_are_written() {
    let dir = tree();
    let root = dir.path();
    let pb = playbook(root, "");
    let (code, out, err) = apply(root, &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!at(root, "var/lib/prometheus").exists());
    assert!(!manifest(root).contains(".prom"), "{}", manifest(root));
    // `textfile = ""` turns it off where the directory is.
    std::fs::create_dir_all(at(root, DIR)).unwrap();
    let pb = playbook(root, "[metrics]\ntextfile = \"\"\n");
    let (code, _, _) = apply(root, &pb, &[]);
    assert_eq!(code, 0);
    assert!(!at(root, DEFAULT).exists());
}

#[test]
fn a_metrics_file_portico_did_not_write_is_refused_then_adopted() {
    let dir = tree();
    let root = dir.path();
    std::fs::create_dir_all(at(root, DIR)).unwrap();
    std::fs::write(at(root, DEFAULT), "mine 1\n").unwrap();
    let pb = playbook(root, "");
    let (code, out, err) = apply(root, &pb, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("/{DEFAULT}: exists")), "{err}");
    assert!(
        err.contains("textfile = \"\""),
        "the way out is named: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(at(root, DEFAULT)).unwrap(),
        "mine 1\n"
    );
    let (code, out, err) = apply(root, &pb, &["--adopt"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(at(root, DEFAULT))
        .unwrap()
        .contains("portico_build_info"));
}

#[test]
fn a_directory_anyone_can_write_gets_no_metrics_and_apply_says_so() {
    let dir = tree();
    let root = dir.path();
    std::fs::create_dir_all(at(root, DIR)).unwrap();
    std::fs::set_permissions(
        at(root, DIR),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let pb = playbook(root, "");
    let (code, out, err) = apply(root, &pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("writable by everyone"), "{err}");
    assert!(!at(root, DEFAULT).exists());
}

#[test]
fn a_fifo_where_the_metrics_file_goes_is_refused_at_once() {
    let dir = tree();
    let root = dir.path();
    std::fs::create_dir_all(at(root, DIR)).unwrap();
    nix::unistd::mkfifo(
        &at(root, DEFAULT),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let pb = playbook(root, "");
    let mut child = Command::new(support::bin::exe())
        .args([
            "apply",
            "--replace",
            "--root",
            root.to_str().unwrap(),
            pb.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("apply hangs on a FIFO at the metrics path");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_ne!(status.code(), Some(0), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// systemd as a host where every unit runs.
struct Running;

impl portico::host::Systemd for Running {
    fn run(
        &self,
        _op: portico::host::systemd::ServiceOp,
        unit: &str,
    ) -> Result<(), portico::host::systemd::SystemdError> {
        panic!("status changes nothing, yet asked systemd about {unit}")
    }
    fn state(
        &self,
        _unit: &str,
    ) -> Result<portico::host::systemd::UnitState, portico::host::systemd::SystemdError> {
        Ok(portico::host::systemd::UnitState {
            active: "active".into(),
            file: "enabled".into(),
        })
    }
}

/// The DER of the first certificate of a PEM file.
fn der(pem_file: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_file).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    pem.contents
}

#[test]
fn status_compares_what_nginx_presents_with_the_file() {
    use portico::host::fake::{FakeClock, FakeProbe, FakeProcesses, FakeRunner};
    let dir = tree();
    let root_dir = dir.path();
    let file = playbook(root_dir, "");
    let (code, out, err) = apply(root_dir, &file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let pb = portico::playbook::parse("p.toml", &std::fs::read_to_string(&file).unwrap()).unwrap();
    let root = portico::host::Root::new(root_dir);
    let facts = portico::facts::gather(&root, &FakeRunner::new());
    let a = der(&at(root_dir, "etc/ssl/portico/live/a/fullchain.pem"));
    let (runner, clock, procs) = (
        FakeRunner::new(),
        FakeClock::at(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        ),
        FakeProcesses::default(),
    );
    // Each case: what the probe gets for (port, name), and what status
    // should make of each certificate.
    type Case = (
        &'static str,
        Vec<((u16, &'static str), Vec<u8>)>,
        [Option<bool>; 3],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "both served as on disk",
            vec![
                ((443, "a.test"), a.clone()),
                ((8443, "portico-probe.w.test"), der(&at(root_dir, "etc/ssl/portico/live/w/fullchain.pem"))),
            ],
            [Some(true), Some(true), None],
            &[],
        ),
        (
            "the wildcard's port presents another certificate",
            vec![((443, "a.test"), a.clone()), ((8443, "portico-probe.w.test"), a.clone())],
            [Some(true), Some(false), None],
            &["certificate w: nginx serves another certificate on port 8443 for portico-probe.w.test"],
        ),
        (
            "nothing answers on 443",
            vec![((8443, "portico-probe.w.test"), der(&at(root_dir, "etc/ssl/portico/live/w/fullchain.pem")))],
            [Some(false), Some(true), None],
            &["certificate a: nothing answered TLS on 127.0.0.1:443 for a.test"],
        ),
    ];
    for (what, served, want, problems) in cases {
        let probe = FakeProbe {
            served: served
                .into_iter()
                .map(|((p, n), d)| ((p, n.to_string()), d))
                .collect(),
            ..FakeProbe::default()
        };
        let ctx = portico::task::Ctx {
            root: &root,
            runner: &runner,
            systemd: &Running,
            clock: &clock,
            procs: &procs,
            probe: &probe,
            facts: &facts,
            live_host: true,
            is_root: false,
            mode: portico::task::Mode::Check,
            diffs: false,
        };
        let status = portico::status::gather(&pb, &ctx, "p.toml", "seed");
        let got: Vec<Option<bool>> = status
            .certificates
            .iter()
            .map(|c| c.served_matches_file)
            .collect();
        assert_eq!(got, want, "{what}: {:?}", status.problems);
        for p in problems {
            assert!(
                status.problems.iter().any(|q| q.contains(p)),
                "{what}: {p} not in {:?}",
                status.problems
            );
        }
        assert_eq!(
            status.exit_code(),
            i32::from(!problems.is_empty()),
            "{what}: {:?}",
            status.problems
        );
        let text = portico::metrics::text(
            Some(&pb),
            Some(&status),
            &ctx,
            &portico::metrics::Runs::default(),
        );
        for (name, m) in ["a", "w"].iter().zip(want) {
            let line = format!(
                "portico_certificate_served_matches_file{{certificate=\"{name}\"}} {}",
                u8::from(m.unwrap())
            );
            assert!(
                text.lines().any(|l| l == line),
                "{what}: {line} not in\n{text}"
            );
        }
    }
}
