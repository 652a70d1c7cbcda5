//! Day two under `--root`: what portico made is recorded, what a later
//! playbook no longer asks for is pruned, files portico did not write are
//! refused, and `remove` gives the tree back. (The same on a booted
//! machine, with firewall and units: tests/booted.rs.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portico(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .output()
        .expect("run portico")
}

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
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(name)
        .display()
        .to_string()
}

/// A writable copy of the Debian fixture tree.
fn debian_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trees/debian12/.");
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

const DEFAULT_SITE: &str = "/etc/nginx/sites-available/portico-default.https.conf";
const DEFAULT_LINK: &str = "/etc/nginx/sites-enabled/portico-default.https.conf";
const SEED_SITE: &str = "/etc/nginx/sites-available/portico-app.internal.https.conf";

#[test]
fn switching_playbooks_leaves_only_the_new_one_s_sites() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--root", root]);
    assert!(at(dir.path(), DEFAULT_SITE).exists());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(at(dir.path(), "/var/lib/portico/managed.json")).unwrap(),
    )
    .unwrap();
    let entry = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == DEFAULT_SITE)
        .expect("the site file is recorded");
    assert_eq!(entry["owner"], "site default");
    assert_eq!(entry["sha256"].as_str().unwrap().len(), 64);

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
        plan.contains(&format!("would change  prune file {DEFAULT_SITE}")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("prune link {DEFAULT_LINK}")),
        "{plan}"
    );
    assert_eq!(files(dir.path(), &[]), before);

    let out = ok(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
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
        .filter(|p| p.starts_with("/var/lib/portico/archive/") && p.ends_with("/default.key"))
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    // And then nothing changes.
    let again = ok(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
    assert!(again.contains("\n0 changed,"), "{again}");
}

#[test]
fn a_file_portico_did_not_write_is_refused_then_adopted_with_a_copy_kept() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--root", root]);
    let mine = at(dir.path(), SEED_SITE);
    std::fs::write(&mine, "server { listen 443; } # mine\n").unwrap();
    let before = files(dir.path(), &[]);
    let out = portico(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{SEED_SITE}: exists, and site app.internal wants this path"
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
    assert!(out.contains(&format!("adopt {SEED_SITE}")), "{out}");
    assert!(std::fs::read_to_string(&mine)
        .unwrap()
        .starts_with("# Managed by portico"));
    let copies: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.starts_with("/var/lib/portico/archive/") && p.ends_with(SEED_SITE))
        .collect();
    assert_eq!(copies.len(), 1);
    let copy = std::fs::read_to_string(at(dir.path(), &copies[0])).unwrap();
    assert_eq!(copy, "server { listen 443; } # mine\n");
}

#[test]
fn an_edited_file_is_archived_not_deleted_when_pruned() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--root", root]);
    let site = at(dir.path(), DEFAULT_SITE);
    let mut text = std::fs::read_to_string(&site).unwrap();
    text.push_str("# a note someone added\n");
    std::fs::write(&site, &text).unwrap();
    let out = ok(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
    assert!(out.contains("edited since portico wrote it"), "{out}");
    let kept: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.ends_with(DEFAULT_SITE) && p.starts_with("/var/lib/portico/archive"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(at(dir.path(), &kept[0])).unwrap(),
        text
    );
}

#[test]
fn remove_gives_the_tree_back_and_purge_takes_the_keys_too() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    // What the host has anyway once portico keeps state there.
    std::fs::create_dir_all(at(dir.path(), "/var/lib")).unwrap();
    let pristine = files(dir.path(), &[]);
    ok(&["apply", "--root", root, &seed("mtls-api.toml")]);
    let key = "/etc/ssl/portico/private/api.key";
    assert!(at(dir.path(), key).exists());

    let out = ok(&["remove", "--root", root]);
    assert!(
        out.contains("(site api.example.com; portico remove)"),
        "{out}"
    );
    assert_eq!(
        files(dir.path(), &["/var/lib/portico"]),
        pristine,
        "remove leaves only portico's state directory behind"
    );
    let keys: Vec<String> = files(dir.path(), &[])
        .into_iter()
        .filter(|p| p.ends_with("/api.key"))
        .collect();
    assert_eq!(keys.len(), 1, "the key is archived: {keys:?}");
    assert!(keys[0].starts_with("/var/lib/portico/archive/"));
    // Nothing left to remove.
    let again = ok(&["remove", "--root", root]);
    assert!(again.contains("\n0 changed,"), "{again}");

    ok(&["apply", "--root", root, &seed("mtls-api.toml")]);
    ok(&["remove", "--purge", "--root", root]);
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
    ok(&["apply", "--root", root]);
    // What a portico without a manifest left behind.
    std::fs::remove_file(at(dir.path(), "/var/lib/portico/managed.json")).unwrap();
    ok(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
    assert!(!at(dir.path(), DEFAULT_SITE).exists());
    assert!(!at(dir.path(), DEFAULT_LINK).exists());
}

#[test]
fn an_unreadable_manifest_stops_apply_naming_it() {
    let dir = debian_tree();
    let root = dir.path().to_str().unwrap();
    ok(&["apply", "--root", root]);
    std::fs::write(at(dir.path(), "/var/lib/portico/managed.json"), "{not json").unwrap();
    let before = files(dir.path(), &[]);
    let out = portico(&["apply", "--root", root, &seed("self-signed-proxy.toml")]);
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
    ok(&["apply", "--root", root]);
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
    assert!(at(
        dir.path(),
        "/etc/nginx/sites-available/portico-default.https.conf"
    )
    .exists());
}
