//! Datagrams and streams to a server the playbook named (a DNS server for
//! DNS-01): the bytes go out here, what they mean is decided by the caller.

use core::net::SocketAddr;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest datagram read (a DNS answer without EDNS is 512 bytes; more
/// room costs nothing).
const DATAGRAM_MAX: usize = 4096;

/// Sends `bytes` to `server` over UDP, again after 200 ms, 400 ms, … (at
/// most 2 s apart), until `accept` takes a datagram that came back; the
/// caller bounds the whole. Anything `accept` refuses (a late answer to
/// another question, noise) is ignored.
pub async fn udp_until<T>(
    server: SocketAddr,
    bytes: &[u8],
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> io::Result<T> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from anyone else, and a closed
    // port comes back as "connection refused" at once.
    socket.connect(server).await?;
    let mut resend = Duration::from_millis(200);
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        socket.send(bytes).await?;
        let deadline = tokio::time::Instant::now() + resend;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(n)) => {
                    if let Some(t) = accept(&buf[..n]) {
                        return Ok(t);
                    }
                }
            }
        }
        resend = (resend * 2).min(Duration::from_secs(2));
    }
}

/// Sends `bytes` over TCP with DNS's two-byte length in front and returns
/// the raw answer framed the same way.
pub async fn tcp_exchange(server: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(server).await?;
    s.set_nodelay(true)?;
    let len = u16::try_from(bytes.len()).map_err(io::Error::other)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut answer).await?;
    Ok(answer)
}
