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

/// Waits (bounded) until every name is answered; true when they all are.
pub fn wait_until_served(
    probe: &dyn Probe,
    clock: &dyn Clock,
    names: &[String],
    timeout: Duration,
) -> bool {
    let deadline = clock.monotonic() + timeout;
    loop {
        if names.iter().all(|n| challenge_served(probe, n)) {
            return true;
        }
        if clock.monotonic() >= deadline {
            return false;
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
