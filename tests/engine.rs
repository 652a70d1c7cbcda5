//! The engine's contract: order, check/apply, handlers once and only when
//! notified, dependencies, and no mutation in check mode or on an empty plan.

use std::cell::RefCell;
use std::path::Path;

use portico::engine;
use portico::facts::{self, Facts};
use portico::host::cmd::Command;
use portico::host::fake::FakeClock;
use portico::host::fake::FakeProbe;
use portico::host::fake::FakeProcesses;
use portico::host::fake::FakeRunner;
use portico::host::systemd::{ServiceOp, Systemd, SystemdError, UnitState};
use portico::host::{Output, Root};
use portico::playbook;
use portico::report::Status;
use portico::task::{Action, Change, Ctx, Handler, Mode, Scope, Task, TaskError, TaskId};

/// Records what the engine asked of systemd.
#[derive(Default)]
struct FakeSystemd {
    reloads: RefCell<Vec<String>>,
    starts: RefCell<Vec<String>>,
    /// Every unit reports inactive (a fresh host).
    stopped: bool,
}

impl Systemd for FakeSystemd {
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError> {
        match op {
            ServiceOp::Reload | ServiceOp::Hup => self.reloads.borrow_mut().push(unit.into()),
            ServiceOp::Start => self.starts.borrow_mut().push(unit.into()),
            other => panic!("only reloads and starts are expected here, not {other:?}"),
        }
        Ok(())
    }
    fn state(&self, _unit: &str) -> Result<UnitState, SystemdError> {
        Ok(UnitState {
            active: if self.stopped { "inactive" } else { "active" }.into(),
            file: "enabled".into(),
        })
    }
}

/// A scripted task: logs its checks, returns a fixed list of changes.
struct Scripted<'a> {
    name: &'static str,
    changes: Vec<Action>,
    fail: bool,
    after: Vec<&'static str>,
    notify: Vec<Handler>,
    rollback: bool,
    log: &'a RefCell<Vec<String>>,
}

impl Task for Scripted<'_> {
    fn id(&self) -> TaskId {
        TaskId::Step(self.name)
    }
    fn scope(&self) -> Scope {
        Scope::Files
    }
    fn after(&self) -> Vec<TaskId> {
        self.after.iter().map(|a| TaskId::Step(a)).collect()
    }
    fn notifies(&self) -> Vec<Handler> {
        self.notify.clone()
    }
    fn rolls_back_on_failure(&self) -> bool {
        self.rollback
    }
    fn check(&self, _ctx: &Ctx) -> Result<Vec<Change>, TaskError> {
        self.log.borrow_mut().push(self.name.into());
        if self.fail {
            return Err(TaskError::Refused("broke"));
        }
        Ok(self
            .changes
            .iter()
            .map(|a| Change::new(format!("{a:?}"), a.clone()))
            .collect())
    }
}

fn scripted<'a>(
    name: &'static str,
    changes: Vec<Action>,
    log: &'a RefCell<Vec<String>>,
) -> Scripted<'a> {
    Scripted {
        name,
        changes,
        fail: false,
        after: Vec::new(),
        notify: vec![Handler::ReloadNginx],
        rollback: false,
        log,
    }
}

/// A Debian 12 host in a temp directory.
struct Host {
    dir: tempfile::TempDir,
    root: Root,
    facts: Facts,
    clock: FakeClock,
    procs: FakeProcesses,
    probe: FakeProbe,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let facts = debian_facts(&root);
        Host {
            dir,
            root,
            facts,
            clock: FakeClock::at(1_800_000_000),
            procs: FakeProcesses::default(),
            probe: FakeProbe::default(),
        }
    }

    fn ctx<'a>(&'a self, runner: &'a FakeRunner, systemd: &'a FakeSystemd) -> Ctx<'a> {
        Ctx {
            root: &self.root,
            runner,
            systemd,
            clock: &self.clock,
            procs: &self.procs,
            probe: &self.probe,
            facts: &self.facts,
            live_host: true,
            // Root's view when the tests run as root; as another user the
            // files laid out are that user's, and portico as that user
            // does not ask for root's ownership either.
            is_root: runs_as_root(self.dir.path()),
            mode: portico::task::Mode::Apply,
            diffs: true,
        }
    }

    fn plan(&self) -> Vec<Box<dyn Task>> {
        default_plan(&self.facts)
    }
}

