//! One DNS exchange with one server: hickory builds and parses the
//! messages, this sends them. Queries go over UDP (resent at growing
//! intervals, TCP when the answer is truncated); updates over TCP, where a
//! lost datagram cannot apply an update twice.

use core::net::SocketAddr;
use std::io;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};

/// A fresh random message ID: an answer must carry it back, so an
/// off-path guess has 1 chance in 65 536.
pub fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source");
    u16::from_be_bytes(b)
}

/// A query for `name`/`rtype`, recursion desired or not.
pub fn query(name: &Name, rtype: RecordType, recursion: bool) -> Message {
    let mut m = Message::new();
    m.set_id(random_id())
        .set_message_type(MessageType::Query)
        .set_recursion_desired(recursion)
        .add_query(Query::query(name.clone(), rtype));
    m
}

/// Sends `msg` over UDP and returns the answer with the same ID (over TCP
/// when the UDP answer was truncated), within `timeout`.
pub async fn ask(server: SocketAddr, msg: &Message, timeout: Duration) -> io::Result<Message> {
    let bytes = msg.to_vec().map_err(io::Error::other)?;
    let parsed = tokio::time::timeout(timeout, udp(server, &bytes, msg))
        .await
        .map_err(|_| timed_out(timeout))??;
    if parsed.truncated() {
        let over_tcp = parse(&tcp(server, &bytes, timeout).await?)?;
        if !answers(msg, &over_tcp) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the answer over TCP is not to our question",
            ));
        }
        return Ok(over_tcp);
    }
    Ok(parsed)
}

/// `answer` is a response to `question`: same ID, the response flag, the
/// same question (names compared without case, as DNS does).
pub fn answers(question: &Message, answer: &Message) -> bool {
    // Name's == ignores case.
    let same = |a: &hickory_proto::op::Query, b: &hickory_proto::op::Query| {
        a.name() == b.name() && a.query_type() == b.query_type()
    };
    answer.id() == question.id()
        && answer.message_type() == MessageType::Response
        && answer.queries().len() == question.queries().len()
        && answer
            .queries()
            .iter()
            .zip(question.queries())
            .all(|(a, b)| same(a, b))
}

/// Sends `bytes` over TCP and returns the raw answer (the caller may need
/// the bytes: a TSIG signature covers them), within `timeout`.
pub async fn tcp(server: SocketAddr, bytes: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    tokio::time::timeout(timeout, crate::host::net::tcp_exchange(server, bytes))
        .await
        .map_err(|_| timed_out(timeout))?
}

/// A message from bytes a server sent.
pub fn parse(bytes: &[u8]) -> io::Result<Message> {
    Message::from_vec(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a DNS answer: {e}")))
}

fn timed_out(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer within {} ms", after.as_millis()),
    )
}

/// Sends the query (again after 200 ms, 400 ms, ...) until an answer to
/// it comes back; the caller bounds the whole.
async fn udp(server: SocketAddr, bytes: &[u8], question: &Message) -> io::Result<Message> {
    crate::host::net::udp_until(server, bytes, |datagram| {
        parse(datagram).ok().filter(|m| answers(question, m))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_response_to_the_same_question_is_an_answer() {
        let name = Name::from_ascii("_acme-challenge.example.test.").unwrap();
        let q = query(&name, RecordType::TXT, false);
        let mut a = q.clone();
        a.set_message_type(MessageType::Response);
        assert!(answers(&q, &a));
        // Names compare without case (0x20 mixing by a server).
        let upper = Name::from_ascii("_ACME-challenge.Example.TEST.").unwrap();
        let mut a2 = query(&upper, RecordType::TXT, false);
        a2.set_id(q.id()).set_message_type(MessageType::Response);
        assert!(answers(&q, &a2));
        // Our own query reflected back, another ID, another question.
        assert!(!answers(&q, &q));
        let mut other_id = a.clone();
        other_id.set_id(q.id().wrapping_add(1));
        assert!(!answers(&q, &other_id));
        let other = Name::from_ascii("evil.test.").unwrap();
        let mut a3 = query(&other, RecordType::TXT, false);
        a3.set_id(q.id()).set_message_type(MessageType::Response);
        assert!(!answers(&q, &a3));
        let mut a4 = query(&name, RecordType::A, false);
        a4.set_id(q.id()).set_message_type(MessageType::Response);
        assert!(!answers(&q, &a4));
    }
}
