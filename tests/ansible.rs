//! Ansible drives portico: a real `ansible-playbook` (ansible-core pinned
//! in the virtualenv tests/ansible/setup.sh makes) on this host runs the
//! collection's role, `portico.edge.portico`, and so its module,
//! `portico_apply`, against a freshly booted machine. Check mode shows the
//! plan and changes nothing; the first run changes the machine; the second
//! changes nothing; a bad playbook fails the task with portico's own words
//! and leaves the installed playbook as it was.
//!
//! The machine has no SSH server and only loopback, so Ansible reaches it
//! the way the harness does, through `nsenter` into its init's namespaces
//! (tests/ansible/connection_plugins/nspawn_machine.py, test-only). Python,
//! which Ansible needs on a managed host, comes from the machine's offline
//! apt repository.
#![cfg(feature = "system")]

use support::https::Request;
use support::machine;

use std::path::{Path, PathBuf};
use std::process::Command;

use machine::Machine;

const VENV: &str = "/var/cache/portico-tests/ansible-venv";

const SITE: &str = "\
- name: portico on a booted machine
  hosts: machine
  gather_facts: false
  roles:
    - role: portico.edge.portico
";

use support::fixtures::repo;

/// The pinned ansible-playbook; never skipped for want of it.
fn ansible_playbook() -> PathBuf {
    let path = Path::new(VENV).join("bin/ansible-playbook");
    assert!(
        path.exists(),
        "{} is missing: run tests/ansible/setup.sh (tests/run does), which installs the pinned \
         ansible-core in {VENV}",
        path.display()
    );
    path
}

/// A controller directory: Ansible's configuration, the inventory, the
/// site playbook.
fn controller(m: &Machine) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[defaults]\n\
         inventory = {inventory}\n\
         collections_path = {collections}\n\
         connection_plugins = {plugins}\n\
         local_tmp = {tmp}\n\
         nocolor = true\n\
         retry_files_enabled = false\n\
         stdout_callback = default\n",
        inventory = dir.path().join("inventory.ini").display(),
        collections = repo("ansible").display(),
        plugins = repo("tests/ansible/connection_plugins").display(),
        tmp = dir.path().join("tmp").display(),
    );
    std::fs::write(dir.path().join("ansible.cfg"), cfg).unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        format!(
            "machine ansible_host={} ansible_connection=nspawn_machine \
             ansible_python_interpreter=/usr/bin/python3\n",
            m.leader()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("site.yml"), SITE).unwrap();
    dir
}

/// What one ansible-playbook run printed, and its PLAY RECAP line.
struct Run {
    success: bool,
    output: String,
    recap: String,
}

impl Run {
    /// A PLAY RECAP counter: `changed`, `failed`, ...
    fn count(&self, what: &str) -> u32 {
        let prefix = format!("{what}=");
        self.recap
            .split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what}= in the recap {:?}:\n{}", self.recap, self.output))
    }
}

