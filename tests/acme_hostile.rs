//! An ACME server is hostile until proven otherwise: a challenge token is a
//! file name in the webroot, so one that is not base64url must never be
//! written, and cleanup removes only what the run created. Driven through
//! the real binary (`portico renew --force --root TREE`) against a stub
//! server that answers with crafted tokens (tests/support/acme_stub.rs).

use support::acme_stub;
use support::report as report_json;

use std::path::{Path, PathBuf};
use std::process::Command;

use acme_stub::Stub;
use serde_json::Value;

const CHALLENGES: &str = "var/lib/portico/acme-challenge/.well-known/acme-challenge";

/// A copy of the Debian tree, the stub's CA and a playbook pointing at it.
fn tree(stub: &Stub) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = support::fixtures::repo("tests/fixtures/trees/debian12");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::write(dir.path().join("stub-ca.pem"), &stub.ca_pem).unwrap();
    let playbook = dir.path().join("site.toml");
    std::fs::write(
        &playbook,
        format!(
            r#"version = 1
[acme]
directory = "{}"
agree_terms = true
ca_root = "/stub-ca.pem"
[[certificate]]
name = "site"
source = "acme"
[[site]]
server_names = ["site.test"]
certificate = "site"
[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#,
            stub.url
        ),
    )
    .unwrap();
    (dir, playbook)
}

/// Every file under `dir` (relative path, bytes).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

fn renew(dir: &Path, playbook: &Path) -> (Option<i32>, Value, String) {
    let out = Command::new(support::bin::exe())
        .args(["renew", "--force", "--json", "--root"])
        .arg(dir)
        .arg(playbook)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stderr}"));
    (out.status.code(), v, stderr)
}

/// Why the certificate task failed, as the report says.
fn reason(report: &Value) -> String {
    reason_of(report, "certificate site")
}

/// What the account creation and state writes add in any run.
fn expected_new(rel: &str) -> bool {
    // The account, its order ledger, the renewal state, and the run's
    // record for the metrics.
    rel.starts_with("var/lib/portico/acme/")
        || rel == "var/lib/portico/orders.json"
        || rel == "var/lib/portico/state.json"
        || rel == "var/lib/portico/runs.json"
}

#[test]
fn a_token_that_is_not_base64url_is_refused_and_nothing_is_written() {
    let hostile = [
        ("absolute", "/etc/nginx/nginx.conf".to_string()),
        ("parent", "../../../../etc/nginx/nginx.conf".to_string()),
        ("parent, short", "..".to_string()),
        ("dot", ".".to_string()),
        ("empty", String::new()),
        ("very long", "A".repeat(20_000)),
        ("slash", "a/b".to_string()),
        ("space", "tok en".to_string()),
        ("NUL", "tok\0en".to_string()),
        ("newline", "tok\nen".to_string()),
        ("non-ASCII", "tökén".to_string()),
    ];
    for (what, token) in hostile {
        let stub = Stub::start(&token);
        let (dir, playbook) = tree(&stub);
        let before = files(dir.path());
        let (code, report, stderr) = renew(dir.path(), &playbook);
        assert_eq!(code, Some(1), "{what}: {report:#}\n{stderr}");
        let t = report_json::task(&report, "certificate site");
        assert_eq!(t["status"], "failed", "{what}: {t}");
        let reason = t["reason"].as_str().unwrap();
        assert!(
            reason.contains(&stub.url),
            "{what}: the server is named: {reason}"
        );
        assert!(reason.contains("not base64url"), "{what}: {reason}");
        assert!(
            reason.len() < 1000,
            "{what}: the token is not echoed whole: {reason}"
        );
        // Nothing the run did not expect to write was written or removed.
        let after = files(dir.path());
        for (rel, bytes) in &before {
            let now = after.iter().find(|(r, _)| r == rel);
            assert_eq!(
                now.map(|(_, b)| b),
                Some(bytes),
                "{what}: {rel} was changed or removed"
            );
        }
        for (rel, _) in &after {
            assert!(
                before.iter().any(|(r, _)| r == rel) || expected_new(rel),
                "{what}: {rel} was written"
            );
        }
        // The authorization was abandoned: the CA was never told to look.
        assert!(
            !stub.requests().iter().any(|r| r == "POST /chall/1"),
            "{what}: {:?}",
            stub.requests()
        );
    }
}

