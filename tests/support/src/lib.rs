//! What portico's integration tests share, in one place:
//!
//! - [`bench`]: timing commands in a booted machine, for the benches;
//! - [`bin`]: the portico binary and one way to run it;
//! - [`fixtures`]: files of the repository (playbooks, captured trees);
//! - [`https`]: one request by curl and what came back;
//! - [`report`]: reading `--json` reports;
//! - [`served`]: a playbook rendered into a scratch tree and put before
//!   the installed nginx;
//! - [`promtool`]: Prometheus' lint of a metrics text;
//! - [`acme_stub`]: an ACME server that answers what a test tells it to;
//! - [`sandbox`]: a host of its own in namespaces (root);
//! - [`scale`]: thousands of sites on a fixture tree, timed;
//! - [`machine`]: a booted systemd-nspawn machine (root).

pub mod acme_stub;
pub mod bench;
pub mod bin;
pub mod fixtures;
pub mod https;
pub mod machine;
pub mod promtool;
pub mod report;
pub mod sandbox;
pub mod scale;
pub mod served;

/// `argv`'s standard output; panics with all it said unless it exited 0.
pub fn stdout_of_success(argv: &[&str], out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{argv:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