fn debian_facts(root: &Root) -> Facts {
    std::fs::create_dir_all(root.base().join("etc")).unwrap();
    std::fs::copy(
        support::fixtures::repo("tests/fixtures/os-release/debian-12"),
        root.base().join("etc/os-release"),
    )
    .unwrap();
    facts::gather(root, &FakeRunner::new())
}

/// dpkg answers as on a host where nginx is (or is not) installed; `nginx -t` passes.
fn runner(nginx_installed: bool) -> FakeRunner {
    let status = if nginx_installed {
        "install ok installed"
    } else {
        "unknown ok not-installed"
    };
    let fixture = |name: &str| {
        std::fs::read_to_string(support::fixtures::repo("tests/fixtures/nginx").join(name)).unwrap()
    };
    // nginx -V prints on stderr.
    let v = Output {
        code: Some(0),
        stdout: String::new(),
        stderr: fixture("debian12-nginx-1.22.1.txt"),
    };
    FakeRunner::new()
        .answer("dpkg-query -W -f ${Status} nginx", Output::ok(status))
        .answer("nginx -t -q", Output::ok(""))
        .answer("[bind] nginx -t -q", Output::ok(""))
        .answer("nginx -t", Output::ok(""))
        .answer("nginx -T -q", Output::ok(&fixture("debian12-nginx-T.txt")))
        .answer("nginx -V", v)
}

/// The task `name` in `report` was skipped, and its reason contains `because`.
fn assert_skipped(report: &portico::report::Report, name: &str, because: &str) {
    let t = report.tasks.iter().find(|t| t.name == name).unwrap();
    assert_eq!(t.status, Status::Skipped, "{t:?}");
    assert!(t.reason.as_deref().unwrap_or("").contains(because), "{t:?}");
}

#[test]
fn tasks_run_in_order_and_the_handler_runs_once() {
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let log = RefCell::new(Vec::new());
    let write = |p: &str| Action::WriteFile {
        path: p.into(),
        content: b"x".to_vec(),
        mode: 0o644,
    };
    let tasks: Vec<Box<dyn Task>> = vec![
        Box::new(scripted("first", vec![write("/a")], &log)),
        Box::new(scripted("second", vec![], &log)),
        Box::new(scripted("third", vec![write("/b")], &log)),
    ];
    let report = engine::run(&tasks, &ctx, Mode::Apply);
    assert_eq!(*log.borrow(), ["first", "second", "third"]);
    let statuses: Vec<_> = report
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("first", Status::Changed),
            ("second", Status::Unchanged),
            ("third", Status::Changed),
            ("handler: reload nginx", Status::Changed)
        ]
    );
    assert_eq!(
        *systemd.reloads.borrow(),
        ["nginx.service"],
        "reloaded exactly once"
    );
    assert!(host.dir.path().join("a").exists() && host.dir.path().join("b").exists());
    // nginx -t ran before the reload.
    assert!(fake.calls().iter().any(|c| c.display() == "nginx -t -q"));
}