#[test]
fn a_good_token_is_answered_and_removed_and_a_file_already_there_is_left_alone() {
    let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
    let (dir, playbook) = tree(&stub);
    let (code, report, _) = renew(dir.path(), &playbook);
    // The stub never validates: the order ends invalid after the challenge.
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        stub.requests().iter().any(|r| r == "POST /chall/1"),
        "{:?}",
        stub.requests()
    );
    let challenge_dir = dir.path().join(CHALLENGES);
    assert_eq!(
        std::fs::read_dir(&challenge_dir).unwrap().count(),
        0,
        "the answer file is removed after the run"
    );

    // A file the token names that this run did not create: refused, kept.
    let stub = Stub::start("existing");
    let (dir, playbook) = tree(&stub);
    let planted = dir.path().join(CHALLENGES).join("existing");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"not portico's").unwrap();
    let (code, report, _) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{report:#}");
    let reason = reason(&report);
    assert!(reason.contains("already exists"), "{reason}");
    assert_eq!(std::fs::read(&planted).unwrap(), b"not portico's");
    assert!(!stub.requests().iter().any(|r| r == "POST /chall/1"));
}

#[test]
fn a_bad_eab_key_file_is_named_without_echoing_the_key() {
    let stub = Stub::start("tok");
    let (dir, playbook) = tree(&stub);
    let secret = "s3cr3t!key~material";
    std::fs::write(dir.path().join("eab.key"), secret).unwrap();
    let text = std::fs::read_to_string(&playbook).unwrap().replace(
        "ca_root = \"/stub-ca.pem\"",
        "ca_root = \"/stub-ca.pem\"\neab = { kid = \"kid-1\", hmac_key_file = \"/eab.key\" }",
    );
    std::fs::write(&playbook, text).unwrap();
    let (code, report, stderr) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let reason = reason(&report);
    assert!(reason.contains("/eab.key"), "the file is named: {reason}");
    assert!(reason.contains("not base64url"), "{reason}");
    let everything = format!("{report}{stderr}");
    for fragment in ["s3cr3t", "!", "~", "symbol", "offset"] {
        assert!(
            !everything.contains(fragment),
            "{fragment:?} leaked: {everything}"
        );
    }
}

/// The poll times of the order (`POST /order/1`).
fn order_polls(stub: &Stub) -> Vec<std::time::Instant> {
    stub.requests()
        .iter()
        .zip(stub.times())
        .filter(|(r, _)| *r == "POST /order/1")
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn the_order_is_polled_at_once_and_again_when_retry_after_says() {
    // Both forms of RFC 9110's Retry-After: seconds, and an HTTP date (three
    // seconds from when the stub starts; whole seconds, so at least two).
    let in_three = || {
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(3))
    };
    for date_form in [false, true] {
        let (wait, at_least) = match date_form {
            false => ("1".to_string(), 1.0),
            true => (in_three(), 1.5),
        };
        let stub = Stub::start_with("Xk_9-abcDEF0123456789_Z", Some(&wait));
        let (dir, playbook) = tree(&stub);
        let (code, report, _) = renew(dir.path(), &playbook);
        assert_eq!(code, Some(1), "the stub never validates: {report:#}");
        let polls = order_polls(&stub);
        assert_eq!(polls.len(), 2, "{:?}", stub.requests());
        let gap = (polls[1] - polls[0]).as_secs_f64();
        assert!(
            gap >= at_least,
            "Retry-After {wait:?}: polled again after {gap:.3} s"
        );
    }
}

