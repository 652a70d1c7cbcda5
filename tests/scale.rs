//! `apply --check` stays linear in the sites an applied host has: the
//! check that once read the manifest and the files again for every site
//! (3,000 sites took 7.4 times as long as 1,000) must not come back.
//!
//! Timed as a ratio, since these machines are noisy: the fastest of a few
//! checks at 2,000 sites against the fastest at 500, on trees applied by
//! the same binary. Four times the sites is four times the work (every
//! site's files are read and compared), so linear is 4; the bound allows
//! noise and the logarithms of sorted maps, and a quadratic check (16)
//! fails it by far. The figures themselves are in `cargo bench --bench
//! scale`.

use support::scale::{playbook, run, tree};

/// Four times the sites may take at most this many times as long.
const MOST: f64 = 5.5;

/// The fastest of `runs` checks of `n` applied sites, in seconds.
fn fastest_check(n: usize, runs: usize) -> f64 {
    let bin = support::bin::exe();
    let dir = tree();
    let root = dir.path().to_str().unwrap().to_string();
    let pb = dir.path().join("scale.toml");
    std::fs::write(&pb, playbook(n, "self-signed")).unwrap();
    let pb = pb.to_str().unwrap().to_string();
    let apply = std::process::Command::new(&bin)
        .args(["apply", "--root", &root, &pb])
        .output()
        .unwrap();
    assert!(
        apply.status.success(),
        "apply of {n} sites failed: {}",
        String::from_utf8_lossy(&apply.stderr)
    );
    (0..runs)
        .map(|_| run(&bin, &["apply", "--check", "--root", &root, &pb]).0)
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn the_check_of_an_applied_host_grows_linearly_with_its_sites() {
    let small = fastest_check(500, 5);
    let large = fastest_check(2_000, 5);
    let ratio = large / small;
    eprintln!("apply --check: 500 sites {small:.3} s, 2,000 sites {large:.3} s, ratio {ratio:.2}");
    assert!(
        ratio <= MOST,
        "2,000 sites took {ratio:.2} times as long as 500 ({large:.3} s against {small:.3} s); \
         linear is 4, at most {MOST} is allowed"
    );
}
