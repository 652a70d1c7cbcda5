//! Task tests as data, in the style of pyinfra's operation tests: each file
//! in tests/tasks/ holds a playbook (or the embedded default), the facts,
//! the files already on the host, the commands' canned answers, and the
//! exact changes the named task must propose. One harness runs them all.
//!
//! The runner is strict: a command with no answer fails the case, and so
//! does an answer nothing asked for (a stale expectation).
//!
//! Case format (TOML):
//!
//! ```toml
//! description = "what it proves"
//! task = "firewall ufw 80,443"      # the planned task, by its report name
//! playbook = """..."""              # optional; default: the embedded default
//! now = 1800000000                  # the clock
//! [facts]                           # overrides of what the fixture tree gives
//! os_release = "debian-12"          # tests/fixtures/os-release/NAME
//! firewall = "ufw"                  # systemd = true, nginx = "1.22.1"
//! selinux = "enforcing"             # or "permissive" (default: none)
//! [renewal]                         # certificate tasks: as `portico renew` runs them
//! ari = { start = -3600, end = 3600, jitter = 0.25 }   # seconds from now
//! [units."netfilter-persistent.service"]                # the service manager
//! active = "inactive"
//! file = "disabled"
//! [[file]]                          # files on the host before the check
//! path = "/var/lib/apt/lists/deb_Packages"
//! content = ""                      # or content_file = "firewall/ufw-user.rules"
//! age_days = 2
//! [[file]]                          # a directory, with its mode
//! path = "/srv/site"
//! directory = true
//! mode = 0o777
//! [[file]]                          # a certificate and its key
//! certificate = "/etc/ssl/portico/certs/app.crt"
//! key = "/etc/ssl/portico/private/app.key"
//! names = ["app.test"]
//! days = 90
//! age_days = 70
//! [prune]                           # a prune of this manifest entry instead
//! kind = "selinux"                  # (task = "prune selinux port 9443")
//! setting = "port"
//! value = "9443"
//! [[answer]]                        # a command and what it says
//! run = "iptables -S"
//! stdout_file = "firewall/iptables-rules.txt" # or stdout = "..."; exit = 0
//! [expect]
//! changes = ["ufw allow 22/tcp"]    # each change: its command, or what it does
//! stdin_contains = ["..."]          # of commands fed standard input
//! summary_contains = ["..."]
//! error_contains = "..."            # the check fails, saying this
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portico::facts::{self, Facts};
use portico::host::cmd::Output;
use portico::host::fake::FakeClock;
use portico::host::fake::FakeProbe;
use portico::host::fake::FakeProcesses;
use portico::host::fake::FakeRunner;
use portico::host::systemd::{ServiceOp, Systemd, SystemdError, UnitState};
use portico::host::Root;
use portico::playbook;
use portico::task::{Action, Ctx, Task};
use portico::tasks::certificate::Renewal;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    task: String,
    playbook: Option<String>,
    #[serde(default = "default_now")]
    now: i64,
    #[serde(default)]
    facts: FactsCase,
    renewal: Option<RenewalCase>,
    #[serde(default)]
    units: BTreeMap<String, UnitCase>,
    #[serde(default, rename = "file")]
    files: Vec<FileCase>,
    #[serde(default, rename = "answer")]
    answers: Vec<AnswerCase>,
    /// A prune of this manifest entry instead of a planned task.
    prune: Option<portico::owned::Thing>,
    expect: Expect,
}

