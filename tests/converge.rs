//! Day two under `--root`: what portico made is recorded, what a later
//! playbook no longer asks for is pruned, files portico did not write are
//! refused, and `remove` gives the tree back. (The same on a booted
//! machine, with firewall and units: tests/booted.rs.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::bin::portico;

fn ok(args: &[&str]) -> String {
    let out = portico(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "portico {args:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn seed(name: &str) -> String {
    support::fixtures::repo("playbooks")
        .join(name)
        .display()
        .to_string()
}

/// A writable copy of the Debian fixture tree.
fn debian_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = support::fixtures::repo("tests/fixtures/trees/debian12/.");
    let status = Command::new("cp")
        .args(["-a", src.to_str().unwrap(), dir.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// Every path under `root`, relative, except under `skip`.
fn files(root: &Path, skip: &[&str]) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.insert(format!("/{}", p.strip_prefix(root).unwrap().display()));
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out.retain(|p| !skip.iter().any(|s| Path::new(p).starts_with(s)));
    out
}

fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The default playbook's HTTPS site, in the live generation.
const DEFAULT_SITE: &str = "/etc/nginx/portico/live/portico-default.https.conf";
/// The seed's, likewise.
const SEED_SITE: &str = "/etc/nginx/portico/live/portico-app.internal.https.conf";
/// The one file portico adds to nginx's own include directory.
const ENTRY: &str = "/etc/nginx/conf.d/portico.conf";
/// Where an older portico (before generations) put a site, and its link.
const OLD_SITE: &str = "/etc/nginx/sites-available/portico-default.https.conf";
const OLD_LINK: &str = "/etc/nginx/sites-enabled/portico-default.https.conf";

#[test]
fn switching_playbooks_leaves_only_the_new_one_s_sites() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--replace", "--root", root]);
    assert!(at(dir.path(), DEFAULT_SITE).exists());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(at(dir.path(), "/var/lib/portico/managed.json")).unwrap(),
    )
    .unwrap();
    let recorded = |path: &str| {
        manifest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} is not recorded: {manifest}"))
    };
    assert_eq!(recorded("/etc/nginx/portico")["kind"], "tree");
    let entry = recorded(ENTRY);
    assert_eq!(entry["owner"], "nginx configuration");
    assert_eq!(entry["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        recorded("/etc/ssl/portico/pairs/default")["owner"],
        "certificate default"
    );

    // --check shows the removals and touches nothing.
    let before = files(dir.path(), &[]);
    let plan = ok(&[
        "apply",
        "--check",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert!(
        plan.contains("would change  prune tree /etc/ssl/portico/pairs/default"),
        "{plan}"
    );
    assert!(
        plan.contains("prune link /etc/ssl/portico/live/default"),
        "{plan}"
    );
    assert_eq!(files(dir.path(), &[]), before);

    let out = ok(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert!(
        out.starts_with(&format!("playbook: {}\n", seed("self-signed-proxy.toml"))),
        "{out}"
    );
    assert!(at(dir.path(), SEED_SITE).exists());
    let left: Vec<String> = files(dir.path(), &["/var/lib/portico"])
        .into_iter()
        .filter(|p| p.contains("portico-default.") || p.contains("/default."))
        .collect();
    assert!(
        left.is_empty(),
        "the default's files are still there: {left:?}"
    );
    // Its certificate and key are archived, not deleted.
    let archived: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| {
            p.starts_with("/var/lib/portico/archive/")
                && p.contains("/pairs/default/")
                && p.ends_with("/privkey.pem")
        })
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    // And then nothing changes.
    let again = ok(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert!(again.contains("\n0 changed,"), "{again}");
}

#[test]
fn a_file_portico_did_not_write_is_refused_then_adopted_with_a_copy_kept() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    // Someone's own file where portico puts its one include line.
    let mine = at(dir.path(), ENTRY);
    std::fs::write(&mine, "server { listen 443; } # mine\n").unwrap();
    let before = files(dir.path(), &[]);
    let out = portico(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{ENTRY}: exists, and nginx configuration wants this path"
        )),
        "{err}"
    );
    assert!(err.contains("--adopt"), "{err}");
    assert_eq!(
        files(dir.path(), &[]),
        before,
        "a refused run changes nothing"
    );
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "server { listen 443; } # mine\n"
    );

    let out = ok(&[
        "apply",
        "--adopt",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert!(out.contains(&format!("adopt {ENTRY}")), "{out}");
    assert!(std::fs::read_to_string(&mine)
        .unwrap()
        .starts_with("# Managed by portico"));
    assert!(at(dir.path(), SEED_SITE).exists());
    let copies: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.starts_with("/var/lib/portico/archive/") && p.ends_with(ENTRY))
        .collect();
    assert_eq!(copies.len(), 1);
    let copy = std::fs::read_to_string(at(dir.path(), &copies[0])).unwrap();
    assert_eq!(copy, "server { listen 443; } # mine\n");
}

#[test]
fn an_edited_file_is_archived_not_deleted_when_pruned() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    // The compat profile's dhparam file, which the default playbook drops.
    ok(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    let dh = "/etc/nginx/portico-dhparam.pem";
    let mut text = std::fs::read_to_string(at(dir.path(), dh)).unwrap();
    text.push_str("# a note someone added\n");
    std::fs::write(at(dir.path(), dh), &text).unwrap();
    // The embedded default, by its file: a bare apply keeps the installed one.
    let default = support::fixtures::repo("src/playbook/default.toml");
    let out = ok(&[
        "apply",
        "--replace",
        "--root",
        root,
        default.to_str().unwrap(),
    ]);
    assert!(out.contains("edited since portico wrote it"), "{out}");
    let kept: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.ends_with(dh) && p.starts_with("/var/lib/portico/archive"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(at(dir.path(), &kept[0])).unwrap(),
        text
    );
    assert!(!at(dir.path(), dh).exists());
}

