//! `portico apply --check` on a provisioned host with ufw active, inside one
//! booted machine: `sudo cargo bench --bench apply_check`. The anchors, timed
//! in the same run: `nginx -t` (what a careful operator runs anyway) and one
//! `ufw status` (one start of ufw's Python, what each ufw question used to cost).

use support::machine;

use machine::Machine;
use support::bench::{breakdown, ms, stats};

const RUNS: usize = 20;

fn main() {
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "nginx", "ufw"]);
    m.ok(&["ufw", "allow", "22/tcp"]);
    m.ok(&["ufw", "--force", "enable"]);
    // The embedded default: the host's name and localhost on 443, ufw
    // opened for 80 and 443. A second apply changes nothing.
    m.ok(&["portico", "apply"]);
    let report = m.ok(&["portico", "apply", "--check"]);
    assert!(
        !report.contains("would"),
        "the provisioned host is not converged:\n{report}"
    );
    let timed = |cmd: &str| stats((0..RUNS).map(|_| ms(&m, cmd)).collect());
    let check = timed("portico apply --check");
    let nginx_t = timed("nginx -t -q");
    let ufw = timed("ufw status");
    breakdown(&m, "apply --check", "portico -v apply --check", 0.5);
    println!("\n`apply --check` on a provisioned Debian 12 host, ufw active ({RUNS} runs, median / worst)");
    println!(
        "  portico apply --check   {:>7.1} ms / {:>7.1} ms",
        check.0, check.1
    );
    println!(
        "  anchor: nginx -t        {:>7.1} ms / {:>7.1} ms   portico = {:.2}x",
        nginx_t.0,
        nginx_t.1,
        check.0 / nginx_t.0
    );
    println!(
        "  anchor: ufw status      {:>7.1} ms / {:>7.1} ms   portico = {:.2}x",
        ufw.0,
        ufw.1,
        check.0 / ufw.0
    );
}