/// Runs the site playbook with the role's variables (`portico_playbook`,
/// the binary this test build made) and the extra arguments.
fn play(dir: &Path, playbook: &str, args: &[&str]) -> Run {
    let vars = serde_json::json!({
        "portico_binary": support::bin::exe(),
        "portico_playbook": playbook,
    });
    std::fs::write(dir.join("vars.json"), vars.to_string()).unwrap();
    let out = Command::new(ansible_playbook())
        .current_dir(dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env_remove("ANSIBLE_FORCE_COLOR")
        // ansible-core refuses to start without a UTF-8 locale.
        .env("LC_ALL", "C.UTF-8")
        .args(["-e", "@vars.json"])
        .args(args)
        .arg("site.yml")
        .output()
        .expect("running ansible-playbook");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let recap = output
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.starts_with("machine "))
        .unwrap_or_else(|| panic!("no PLAY RECAP line for the machine:\n{output}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Run {
        success: out.status.success(),
        output,
        recap,
    }
}

/// Every path under /etc with its size and mode: what check mode must
/// leave as it found it.
fn etc(m: &Machine) -> String {
    m.ok(&[
        "sh",
        "-c",
        "find /etc -xdev -printf '%p %s %m %l\\n' | sort",
    ])
}

#[test]
fn ansible_checks_applies_converges_and_reports_portico_errors() {
    ansible_playbook();
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "python3"]);
    let dir = controller(&m);
    let playbook = std::fs::read_to_string(repo("playbooks/self-signed-proxy.toml")).unwrap();

    // Check mode: the plan, with portico's diffs, and nothing changed. The
    // harness's /usr/local/bin/portico is this build, so the role's copy
    // finds it in place and the module can ask portico for its plan.
    let before = etc(&m);
    let check = play(dir.path(), &playbook, &["--check", "--diff"]);
    eprintln!("check mode:  {}", check.recap);
    assert!(check.success, "check mode failed:\n{}", check.output);
    assert_eq!(check.count("changed"), 1, "{}", check.output);
    // The module's diffs come from portico's one JSON report: every file
    // that would change, the installed playbook among them, and the
    // certificate described rather than dumped.
    for planned in [
        "+++ /etc/portico/playbook.toml",
        "+++ /etc/ssl/portico/live/internal/fullchain.pem",
        "subject CN=127.0.0.1; names 127.0.0.1, app.internal",
        "@@ key material redacted",
        "+++ /etc/nginx/portico/live/portico-app.internal.https.conf",
        // Only root may read the installed playbook (hook arguments):
        // named, never shown.
        "@@ not shown: only root may read it (mode 0600",
    ] {
        assert!(
            check.output.contains(planned),
            "the plan lacks {planned:?}:\n{}",
            check.output
        );
    }
    assert!(
        !check.output.contains("+[[site]]"),
        "the installed playbook's text is in the plan:\n{}",
        check.output
    );
    assert_eq!(etc(&m), before, "check mode changed /etc");
    for absent in [
        "etc/portico/playbook.toml",
        "etc/nginx",
        "etc/ssl/portico",
        "usr/sbin/nginx",
    ] {
        assert!(
            !m.root().join(absent).exists(),
            "check mode made /{absent}:\n{}",
            check.output
        );
    }

    // The first run installs portico (the role's copy, not the harness's)
    // and applies the playbook.
    std::fs::remove_file(m.root().join("usr/local/bin/portico")).unwrap();
    let first = play(dir.path(), &playbook, &[]);
    eprintln!("first run:   {}", first.recap);
    assert!(first.success, "the first run failed:\n{}", first.output);
    assert_eq!(first.count("changed"), 2, "{}", first.output);
    assert_eq!(
        m.ok(&[
            "stat",
            "-c",
            "%a %U",
            "/usr/local/bin/portico",
            "/etc/portico",
            "/etc/portico/playbook.toml"
        ]),
        "755 root\n700 root\n600 root\n"
    );
    let installed = m.ok(&["cat", "/etc/portico/playbook.toml"]);
    assert_eq!(installed.trim_end(), playbook.trim_end());
    // Served: 502 is nginx answering over TLS with no backend on :8080.
    assert_eq!(
        m.https(&Request::get("https://app.internal/").insecure().resolve(
            "app.internal",
            443,
            "127.0.0.1"
        ))
        .status,
        502
    );

    // The second run has nothing left to do.
    let second = play(dir.path(), &playbook, &[]);
    eprintln!("second run:  {}", second.recap);
    assert!(second.success, "the second run failed:\n{}", second.output);
    assert_eq!(second.count("changed"), 0, "{}", second.output);

    // A bad playbook: the task fails with portico's error, and the
    // installed playbook is the one that was applied.
    let bad = playbook.replace(
        "proxy = \"http://127.0.0.1:8080\"",
        "proxy = \"htp://127.0.0.1:8080\"",
    );
    assert_ne!(
        bad, playbook,
        "the seed playbook no longer proxies to :8080"
    );
    let refused = play(dir.path(), &bad, &[]);
    eprintln!("bad playbook: {}", refused.recap);
    assert!(
        !refused.success,
        "a bad playbook passed:\n{}",
        refused.output
    );
    assert_eq!(refused.count("failed"), 1, "{}", refused.output);
    assert_eq!(refused.count("changed"), 0, "{}", refused.output);
    for words in [
        "site[0].location[0].proxy:",
        "is not an http or https URL: it must start with http:// or https://",
    ] {
        assert!(
            refused.output.contains(words),
            "portico's error ({words:?}) is not in the task's failure:\n{}",
            refused.output
        );
    }
    assert_eq!(m.ok(&["cat", "/etc/portico/playbook.toml"]), installed);
}

/// The example's playbook template, rendered by Ansible with hostile
/// inventory values (a quote, a newline, a TOML key behind them): every
/// value stays inside its string, so nobody who edits host_vars or the
/// inventory can add a deploy_hook (which runs as root).
#[test]
fn the_examples_template_keeps_hostile_inventory_values_inside_their_strings() {
    let ansible = ansible_playbook().with_file_name("ansible");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("playbook.toml");
    let hostile =
        "http://127.0.0.1:3000\"\ndeploy_hook = [\"/bin/sh\", \"-c\", \"id > /tmp/pwned\"]\nx = \"";
    let extra = serde_json::json!({
        "frontend_app": hostile,
        "frontend_api": hostile,
        "playbook_dir": dir.path(),
        "ansible_python_interpreter": "/usr/bin/python3",
    });
    let out = Command::new(&ansible)
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("tmp"))
        .args(["localhost", "-c", "local", "-i", "localhost,"])
        .arg("-e")
        .arg(format!(
            "@{}",
            repo("ansible/examples/group_vars/frontends.yml").display()
        ))
        .arg("-e")
        .arg(extra.to_string())
        .args(["-m", "ansible.builtin.copy", "-a"])
        .arg(format!(
            "content={{{{ portico_playbook }}}} dest={}",
            out_file.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let renewal = parsed.get("renewal");
    assert!(
        renewal.and_then(|r| r.get("deploy_hook")).is_none() && parsed.get("deploy_hook").is_none(),
        "a deploy_hook got in:\n{text}"
    );
    let proxy = parsed["site"][0]["location"][0]["proxy"].as_str().unwrap();
    assert_eq!(proxy, hostile, "the value is one string, as given");
}
