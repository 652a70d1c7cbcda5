//! The network probe seam: one plain HTTP request to nginx's port 80 on
//! loopback, asked with a given Host, or the certificate nginx serves on a
//! port for a name. What the answers mean is decided elsewhere
//! (`acme::probe`, `status`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Asks the local web server.
pub trait Probe: Send + Sync {
    /// `GET path` on 127.0.0.1:80 with `Host: host`; the response head
    /// (status line and headers), or `None` when nothing answered.
    fn head(&self, host: &str, path: &str) -> Option<String>;

    /// The leaf certificate (DER) 127.0.0.1:`port` presents for
    /// `server_name` (SNI); `None` when nothing answered with one.
    fn served_certificate(&self, port: u16, server_name: &str) -> Option<Vec<u8>>;
}

/// The real network, loopback only.
#[derive(Debug, Default)]
pub struct LoopbackProbe;

impl Probe for LoopbackProbe {
    fn head(&self, host: &str, path: &str) -> Option<String> {
        let addr: SocketAddr = ([127, 0, 0, 1], 80).into();
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
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
        Some(String::from_utf8_lossy(&head).into_owned())
    }

    fn served_certificate(&self, port: u16, server_name: &str) -> Option<Vec<u8>> {
        super::tls_probe::served_leaf(port, server_name)
    }
}