#[test]
fn a_unit_started_after_its_last_change_is_not_reloaded_but_one_changed_after_is() {
    let write = |p: &str| Action::WriteFile {
        path: p.into(),
        content: b"x".to_vec(),
        mode: 0o644,
    };
    let start = Action::Service {
        op: ServiceOp::Start,
        unit: "nginx.service".into(),
    };
    // (tasks in order, is the reload handler run?)
    let cases: [(&[&str], bool); 3] = [
        (&["write", "start"], false),
        (&["start", "write"], true),
        (&["write", "start", "write"], true),
    ];
    for (order, reloads) in cases {
        let host = Host::new();
        let (fake, systemd) = (runner(true), FakeSystemd::default());
        let ctx = host.ctx(&fake, &systemd);
        let log = RefCell::new(Vec::new());
        let names = ["t0", "t1", "t2"];
        let tasks: Vec<Box<dyn Task>> = order
            .iter()
            .zip(names)
            .map(|(what, name)| {
                let mut t = match *what {
                    "write" => scripted(name, vec![write(&format!("/{name}"))], &log),
                    _ => scripted(name, vec![start.clone()], &log),
                };
                if *what == "start" {
                    t.notify = Vec::new();
                }
                Box::new(t) as Box<dyn Task>
            })
            .collect();
        let report = engine::run(&tasks, &ctx, Mode::Apply);
        assert_eq!(*systemd.starts.borrow(), ["nginx.service"], "{order:?}");
        let handler = report.tasks.last().unwrap();
        assert_eq!(handler.name, "handler: reload nginx", "{order:?}");
        if reloads {
            assert_eq!(handler.status, Status::Changed, "{order:?}");
            assert_eq!(*systemd.reloads.borrow(), ["nginx.service"], "{order:?}");
        } else {
            assert_eq!(handler.status, Status::Skipped, "{order:?}");
            assert!(systemd.reloads.borrow().is_empty(), "{order:?}");
        }
    }
}

#[test]
fn no_change_means_no_handler() {
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let log = RefCell::new(Vec::new());
    let tasks: Vec<Box<dyn Task>> = vec![Box::new(scripted("quiet", vec![], &log))];
    let report = engine::run(&tasks, &ctx, Mode::Apply);
    assert_eq!(report.tasks.len(), 1);
    assert!(systemd.reloads.borrow().is_empty());
    assert!(fake.calls().is_empty());
}

#[test]
fn a_failed_task_skips_its_dependents_with_the_reason() {
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let log = RefCell::new(Vec::new());
    let mut broken = scripted("cert", vec![], &log);
    broken.fail = true;
    let mut dependent = scripted(
        "site",
        vec![Action::Run(Command::mutation(["touch", "/x"]))],
        &log,
    );
    dependent.after = vec!["cert"];
    let mut transitive = scripted("link", vec![], &log);
    transitive.after = vec!["site"];
    let independent = scripted("other", vec![], &log);
    let tasks: Vec<Box<dyn Task>> = vec![
        Box::new(broken),
        Box::new(dependent),
        Box::new(transitive),
        Box::new(independent),
    ];
    let report = engine::run(&tasks, &ctx, Mode::Apply);
    assert_eq!((report.failed, report.skipped, report.unchanged), (1, 2, 1));
    assert_eq!(report.tasks[1].status, Status::Skipped);
    assert_eq!(
        report.tasks[1].reason.as_deref(),
        Some("needs \"cert\", which did not succeed")
    );
    assert_eq!(report.tasks[2].status, Status::Skipped);
    assert_eq!(
        *log.borrow(),
        ["cert", "other"],
        "dependents were not even checked"
    );
    assert!(fake.mutating_calls().is_empty());
}

fn default_plan(facts: &Facts) -> Vec<Box<dyn Task>> {
    let mut pb = playbook::parse("default", playbook::DEFAULT_PLAYBOOK).unwrap();
    pb.resolve_hostname("web1.example.com", "test").unwrap();
    portico::plan::plan(&pb, facts, 1_800_000_000)
}