#[test]
fn remove_gives_the_tree_back_and_purge_takes_the_keys_too() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    // What the host has anyway once portico keeps state there.
    std::fs::create_dir_all(at(dir.path(), "/var/lib")).unwrap();
    let pristine = files(dir.path(), &[]);
    ok(&["apply", "--replace", "--root", root, &seed("mtls-api.toml")]);
    let key = "/etc/ssl/portico/private/api.key";
    assert!(at(dir.path(), key).exists());

    let out = ok(&["remove", "--root", root]);
    assert!(
        out.contains(
            "delete /etc/nginx/portico and everything in it (nginx configuration; portico remove)"
        ),
        "{out}"
    );
    assert_eq!(
        files(dir.path(), &["/var/lib/portico"]),
        pristine,
        "remove leaves only portico's state directory behind"
    );
    let keys: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.contains("/pairs/api/") && p.ends_with("/privkey.pem"))
        .collect();
    assert_eq!(keys.len(), 1, "the key is archived: {keys:?}");
    assert!(keys[0].starts_with("/var/lib/portico/archive/"));
    // Nothing left to remove.
    let again = ok(&["remove", "--root", root]);
    assert!(again.contains("\n0 changed,"), "{again}");

    ok(&["apply", "--replace", "--root", root, &seed("mtls-api.toml")]);
    // An operator's own file beside the playbook portico installed.
    std::fs::write(at(dir.path(), "/etc/portico/tsig.key"), "secret\n").unwrap();
    let out = ok(&["remove", "--purge", "--root", root]);
    assert!(
        out.contains("left in /etc/portico: tsig.key (not written by portico"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(at(dir.path(), "/etc/portico/tsig.key")).unwrap(),
        "secret\n"
    );
    std::fs::remove_dir_all(at(dir.path(), "/etc/portico")).unwrap();
    assert_eq!(
        files(dir.path(), &[]),
        pristine,
        "purge leaves nothing of portico"
    );
}

#[test]
fn a_tree_from_before_the_manifest_is_taken_over_and_pruned() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    // What a portico without a manifest (and without generations) left
    // behind: a site file with its header, and the link enabling it.
    let old = format!(
        "{}server {{ listen 443; }}\n",
        portico::nginx::render::HEADER
    );
    std::fs::write(at(dir.path(), OLD_SITE), old).unwrap();
    std::os::unix::fs::symlink(OLD_SITE, at(dir.path(), OLD_LINK)).unwrap();
    ok(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert!(!at(dir.path(), OLD_LINK).exists());
    assert!(at(dir.path(), SEED_SITE).exists());
    // Archived, not deleted: nobody can tell what edited it.
    assert!(!at(dir.path(), OLD_SITE).exists());
    let kept = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.ends_with(OLD_SITE) && p.starts_with("/var/lib/portico/archive"))
        .count();
    assert_eq!(kept, 1);
}

#[test]
fn an_unreadable_manifest_stops_apply_naming_it() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--replace", "--root", root]);
    std::fs::write(at(dir.path(), "/var/lib/portico/managed.json"), "{not json").unwrap();
    let before = files(dir.path(), &[]);
    let out = portico(&[
        "apply",
        "--replace",
        "--root",
        root,
        &seed("self-signed-proxy.toml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/var/lib/portico/managed.json: not valid JSON"),
        "{err}"
    );
    assert_eq!(files(dir.path(), &[]), before);
}

#[test]
fn a_manifest_naming_what_portico_never_writes_is_refused() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--replace", "--root", root]);
    let path = at(dir.path(), "/var/lib/portico/managed.json");
    let text = std::fs::read_to_string(&path).unwrap();
    for (forged, why) in [
        (
            r#"{"kind":"file","path":"/etc/passwd","owner":"x"}"#,
            "not a path portico writes",
        ),
        (
            r#"{"kind":"file","path":"/etc/nginx/../passwd","owner":"x"}"#,
            "not a path portico writes",
        ),
        // A metrics file may be anywhere a playbook's [metrics] may name,
        // and nothing else: not a .prom under a system tree, not another name.
        (
            r#"{"kind":"file","path":"/etc/cron.d/x.prom","owner":"metrics"}"#,
            "not a path portico writes",
        ),
        (
            r#"{"kind":"file","path":"/srv/metrics/x.sh","owner":"metrics"}"#,
            "not a path portico writes",
        ),
        (
            r#"{"kind":"link","path":"/srv/metrics/x.prom","owner":"metrics"}"#,
            "not a path portico writes",
        ),
        (
            r#"{"kind":"unit","unit":"ssh.service","owner":"x"}"#,
            "portico only manages portico.service",
        ),
        (
            r#"{"kind":"dir","path":"/etc","owner":"x"}"#,
            "not a directory portico creates",
        ),
    ] {
        std::fs::write(
            &path,
            text.replacen("\"entries\": [", &format!("\"entries\": [{forged},"), 1),
        )
        .unwrap();
        let out = portico(&["remove", "--root", root]);
        assert_eq!(out.status.code(), Some(2), "{forged}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{forged}: {err}");
    }
    assert!(at(dir.path(), DEFAULT_SITE).exists());
}