fn default_now() -> i64 {
    1_800_000_000
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsCase {
    os_release: Option<String>,
    firewall: Option<String>,
    selinux: Option<String>,
    systemd: Option<bool>,
    nginx: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewalCase {
    #[serde(default)]
    force: bool,
    ari: Option<AriCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AriCase {
    start: i64,
    end: i64,
    jitter: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitCase {
    active: String,
    file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCase {
    path: Option<String>,
    content: Option<String>,
    /// A captured fixture under tests/fixtures, as the content.
    content_file: Option<String>,
    certificate: Option<String>,
    key: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default = "default_days")]
    days: u32,
    #[serde(default)]
    key_type: Option<String>,
    #[serde(default)]
    age_days: i64,
    /// `ca`: issued by a CA of its own, as an ACME server's are (default:
    /// self-signed).
    #[serde(default)]
    issuer: Option<String>,
    /// `path` is a directory (made, with `mode` if given).
    #[serde(default)]
    directory: bool,
    /// The mode of what `path` names.
    mode: Option<u32>,
}

fn default_days() -> u32 {
    90
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerCase {
    run: String,
    #[serde(default)]
    exit: i32,
    stdout: Option<String>,
    stdout_file: Option<String>,
    #[serde(default)]
    stderr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    changes: Vec<String>,
    #[serde(default)]
    stdin_contains: Vec<String>,
    #[serde(default)]
    summary_contains: Vec<String>,
    error_contains: Option<String>,
    /// What the changes make portico the owner of (`ufw 443`), when given.
    claims: Option<Vec<String>>,
}

/// The service manager as the case describes it; it is only asked.
struct CaseSystemd(BTreeMap<String, UnitCase>);

impl Systemd for CaseSystemd {
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError> {
        panic!("a check ran {} {unit}", op.name())
    }

    fn state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        Ok(self.0.get(unit).map_or(
            UnitState {
                active: "inactive".into(),
                file: String::new(),
            },
            |u| UnitState {
                active: u.active.clone(),
                file: u.file.clone(),
            },
        ))
    }
}

/// A change as the case writes it: its command, or what it does.
fn describe(action: &Action) -> String {
    match action {
        Action::Run(cmd) => cmd.display(),
        Action::Capture { cmd, path, .. } => format!("{} > {}", cmd.display(), path.display()),
        Action::Service { op, unit } => format!("{} {unit}", op.name()),
        Action::WriteFile { path, mode, .. } => format!("write {} {mode:04o}", path.display()),
        Action::EnsureDir { path, mode } => format!("mkdir {} {mode:04o}", path.display()),
        Action::SetMode { path, mode } => format!("chmod {mode:04o} {}", path.display()),
        Action::SetOwner { path, uid, gid } => format!("chown {uid}:{gid} {}", path.display()),
        Action::Symlink { path, target } => {
            format!("ln -s {} {}", target.display(), path.display())
        }
        Action::Remove { path } => format!("rm {}", path.display()),
        Action::Move { from, to } => format!("mv {} {}", from.display(), to.display()),
        Action::RemoveDir { path } => format!("rmdir {}", path.display()),
        Action::RemoveTree { path } => format!("rm -r {}", path.display()),
        Action::ReloadNginx => "reload nginx".into(),
        Action::Obtain(job) => format!("obtain {}", job.names.join(" ")),
        Action::WriteTree { path, files, .. } => {
            format!("write tree {} ({} files)", path.display(), files.len())
        }
        Action::TestNginx { candidate: None } => "nginx -t".into(),
        Action::TestNginx { candidate: Some(c) } => format!("nginx -t with {}", c.display()),
        Action::WritePair { name, .. } => format!("write pair {name}"),
    }
}

/// Writes the case's files under `root`.
fn lay_out(case: &Case, root: &Path) {
    let put = |path: &str, bytes: &[u8], age_days: i64| {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs((case.now - age_days * 86_400) as u64);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    };
    for f in &case.files {
        if let (Some(path), true) = (&f.path, f.directory) {
            let p = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&p).unwrap();
            if let Some(mode) = f.mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            continue;
        }
        if let Some(path) = &f.path {
            let content = match &f.content_file {
                Some(rel) => {
                    std::fs::read(support::fixtures::repo("tests/fixtures").join(rel)).unwrap()
                }
                None => f.content.clone().unwrap_or_default().into_bytes(),
            };
            put(path, &content, f.age_days);
        }
        if let (Some(cert), Some(key)) = (&f.certificate, &f.key) {
            let key_type: playbook::KeyType = match &f.key_type {
                Some(k) => toml::Value::String(k.clone()).try_into().unwrap(),
                None => playbook::KeyType::EcdsaP256,
            };
            let not_before = case.now - f.age_days * 86_400;
            let (cert_pem, key_pem) = match f.issuer.as_deref() {
                Some("ca") => ca_issued(&f.names, key_type, f.days, not_before),
                _ => {
                    let issued = portico::tls::self_signed(
                        &f.names.iter().cloned().collect(),
                        key_type,
                        f.days,
                        not_before,
                    )
                    .unwrap();
                    (issued.cert_pem, issued.key_pem)
                }
            };
            // portico's own certificates are laid out as it lays them out:
            // one pair, reached through the stable names.
            let managed = cert
                .strip_prefix("/etc/ssl/portico/certs/")
                .and_then(|n| n.strip_suffix(".crt"));
            if let Some(name) = managed {
                portico::tasks::pair::install(
                    &Root::new(root),
                    name,
                    cert_pem.as_bytes(),
                    key_pem.as_bytes(),
                )
                .unwrap();
                continue;
            }
            put(cert, cert_pem.as_bytes(), 0);
            put(key, key_pem.as_bytes(), 0);
            use std::os::unix::fs::PermissionsExt;
            let k = root.join(key.trim_start_matches('/'));
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::set_permissions(k.parent().unwrap(), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
    }
}

/// A certificate for `names` issued by a CA of its own (as an ACME
/// server's are), valid `days` from `not_before`, and its key.
fn ca_issued(
    names: &[String],
    key: playbook::KeyType,
    days: u32,
    not_before: i64,
) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "stand-in ACME CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let alg = match key {
        playbook::KeyType::Rsa2048 | playbook::KeyType::Rsa3072 | playbook::KeyType::Rsa4096 => {
            &rcgen::PKCS_RSA_SHA256
        }
        playbook::KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        _ => &rcgen::PKCS_ECDSA_P256_SHA256,
    };
    let leaf_key = match key {
        playbook::KeyType::Rsa2048 | playbook::KeyType::Rsa3072 | playbook::KeyType::Rsa4096 => {
            // rcgen makes no RSA keys: the project's own maker does.
            let pem =
                portico::tls::self_signed(&names.iter().cloned().collect(), key, 1, not_before)
                    .unwrap()
                    .key_pem;
            KeyPair::from_pem_and_sign_algo(&pem, alg).unwrap()
        }
        _ => KeyPair::generate_for(alg).unwrap(),
    };
    let mut leaf = CertificateParams::new(names.to_vec()).unwrap();
    leaf.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    leaf.not_after =
        time::OffsetDateTime::from_unix_timestamp(not_before + i64::from(days) * 86_400).unwrap();
    let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
    (
        format!("{}{}", leaf.pem(), ca.pem()),
        leaf_key.serialize_pem(),
    )
}

fn facts_of(case: &Case, root: &Root) -> Facts {
    let os = case.facts.os_release.as_deref().unwrap_or("debian-12");
    let etc = root.base().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(
        support::fixtures::repo("tests/fixtures/os-release").join(os),
        etc.join("os-release"),
    )
    .unwrap();
    std::fs::write(etc.join("hostname"), "web1.example.com\n").unwrap();
    let mut f = facts::gather(root, &FakeRunner::new());
    if let Some(fw) = &case.facts.firewall {
        use portico::facts::FirewallBackend as B;
        f.firewall = match fw.as_str() {
            "ufw" => B::Ufw,
            "firewalld" => B::Firewalld,
            "iptables" => B::Iptables,
            "nftables" => B::Nftables,
            other => panic!("unknown firewall {other}"),
        };
    }
    if let Some(s) = case.facts.systemd {
        f.systemd = s;
    }
    if let Some(mode) = &case.facts.selinux {
        f.selinux = match mode.as_str() {
            "enforcing" => portico::facts::selinux::Mode::Enforcing,
            "permissive" => portico::facts::selinux::Mode::Permissive,
            other => panic!("unknown SELinux mode {other}"),
        };
    }
    if let Some(v) = &case.facts.nginx {
        f.nginx.installed = true;
        f.nginx.version = Some(v.clone());
        f.nginx.http2 = true;
    }
    f
}

/// The planned task the case names.
fn task_of(case: &Case, facts: &Facts) -> Box<dyn Task> {
    let text = case
        .playbook
        .clone()
        .unwrap_or_else(|| playbook::DEFAULT_PLAYBOOK.to_string());
    let mut pb = playbook::parse("case.toml", &text).unwrap();
    pb.resolve_hostname(&facts.hostname, "test").unwrap();
    if let Some(r) = &case.renewal {
        let name = case
            .task
            .strip_prefix("certificate ")
            .expect("[renewal] is for certificate tasks");
        let c = pb.certificates.iter().find(|c| c.name == name).unwrap();
        let renewal = Renewal {
            force: r.force,
            ari: r.ari.as_ref().map(|a| {
                (
                    portico::acme::policy::Window {
                        start: case.now + a.start,
                        end: case.now + a.end,
                    },
                    a.jitter,
                )
            }),
            // As `portico renew` makes them.
            spread: true,
            ..Renewal::default()
        };
        return Box::new(portico::plan::certificate_task(
            &pb,
            &portico::plan::CertificateShared::of(&pb),
            c,
            case.now,
            renewal,
        ));
    }
    if let Some(thing) = &case.prune {
        let entry = portico::manifest::Entry {
            thing: thing.clone(),
            owner: "case".into(),
            disposal: portico::owned::Disposal::Remove,
            sha256: None,
            target: None,
        };
        let (before, after) = portico::tasks::prune::tasks(
            vec![entry],
            Path::new("/var/lib/portico/archive/case"),
            false,
            facts.distro.family,
            "portico remove",
            &portico::task::TaskId::NginxTest,
        );
        return before
            .into_iter()
            .chain(after)
            .find(|t| t.id().to_string() == case.task)
            .unwrap_or_else(|| panic!("no prune task {:?}", case.task));
    }
    portico::plan::plan(&pb, facts, case.now)
        .into_iter()
        .find(|t| t.id().to_string() == case.task)
        .unwrap_or_else(|| panic!("the plan has no task {:?}", case.task))
}

fn run_case(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut case: Case = toml::from_str(&text).map_err(|e| format!("not a case: {e}"))?;
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let facts = facts_of(&case, &root);
    lay_out(&case, dir.path());
    let mut runner = FakeRunner::new();
    for a in &case.answers {
        let stdout = match (&a.stdout, &a.stdout_file) {
            (Some(s), _) => s.clone(),
            (None, Some(f)) => {
                std::fs::read_to_string(support::fixtures::repo("tests/fixtures").join(f)).unwrap()
            }
            (None, None) => String::new(),
        };
        runner = runner.answer(
            &a.run,
            Output {
                code: Some(a.exit),
                stdout,
                stderr: a.stderr.clone(),
            },
        );
    }
    let systemd = CaseSystemd(std::mem::take(&mut case.units));
    let clock = FakeClock::at(case.now);
    let (procs, probe) = (FakeProcesses::default(), FakeProbe::default());
    let ctx = Ctx {
        root: &root,
        runner: &runner,
        systemd: &systemd,
        clock: &clock,
        procs: &procs,
        probe: &probe,
        facts: &facts,
        live_host: true,
        // Root's view when the tests run as root; as another user the laid
        // out files are that user's, and portico as that user does not ask
        // for root's ownership either.
        is_root: {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(dir.path()).is_ok_and(|m| m.uid() == 0)
        },
        mode: portico::task::Mode::Apply,
        // As with --diff: each task's diff is made too (and must not fail).
        diffs: true,
    };
    let task = task_of(&case, &facts);
    let result = task.check(&ctx);
    let asked: Vec<String> = runner.calls().iter().map(|c| c.display()).collect();
    let unused: Vec<&str> = case
        .answers
        .iter()
        .map(|a| a.run.as_str())
        .filter(|a| !asked.iter().any(|c| c == a))
        .collect();
    if !unused.is_empty() {
        return Err(format!(
            "answers nothing asked for: {unused:?}; asked: {asked:?}"
        ));
    }
    // Asked but not answered: even a query the code tolerates failing
    // (`sshd -T`) must be part of the case, or the case proves less than
    // it says.
    let unanswered: Vec<&String> = asked
        .iter()
        .filter(|c| !case.answers.iter().any(|a| &a.run == *c))
        .collect();
    if !unanswered.is_empty() {
        return Err(format!("asked with no answer in the case: {unanswered:?}"));
    }
    match (result, &case.expect.error_contains) {
        (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => Ok(()),
        (Err(e), _) => Err(format!("the check failed: {e}; asked: {asked:?}")),
        (Ok(changes), Some(want)) => Err(format!(
            "expected a failure saying {want:?}, got {} changes",
            changes.len()
        )),
        (Ok(changes), None) => {
            let got: Vec<String> = changes.iter().map(|c| describe(&c.action)).collect();
            if got != case.expect.changes {
                return Err(format!(
                    "changes differ\n  want: {:?}\n   got: {got:?}",
                    case.expect.changes
                ));
            }
            let stdins: String = changes
                .iter()
                .filter_map(|c| match &c.action {
                    Action::Run(cmd) => cmd.stdin.clone(),
                    _ => None,
                })
                .collect();
            for want in &case.expect.stdin_contains {
                if !stdins.contains(want.as_str()) {
                    return Err(format!("no {want:?} in what the commands read: {stdins}"));
                }
            }
            // A claim the task does not own never reaches the manifest
            // (only wanted things are recorded), so remove could not undo it.
            let owned: Vec<portico::owned::Thing> =
                task.owns().into_iter().map(|o| o.thing).collect();
            if let Some(stray) = changes
                .iter()
                .flat_map(|c| &c.claims)
                .find(|t| !owned.contains(t))
            {
                return Err(format!(
                    "a change claims {stray}, which the task does not own: the manifest would never record it"
                ));
            }
            if let Some(want) = &case.expect.claims {
                let got: Vec<String> = changes
                    .iter()
                    .flat_map(|c| &c.claims)
                    .map(|t| match t {
                        portico::owned::Thing::Port { backend, port } => {
                            format!("{backend} {port}")
                        }
                        other => other.to_string(),
                    })
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if &got != want {
                    return Err(format!("claims differ\n  want: {want:?}\n   got: {got:?}"));
                }
            }
            let summaries: String = changes.iter().map(|c| format!("{}\n", c.summary)).collect();
            for want in &case.expect.summary_contains {
                if !summaries.contains(want.as_str()) {
                    return Err(format!("no {want:?} in the summaries:\n{summaries}"));
                }
            }
            Ok(())
        }
    }
}

#[test]
fn every_task_case_proposes_exactly_its_changes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::fixtures::repo("tests/tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "only {} cases", files.len());
    let failures = RefCell::new(Vec::new());
    for f in &files {
        if let Err(e) = run_case(f) {
            failures
                .borrow_mut()
                .push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    let failures = failures.into_inner();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_says_what_it_proves() {
    for e in std::fs::read_dir(support::fixtures::repo("tests/tasks")).unwrap() {
        let p = e.unwrap().path();
        let case: Case = toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert!(
            case.description.len() > 20,
            "{}: say what it proves",
            p.display()
        );
    }
}

/// The renewal daemon's unit for each systemd the seeds' hosts run: what
/// that version does not know is left out (or named as it knew it), and
/// this machine's `systemd-analyze verify` accepts every rendering without
/// an unknown setting.
#[test]
fn the_daemon_unit_fits_each_systemd_and_verifies() {
    use portico::tasks::daemon_unit::{render_for, weaker_under};
    let dir = tempfile::tempdir().unwrap();
    let here = std::process::Command::new("systemctl")
        .arg("--version")
        .output()
        .expect("systemctl (systemd, which tests/run installs)");
    let here = portico::facts::systemd_version(&String::from_utf8_lossy(&here.stdout)).unwrap();
    for version in [219, 239, 252, 257] {
        let unit = render_for("/usr/bin/true", &[], Some(version)).unwrap();
        let has = |d: &str| unit.lines().any(|l| l.starts_with(d));
        match version {
            219 => {
                assert!(
                    !has("ProtectProc=") && !has("ProtectClock=") && !has("RestrictNamespaces=")
                );
                assert!(
                    has("ProtectSystem=full") && has("ReadWriteDirectories=-/etc/ssl/portico"),
                    "{unit}"
                );
                assert!(
                    has("NoNewPrivileges=yes") && has("PrivateDevices=yes"),
                    "{unit}"
                );
            }
            239 => {
                assert!(!has("ProtectProc=") && !has("ProtectHostname="), "{unit}");
                assert!(
                    has("ProtectSystem=strict")
                        && has("ReadWritePaths=")
                        && has("LockPersonality="),
                    "{unit}"
                );
            }
            _ => assert!(
                has("ProtectProc=invisible") && has("SystemCallFilter=@system-service"),
                "{unit}"
            ),
        }
        let lacks = weaker_under(version);
        assert_eq!(lacks.is_empty(), version >= 247, "{version}: {lacks:?}");
        // This machine's systemd judges every line (it knows all a 257
        // rendering has: nothing in the unit is newer than 247).
        let file = dir.path().join(format!("portico-{version}.service"));
        std::fs::write(&file, &unit).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&file)
            .output()
            .expect("systemd-analyze");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version}: {said}");
        assert!(
            !said.contains("Unknown"),
            "systemd {here} does not know a setting of the unit for {version}: {said}"
        );
    }
}