#[test]
fn a_retry_after_past_the_poll_limit_fails_at_once_and_says_so() {
    let stub = Stub::start_with("Xk_9-abcDEF0123456789_Z", Some("3600"));
    let (dir, playbook) = tree(&stub);
    let started = std::time::Instant::now();
    let (code, report, _) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{report:#}");
    let reason = reason(&report);
    assert!(reason.contains("asks to look again in 3600 s"), "{reason}");
    assert_eq!(order_polls(&stub).len(), 1, "{:?}", stub.requests());
    // Not an hour, and not the 90 s poll limit either: it gave up at once.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    // The answer file is removed all the same.
    let challenge_dir = dir.path().join(CHALLENGES);
    assert_eq!(std::fs::read_dir(&challenge_dir).unwrap().count(), 0);
}

/// A webroot another user could change (a service user's `/var/www/html`,
/// a directory anyone can write) is refused before any order, naming the
/// directory, its owner and its mode; one only root (here: the user the
/// test runs as) can write is used. Table-driven: the webroot itself, its
/// challenge directory and a directory above it.
#[test]
fn a_webroot_another_user_could_change_is_refused_before_any_order() {
    use std::os::unix::fs::PermissionsExt;
    let me = nix::unistd::geteuid().as_raw();
    // (what, the webroot, the directory made unsafe, its mode, its owner)
    let mut cases: Vec<(&str, &str, &str, u32, Option<u32>)> = vec![
        (
            "webroot anyone can write",
            "/srv/acme",
            "/srv/acme",
            0o777,
            None,
        ),
        (
            "webroot its group can write",
            "/srv/acme",
            "/srv/acme",
            0o775,
            None,
        ),
        ("a directory above it", "/srv/acme", "/srv", 0o777, None),
        (
            ".well-known anyone can write",
            "/srv/acme",
            "/srv/acme/.well-known",
            0o777,
            None,
        ),
        (
            "the challenge directory",
            "/srv/acme",
            "/srv/acme/.well-known/acme-challenge",
            0o777,
            None,
        ),
        ("only this user", "/srv/acme", "/srv/acme", 0o755, None),
    ];
    if me == 0 {
        // www-data's document root, as Debian's nginx ships it.
        cases.push(("another user's", "/srv/acme", "/srv/acme", 0o755, Some(33)));
    }
    for (what, webroot, unsafe_dir, mode, owner) in cases {
        let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
        let (dir, playbook) = tree(&stub);
        let text = std::fs::read_to_string(&playbook).unwrap();
        let text = text.replace(
            "agree_terms = true\n",
            &format!("agree_terms = true\nwebroot = \"{webroot}\"\n"),
        );
        std::fs::write(&playbook, text).unwrap();
        let host = |p: &str| dir.path().join(p.trim_start_matches('/'));
        std::fs::create_dir_all(host(unsafe_dir)).unwrap();
        std::fs::set_permissions(host(unsafe_dir), std::fs::Permissions::from_mode(mode)).unwrap();
        if let Some(uid) = owner {
            std::os::unix::fs::chown(host(unsafe_dir), Some(uid), Some(uid)).unwrap();
        }
        let (code, report, stderr) = renew(dir.path(), &playbook);
        assert_eq!(code, Some(1), "{what}: {report:#}\n{stderr}");
        let ordered = stub.requests().iter().any(|r| r == "POST /order");
        if what == "only this user" {
            assert!(ordered, "{what}: the order was made: {:?}", stub.requests());
            continue;
        }
        let reason = reason(&report);
        assert!(
            reason.contains(&format!("{unsafe_dir} is owned by"))
                && reason.contains(&format!("mode {mode:04o}"))
                && reason.contains("[acme] webroot"),
            "{what}: {reason}"
        );
        if let Some(uid) = owner {
            assert!(reason.contains(&format!("uid {uid}")), "{what}: {reason}");
        }
        assert!(
            !ordered,
            "{what}: nothing is ordered: {:?}",
            stub.requests()
        );
    }
}

/// The playbook of [`tree`] with `n` certificates `c0`..`c{n-1}` (no sites:
/// a renewal orders them all the same) and `acme_extra` in `[acme]`.
fn many(dir: &Path, playbook: &Path, n: usize, acme_extra: &str) {
    let text = std::fs::read_to_string(playbook).unwrap();
    let head = text.split("[[certificate]]").next().unwrap().replace(
        "agree_terms = true\n",
        &format!("agree_terms = true\n{acme_extra}"),
    );
    let mut out = head;
    for i in 0..n {
        out.push_str(&format!(
            "[[certificate]]\nname = \"c{i}\"\nsource = \"acme\"\nnames = [\"c{i}.test\"]\n"
        ));
    }
    std::fs::write(playbook, out).unwrap();
    let _ = dir;
}

/// How many new orders the stub was sent.
fn new_orders(stub: &Stub) -> usize {
    stub.requests()
        .iter()
        .filter(|r| *r == "POST /order")
        .count()
}

/// The tasks whose reason starts with `prefix`.
fn reasons_starting(report: &Value, prefix: &str) -> usize {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["reason"].as_str().is_some_and(|r| r.starts_with(prefix)))
        .count()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A burst of 2,000 certificates on an account limited to 300 new orders
/// an hour: 300 orders go at once, the other 1,700 wait in the queue (no
/// back-off of their own) with the time the next may go, and a second run
/// in the same hour sends nothing.
#[test]
fn a_burst_of_2000_certificates_orders_300_and_queues_the_rest() {
    let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
    let (dir, playbook) = tree(&stub);
    many(dir.path(), &playbook, 2000, "max_orders_per_hour = 300\n");
    let before = unix_now();
    let (code, report, stderr) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(new_orders(&stub), 300, "orders sent at once");
    assert_eq!(
        reasons_starting(
            &report,
            "queued behind the account's order limit: 300 new orders"
        ),
        1700,
        "{stderr}"
    );
    let queue = &report["queue"];
    assert_eq!(queue["certificates"], 1700, "{queue}");
    let next = queue["next_order_at_unix"].as_i64().unwrap();
    assert!(
        (before + 3600..=unix_now() + 3600).contains(&next),
        "the next order goes an hour after the burst: {next}"
    );
    // Queued is not failed: no back-off of their own.
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("var/lib/portico/state.json")).unwrap(),
    )
    .unwrap();
    let backed_off = state["certificates"]
        .as_object()
        .unwrap()
        .values()
        .filter(|c| c["failures"].as_u64().unwrap_or(0) > 0)
        .count();
    assert_eq!(backed_off, 300, "only the orders sent count as failures");
    // The same hour: nothing more is sent, forced or not.
    let (_, again, _) = renew(dir.path(), &playbook);
    assert_eq!(new_orders(&stub), 300);
    assert_eq!(
        reasons_starting(&again, "queued behind the account's order limit"),
        2000
    );
    let ledger: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("var/lib/portico/orders.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ledger["accounts"][&stub.url]["orders"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
    // `status` shows the queue; a queue alone is no problem.
    let (code, status) = status(dir.path(), &playbook);
    let account = &status["account"];
    assert_eq!(account["orders_last_hour"], 300, "{account}");
    assert_eq!(account["max_orders_per_hour"], 300, "{account}");
    assert_eq!(
        (account["due"].clone(), account["queued"].clone()),
        (2000.into(), 2000.into())
    );
    assert!(account["next_order_at"].is_string(), "{account}");
    assert!(
        !status["problems"].to_string().contains("rate-limited"),
        "{code:?}: {}",
        status["problems"]
    );
}

