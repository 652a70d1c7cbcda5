//! Is nginx's port-80 server for a name answering ACME challenges? Asked of
//! 127.0.0.1 with the name as Host: portico's challenge location adds a
//! marker header, so any other server (a distro default site) says no.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::nginx::render::CHALLENGE_MARKER;

const PROBE_PATH: &str = "/.well-known/acme-challenge/portico-probe";

/// One read-only request; false on any error.
pub fn challenge_served(name: &str) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], 80).into();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {PROBE_PATH} HTTP/1.0\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > 16 * 1024 {
            break;
        }
    }
    let marker = format!("{}:", CHALLENGE_MARKER.to_ascii_lowercase());
    String::from_utf8_lossy(&head)
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with(&marker))
}

/// Waits (bounded) until every name is answered; true when they all are.
pub fn wait_until_served(names: &[String], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if names.iter().all(|n| challenge_served(n)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
