//! Is nginx's port-80 server for a name answering ACME challenges? Asked of
//! 127.0.0.1 with the name as Host: portico's challenge location adds a
//! marker header, so any other server (a distro default site) says no.

use std::time::Duration;

use crate::host::{Clock, Probe};
use crate::nginx::render::CHALLENGE_MARKER;

const PROBE_PATH: &str = "/.well-known/acme-challenge/portico-probe";

/// Does this response head carry portico's challenge marker?
pub fn has_marker(head: &str) -> bool {
    let marker = format!("{}:", CHALLENGE_MARKER.to_ascii_lowercase());
    head.lines()
        .any(|l| l.to_ascii_lowercase().starts_with(&marker))
}

/// One read-only request; false on any error.
pub fn challenge_served(probe: &dyn Probe, name: &str) -> bool {
    probe
        .head(name, PROBE_PATH)
        .is_some_and(|head| has_marker(&head))
}

/// The names nginx answers challenges for within `timeout`: each is asked
/// until it answers, all of them in the same wait.
pub fn served_within(
    probe: &dyn Probe,
    clock: &dyn Clock,
    names: &[String],
    timeout: Duration,
) -> std::collections::BTreeSet<String> {
    let deadline = clock.monotonic() + timeout;
    let mut served = std::collections::BTreeSet::new();
    loop {
        for n in names {
            if !served.contains(n) && challenge_served(probe, n) {
                served.insert(n.clone());
            }
        }
        if names.iter().all(|n| served.contains(n)) || clock.monotonic() >= deadline {
            return served;
        }
        clock.sleep(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_in_any_case() {
        assert!(has_marker(
            "HTTP/1.1 404 Not Found\r\nx-portico-challenge: 1\r\n\r\n"
        ));
        assert!(!has_marker(
            "HTTP/1.1 404 Not Found\r\nServer: nginx\r\n\r\n"
        ));
    }
}