/// `portico status --json` of the tree: (exit code, JSON).
fn status(dir: &Path, playbook: &Path) -> (Option<i32>, Value) {
    let out = Command::new(support::bin::exe())
        .args(["status", "--json", "--root"])
        .arg(dir)
        .arg(playbook)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON status ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// A `rateLimited` answer (429, Retry-After) holds every order on the
/// account, not the certificate that met it alone: nothing more is sent
/// in this run or the next until the Retry-After, none of them backs off
/// on its own, and the report says when the account may order again.
#[test]
fn a_rate_limited_answer_holds_the_whole_account_until_its_retry_after() {
    for retry_after in [Some("120"), None] {
        let stub = Stub::start_rate_limited("Xk_9-abcDEF0123456789_Z", 2, retry_after);
        let (dir, playbook) = tree(&stub);
        many(dir.path(), &playbook, 12, "");
        let before = unix_now();
        let (code, report, stderr) = renew(dir.path(), &playbook);
        assert_eq!(code, Some(1), "{stderr}");
        let sent = new_orders(&stub);
        // Two taken, the third refused; at most the three others already
        // in flight (four at a time) also meet the limit.
        assert!(
            (3..=6).contains(&sent),
            "{retry_after:?}: {sent} orders sent"
        );
        let limited = reasons_starting(&report, "held with the whole account: ACME new order");
        let held = reasons_starting(&report, "held with the whole account: the CA answered");
        assert!(limited >= 1, "{retry_after:?}: {report:#}");
        assert_eq!(limited + held + 2, 12, "{retry_after:?}: {report:#}");
        let wait = retry_after.map_or(3600, |w| w.parse::<i64>().unwrap());
        let next = report["queue"]["next_order_at_unix"].as_i64().unwrap();
        assert!(
            (before + wait..=unix_now() + wait).contains(&next),
            "{retry_after:?}: next order at {next}"
        );
        let state: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("var/lib/portico/state.json")).unwrap(),
        )
        .unwrap();
        let failed: Vec<&String> = state["certificates"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, c)| c["failures"].as_u64().unwrap_or(0) > 0)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            failed.len(),
            2,
            "only the two orders the CA took failed on their own: {failed:?}"
        );
        // The next run, within the Retry-After: nothing is sent at all.
        let (_, again, _) = renew(dir.path(), &playbook);
        assert_eq!(new_orders(&stub), sent, "{retry_after:?}");
        assert_eq!(
            reasons_starting(
                &again,
                "held with the whole account: the CA answered rateLimited"
            ),
            12
        );
        // `status` says the account is held, and that is a problem while
        // certificates are due.
        let (code, st) = status(dir.path(), &playbook);
        assert_eq!(code, Some(1), "{st}");
        assert!(st["account"]["held_until"].is_string(), "{}", st["account"]);
        assert!(
            st["problems"]
                .to_string()
                .contains("the CA rate-limited the ACME account until"),
            "{}",
            st["problems"]
        );
    }
}