#[test]
fn check_mode_sends_no_mutating_command_and_writes_nothing() {
    let host = Host::new();
    let (fake, systemd) = (
        runner(false),
        FakeSystemd {
            stopped: true,
            ..Default::default()
        },
    );
    let ctx = host.ctx(&fake, &systemd);
    let before = tree(host.dir.path());
    let report = engine::run(&host.plan(), &ctx, Mode::Check);
    assert!(report.changed >= 4, "{report:?}");
    assert_eq!(report.failed, 0);
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
    assert!(systemd.reloads.borrow().is_empty());
    assert_eq!(tree(host.dir.path()), before, "check mode touched the tree");
    let pkg = report
        .tasks
        .iter()
        .find(|t| t.name == "packages nginx")
        .unwrap();
    let reasons = |t: &portico::report::TaskReport| -> Vec<String> {
        t.changes.iter().map(|c| c.reason.clone()).collect()
    };
    assert_eq!(
        reasons(pkg),
        [
            "apt-get update (package lists are missing)",
            "install nginx"
        ],
        "would refresh the empty lists, then install the missing package"
    );
    // A stopped nginx would be started, not reloaded, and --check says so.
    assert_skipped(
        &report,
        "handler: reload nginx",
        "would be started by this run",
    );
    // --check plans the configuration (a diff to show) but never tests it:
    // nginx -t runs only on what a run has written.
    let nginx = report
        .tasks
        .iter()
        .find(|t| t.name == "nginx configuration")
        .unwrap();
    assert_eq!(nginx.status, Status::Changed, "{nginx:?}");
    assert!(
        !fake.calls().iter().any(|c| c.argv[..2] == ["nginx", "-t"]),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn a_second_apply_changes_nothing_and_runs_no_mutating_command() {
    let host = Host::new();
    let systemd = FakeSystemd::default();
    let first = runner(true);
    let report = engine::run(&host.plan(), &host.ctx(&first, &systemd), Mode::Apply);
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(systemd.reloads.borrow().len(), 1);

    let second = runner(true);
    let ctx = host.ctx(&second, &systemd);
    let report = engine::run(&host.plan(), &ctx, Mode::Apply);
    assert_eq!(report.changed, 0, "{report:#?}");
    assert!(second.mutating_calls().is_empty());
    assert_eq!(systemd.reloads.borrow().len(), 1, "no second reload");
    let key = host.dir.path().join("etc/ssl/portico/private/default.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(key.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn a_loosened_key_mode_is_tightened_without_reissuing() {
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    engine::run(&host.plan(), &ctx, Mode::Apply);
    let cert = host.dir.path().join("etc/ssl/portico/certs/default.crt");
    // The key itself, in its pair (the stable name is a link to it).
    let pair = std::fs::canonicalize(host.dir.path().join("etc/ssl/portico/live/default")).unwrap();
    let key = pair.join("privkey.pem");
    let shown = |p: &Path| {
        format!(
            "/{}",
            p.strip_prefix(std::fs::canonicalize(host.dir.path()).unwrap())
                .unwrap()
                .display()
        )
    };
    let cert_before = std::fs::read(&cert).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The directory that holds the key, loosened too: tightened, reported.
    let dir = key.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = engine::run(&host.plan(), &ctx, Mode::Apply);
    let t = report
        .tasks
        .iter()
        .find(|t| t.name == "certificate default")
        .unwrap();
    let reasons: Vec<String> = t.changes.iter().map(|c| c.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            format!("chmod 0755 -> 0700 {}", shown(dir)),
            format!("chmod 0644 -> 0600 {}", shown(&key)),
        ]
    );
    assert_eq!(std::fs::read(&cert).unwrap(), cert_before, "not reissued");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(dir), 0o700);
}

/// Every path under `dir` with its bytes, to compare before and after.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.push((p.display().to_string(), Vec::new()));
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_failing_gate_restores_every_file_of_the_run_byte_for_byte() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let base = host.dir.path();
    std::fs::create_dir_all(base.join("etc/nginx/sites-enabled")).unwrap();
    std::fs::write(base.join("etc/nginx/site.conf"), b"old bytes\n").unwrap();
    std::fs::set_permissions(
        base.join("etc/nginx/site.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let log = RefCell::new(Vec::new());
    let write = |p: &str, c: &[u8]| Action::WriteFile {
        path: p.into(),
        content: c.to_vec(),
        mode: 0o644,
    };
    let writes = scripted(
        "write",
        vec![
            write("/etc/nginx/site.conf", b"new bytes\n"),
            Action::EnsureDir {
                path: "/etc/nginx/new/deeper".into(),
                mode: 0o755,
            },
            write("/etc/nginx/new/deeper/extra.conf", b"extra\n"),
            Action::Symlink {
                path: "/etc/nginx/sites-enabled/site.conf".into(),
                target: "/etc/nginx/site.conf".into(),
            },
        ],
        &log,
    );
    let mut gate = scripted("gate", vec![], &log);
    gate.fail = true;
    gate.rollback = true;
    let tasks: Vec<Box<dyn Task>> = vec![Box::new(writes), Box::new(gate)];
    let report = engine::run(&tasks, &ctx, Mode::Apply);
    let reason = report.tasks[1].reason.clone().unwrap();
    assert!(
        reason.starts_with("broke") && reason.contains("rolled back: "),
        "{reason}"
    );
    assert_eq!(
        std::fs::read(base.join("etc/nginx/site.conf")).unwrap(),
        b"old bytes\n"
    );
    let mode = std::fs::metadata(base.join("etc/nginx/site.conf"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    assert!(
        !base.join("etc/nginx/new").exists(),
        "created directories stay behind"
    );
    assert!(std::fs::symlink_metadata(base.join("etc/nginx/sites-enabled/site.conf")).is_err());
    assert!(
        systemd.reloads.borrow().is_empty(),
        "a rolled-back run reloaded nginx"
    );
}

/// ARI: a fresh ACME certificate is renewed when the CA's suggested window
/// has begun (at this certificate's place in it), not before; without a
/// window, the lifetime rule keeps it.
#[test]
fn check_mode_does_not_test_the_files_it_has_not_written() {
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let report = engine::run(&host.plan(), &ctx, Mode::Check);
    let gate = report
        .tasks
        .iter()
        .find(|t| t.name == "nginx configuration")
        .unwrap();
    assert_eq!(gate.status, Status::Changed, "{gate:?}");
    assert!(!fake.calls().iter().any(|c| c.argv[..2] == ["nginx", "-t"]));
    // Once everything is in place, the same check finds nothing to do.
    engine::run(&host.plan(), &ctx, Mode::Apply);
    let again = engine::run(&host.plan(), &ctx, Mode::Check);
    let gate = again
        .tasks
        .iter()
        .find(|t| t.name == "nginx configuration")
        .unwrap();
    assert_eq!(gate.status, Status::Unchanged, "{gate:?}");
}

/// Whether the tests run as root: the owner of a directory they made.
fn runs_as_root(made: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(made).is_ok_and(|m| m.uid() == 0)
}

// Root only: it gives the binary to other users (chown).
#[cfg(feature = "system")]
#[test]
fn the_daemon_unit_names_only_a_binary_no_one_but_root_can_replace() {
    use portico::tasks::daemon_unit::DaemonUnitTask;
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    let (fake, systemd) = (runner(true), FakeSystemd::default());
    let ctx = host.ctx(&fake, &systemd);
    let put = |rel: &str, dir_mode: u32, uid: u32| {
        let p = host.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"\x7fELF").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            p.parent().unwrap(),
            std::fs::Permissions::from_mode(dir_mode),
        )
        .unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    };
    put("usr/local/bin/portico", 0o755, 0);
    put("home/dev/target/portico", 0o777, 0);
    put("opt/theirs/portico", 0o755, 1000);
    let task = |exe: &str| DaemonUnitTask {
        exe: exe.into(),
        writable: vec!["/srv/acme".into()],
        systemd: None,
    };
    let changes = task("/usr/local/bin/portico").check(&ctx).unwrap();
    let Action::WriteFile { content, .. } = &changes.last().unwrap().action else {
        panic!("{changes:?}")
    };
    let unit = String::from_utf8_lossy(content);
    assert!(
        unit.contains("ExecStart=\"/usr/local/bin/portico\" daemon"),
        "{unit}"
    );
    assert!(
        unit.contains(" -/srv/acme"),
        "the webroot is writable: {unit}"
    );
    for (exe, why) in [
        (
            "/home/dev/target/portico",
            "/home/dev/target is a directory above it, owned by uid 0 (root) with mode 0777",
        ),
        (
            "/opt/theirs/portico",
            "/opt/theirs/portico is the binary, owned by uid 1000",
        ),
        ("/nowhere/portico", "/nowhere/portico does not exist"),
    ] {
        let err = task(exe).check(&ctx).unwrap_err().to_string();
        assert!(err.contains(why), "{exe}: {err}");
        assert!(
            err.contains("not installing the renewal daemon's unit"),
            "{err}"
        );
    }
}
