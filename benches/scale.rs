//! portico's own cost as one front end grows: `cargo bench --bench scale`
//! (any user; `PORTICO_SCALE=100,1000` picks the sizes, default 100, 1,000
//! and 10,000 sites). Each size is a copy of the Debian 12 fixture tree
//! driven with `--root` (no nginx runs: its own `nginx -t` and reload are
//! the floor portico cannot go under, measured apart), every site with a
//! self-signed certificate of its own:
//!
//! - `apply` on the empty tree (key generation is most of it);
//! - a second `apply` (nothing to change);
//! - `apply --check` on the applied tree, and on the empty one;
//! - `renew` with as many ACME certificates and nothing due (their files
//!   carried over from certificates a CA of the bench's own signed, so no
//!   CA is asked for an order): the full run, and the short way a settled
//!   host's runs take (src/nothing_due.rs).
//!
//! Each row gives the wall time and the peak RSS of the command, and the
//! time per site against the smallest size measured in the same run (the
//! anchor): 1.0 is linear.

use std::path::Path;

use support::scale::{acme_certificates, playbook, run, tree};

/// One command's row: what, seconds, peak RSS (KiB).
type Row = (&'static str, f64, i64);

/// One row per command for `n` sites.
fn measure(bin: &Path, n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let applied = tree();
    let root = applied.path().to_str().unwrap().to_string();
    let pb = applied.path().join("scale.toml");
    std::fs::write(&pb, playbook(n, "self-signed")).unwrap();
    let pb = pb.to_str().unwrap().to_string();
    let empty = tree();
    let empty_root = empty.path().to_str().unwrap().to_string();
    rows.push((
        "check, empty tree",
        run(bin, &["apply", "--check", "--root", &empty_root, &pb]),
    ));
    rows.push((
        "apply, empty tree",
        run(bin, &["apply", "--replace", "--root", &root, &pb]),
    ));
    rows.push((
        "apply again",
        run(bin, &["apply", "--replace", "--root", &root, &pb]),
    ));
    rows.push((
        "check, applied tree",
        run(
            bin,
            &["apply", "--check", "--replace", "--root", &root, &pb],
        ),
    ));
    let acme = tree();
    let acme_root = acme.path().to_str().unwrap().to_string();
    acme_certificates(acme.path(), n);
    let apb = acme.path().join("acme.toml");
    std::fs::write(&apb, playbook(n, "acme")).unwrap();
    let apb = apb.to_str().unwrap().to_string();
    // The first run carries the files over into live pairs, the second
    // gives the keys their modes and asks the CA about them (ARI; nothing
    // listens here, so it is asked again within the hour), the third
    // finds nothing to do. Then, nothing due: the full run (the memo the
    // third left removed first), and the short way the daemon's and a
    // cron's runs take on a settled host (src/nothing_due.rs).
    let memo = acme
        .path()
        .join(portico::paths::NOTHING_DUE.trim_start_matches('/'));
    for _ in 0..3 {
        run(bin, &["renew", "--root", &acme_root, &apb]);
    }
    std::fs::remove_file(&memo).expect("the settled host's memo");
    rows.push((
        "renew, nothing due, full",
        run(bin, &["renew", "--root", &acme_root, &apb]),
    ));
    rows.push((
        "renew, nothing due",
        run(bin, &["renew", "--root", &acme_root, &apb]),
    ));
    rows.into_iter().map(|(w, (s, r))| (w, s, r)).collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::var("PORTICO_SCALE")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    let bin = support::bin::exe();
    let table: Vec<(usize, Vec<Row>)> = sizes.iter().map(|&n| (n, measure(&bin, n))).collect();
    let anchor = &table[0];
    println!(
        "\nportico at scale ({}; per-site time against {} sites, measured in this run: 1.00 = linear)",
        bin.display(),
        anchor.0
    );
    println!(
        "{:>7}  {:<22} {:>9} {:>10} {:>10}",
        "sites", "command", "seconds", "peak RSS", "per site"
    );
    for (n, rows) in &table {
        for (i, (what, secs, rss)) in rows.iter().enumerate() {
            let base = anchor.1[i].1 / anchor.0 as f64;
            println!(
                "{:>7}  {:<22} {:>9.3} {:>7.1} MiB {:>9.2}x",
                n,
                what,
                secs,
                *rss as f64 / 1024.0,
                (secs / *n as f64) / base
            );
        }
    }
}