/// A ledger that cannot be read (here: a directory where the file goes)
/// orders nothing: the count is what keeps the account inside its limits.
#[test]
fn an_unreadable_order_ledger_orders_nothing_and_says_why() {
    let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
    let (dir, playbook) = tree(&stub);
    std::fs::create_dir_all(dir.path().join("var/lib/portico/orders.json/x")).unwrap();
    let (code, report, stderr) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{stderr}");
    let reason = reason(&report);
    assert!(
        reason.contains("/var/lib/portico/orders.json")
            && reason.contains("no order without the account's count"),
        "{reason}"
    );
    assert_eq!(new_orders(&stub), 0, "{:?}", stub.requests());
}

/// A limit of one set of names (Let's Encrypt's duplicate-certificate
/// limit) is that certificate's failure alone, with its own back-off: the
/// other certificates on the account are still ordered.
#[test]
fn a_limit_of_one_set_of_names_backs_off_that_certificate_not_the_account() {
    let stub = Stub::start_rate_limited_saying(
        "Xk_9-abcDEF0123456789_Z",
        0,
        "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s",
    );
    let (dir, playbook) = tree(&stub);
    many(dir.path(), &playbook, 3, "");
    let (code, report, stderr) = renew(dir.path(), &playbook);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(new_orders(&stub), 3, "every certificate was tried");
    assert_eq!(
        reasons_starting(&report, "held with the whole account"),
        0,
        "{report:#}"
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("var/lib/portico/state.json")).unwrap(),
    )
    .unwrap();
    for c in ["c0", "c1", "c2"] {
        assert_eq!(state["certificates"][c]["failures"], 1, "{c}: {state}");
    }
    assert!(report["queue"].is_null(), "nothing waits for the account");
}

/// A slot taken for an order that is never sent (here: the webroot is
/// refused first) is given back: a limit of one order an hour still lets
/// the next run try.
#[test]
fn an_order_never_sent_gives_its_slot_back() {
    use std::os::unix::fs::PermissionsExt;
    let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
    let (dir, playbook) = tree(&stub);
    many(
        dir.path(),
        &playbook,
        1,
        "max_orders_per_hour = 1\nwebroot = \"/srv/acme\"\n",
    );
    let webroot = dir.path().join("srv/acme");
    std::fs::create_dir_all(&webroot).unwrap();
    std::fs::set_permissions(&webroot, std::fs::Permissions::from_mode(0o777)).unwrap();
    for run in 0..2 {
        let (_, report, _) = renew(dir.path(), &playbook);
        let reason = reason_of(&report, "certificate c0");
        assert!(
            reason.contains("[acme] webroot /srv/acme"),
            "run {run}: {reason}"
        );
    }
    assert_eq!(new_orders(&stub), 0);
}

/// Why the task named `name` did not succeed.
fn reason_of(report: &Value, name: &str) -> String {
    report_json::task(report, name)["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {report:#}"))
        .to_string()
}

/// The state directory is made 0755 by whichever writer comes first (here
/// the order ledger, before any order): the default webroot is inside it,
/// and nginx, not root, must reach the challenge answers there.
#[test]
fn the_state_directory_stays_reachable_for_nginx_whoever_makes_it() {
    use std::os::unix::fs::PermissionsExt;
    let stub = Stub::start("Xk_9-abcDEF0123456789_Z");
    let (dir, playbook) = tree(&stub);
    let state = dir.path().join("var/lib/portico");
    assert!(!state.exists(), "the fixture tree has no state directory");
    renew(dir.path(), &playbook);
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "{}", state.display());
    for private in ["state.json", "orders.json"] {
        let m = std::fs::metadata(state.join(private))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, 0o600, "{private}");
    }
}
