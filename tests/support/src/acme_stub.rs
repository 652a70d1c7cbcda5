//! A hostile ACME server, just enough of RFC 8555 for a client to reach the
//! challenge: directory, nonces, account, order, one authorization whose
//! http-01 token is whatever the test says. It never validates anything;
//! it records every request so a test can see what the client did.
//!
//! HTTPS over loopback with its own CA (rcgen), HTTP/1.1, one thread per
//! connection. Stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct Stub {
    /// The directory URL.
    pub url: String,
    /// PEM of the CA that signed the stub's certificate (the client's `ca_root`).
    pub ca_pem: String,
    requests: Arc<Mutex<Vec<String>>>,
    times: Arc<Mutex<Vec<std::time::Instant>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

struct Shared {
    base: String,
    token: String,
    requests: Arc<Mutex<Vec<String>>>,
    /// When each request arrived.
    times: Arc<Mutex<Vec<std::time::Instant>>>,
    nonce: AtomicU64,
    /// The first look at the order after the challenge says `pending` and
    /// asks for this wait (a `Retry-After` value); the next says invalid.
    retry_after: Option<String>,
    order_polls: AtomicU64,
    /// New orders answered `201` before every later one is answered `429`
    /// `rateLimited`, with this `Retry-After` (if any).
    limit: Option<(u64, Option<String>)>,
    /// The problem's detail for those 429s.
    limit_detail: String,
    new_orders: AtomicU64,
}

impl Stub {
    /// Starts a stub whose authorization carries `token`.
    pub fn start(token: &str) -> Stub {
        Self::start_with(token, None)
    }

    /// A stub whose first answer to a poll of the order is `pending` with
    /// `Retry-After: {retry_after}`.
    pub fn start_with(token: &str, retry_after: Option<&str>) -> Stub {
        Self::start_full(token, retry_after, None, "")
    }

    /// A stub that takes `after` new orders and answers every later one
    /// `429 Too Many Requests`, `rateLimited`, with `Retry-After:
    /// {retry_after}` when given (RFC 8555 §6.7).
    pub fn start_rate_limited(token: &str, after: u64, retry_after: Option<&str>) -> Stub {
        Self::start_full(
            token,
            None,
            Some((after, retry_after.map(String::from))),
            "too many new orders (2) from this account in the last 3h0m0s",
        )
    }

    /// [`Stub::start_rate_limited`] with the problem's `detail` (what tells
    /// a limit of the account from one of a set of names).
    pub fn start_rate_limited_saying(token: &str, after: u64, detail: &str) -> Stub {
        Self::start_full(token, None, Some((after, Some("120".into()))), detail)
    }

    fn start_full(
        token: &str,
        retry_after: Option<&str>,
        limit: Option<(u64, Option<String>)>,
        limit_detail: &str,
    ) -> Stub {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hostile ACME test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://127.0.0.1:{}", addr.port());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let times = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            base: base.clone(),
            token: token.to_string(),
            requests: requests.clone(),
            times: times.clone(),
            nonce: AtomicU64::new(0),
            retry_after: retry_after.map(String::from),
            order_polls: AtomicU64::new(0),
            limit,
            limit_detail: limit_detail.to_string(),
            new_orders: AtomicU64::new(0),
        });
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (config, shared) = (config.clone(), shared.clone());
                std::thread::spawn(move || serve(conn, config, &shared));
            }
        });
        Stub {
            url: format!("{base}/dir"),
            ca_pem: ca_cert.pem(),
            requests,
            times,
            stop,
            addr,
        }
    }

    /// `METHOD /path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// When each request of [`Stub::requests`] arrived.
    pub fn times(&self) -> Vec<std::time::Instant> {
        self.times.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve(conn: TcpStream, config: Arc<rustls::ServerConfig>, shared: &Shared) {
    let Ok(tls) = rustls::ServerConnection::new(config) else {
        return;
    };
    let stream = rustls::StreamOwned::new(tls, conn);
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        {
            // Both under one lock: the n-th time is the n-th request's.
            let mut requests = shared.requests.lock().unwrap();
            requests.push(format!("{method} {path}"));
            shared.times.lock().unwrap().push(std::time::Instant::now());
        }
        let (status, location, json) = answer(shared, &method, &path);
        let nonce = shared.nonce.fetch_add(1, Ordering::SeqCst);
        let mut head = format!(
            "HTTP/1.1 {status}\r\nReplay-Nonce: stub-nonce-{nonce}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            if method == "HEAD" { 0 } else { json.len() }
        );
        if let Some(l) = location {
            head.push_str(&format!("Location: {}{l}\r\n", shared.base));
        }
        if let (true, Some((_, Some(wait)))) = (status.starts_with("429"), &shared.limit) {
            head.push_str(&format!("Retry-After: {wait}\r\n"));
        }
        if let (Some(wait), "/order/1") = (&shared.retry_after, path.as_str()) {
            if shared.order_polls.load(Ordering::SeqCst) == 1 {
                head.push_str(&format!("Retry-After: {wait}\r\n"));
            }
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        let _ = stream.write_all(head.as_bytes());
        if method != "HEAD" {
            let _ = stream.write_all(json.as_bytes());
        }
        let _ = stream.flush();
    }
}

/// Status line, Location path and JSON body for one request.
fn answer(s: &Shared, method: &str, path: &str) -> (&'static str, Option<&'static str>, String) {
    let b = &s.base;
    let order = |status: &str| {
        format!(
            r#"{{"status":"{status}","identifiers":[{{"type":"dns","value":"site.test"}}],"authorizations":["{b}/authz/1"],"finalize":"{b}/finalize/1"}}"#
        )
    };
    match (method, path) {
        ("GET", "/dir") => (
            "200 OK",
            None,
            format!(
                r#"{{"newNonce":"{b}/nonce","newAccount":"{b}/acct","newOrder":"{b}/order","revokeCert":"{b}/revoke","keyChange":"{b}/key-change"}}"#
            ),
        ),
        ("HEAD" | "GET", "/nonce") => ("200 OK", None, String::new()),
        ("POST", "/acct") => (
            "201 Created",
            Some("/acct/1"),
            r#"{"status":"valid"}"#.into(),
        ),
        ("POST", "/order")
            if s.limit.as_ref().is_some_and(|(after, _)| {
                s.new_orders.fetch_add(1, Ordering::SeqCst) >= *after
            }) =>
        {
            (
                "429 Too Many Requests",
                None,
                serde_json::json!({
                    "type": "urn:ietf:params:acme:error:rateLimited",
                    "detail": s.limit_detail,
                })
                .to_string(),
            )
        }
        ("POST", "/order") => ("201 Created", Some("/order/1"), order("pending")),
        ("POST", "/authz/1") => (
            "200 OK",
            None,
            serde_json::json!({
                "status": "pending",
                "identifier": {"type": "dns", "value": "site.test"},
                "challenges": [{
                    "type": "http-01",
                    "url": format!("{b}/chall/1"),
                    "token": s.token,
                    "status": "pending",
                }],
            })
            .to_string(),
        ),
        ("POST", "/chall/1") => (
            "200 OK",
            None,
            serde_json::json!({
                "type": "http-01",
                "url": format!("{b}/chall/1"),
                "token": s.token,
                "status": "processing",
            })
            .to_string(),
        ),
        // It never validates: the order ends invalid (first pending, when
        // the test asks for a Retry-After).
        ("POST", "/order/1") => {
            let n = s.order_polls.fetch_add(1, Ordering::SeqCst);
            if s.retry_after.is_some() && n == 0 {
                ("200 OK", None, order("pending"))
            } else {
                ("200 OK", None, order("invalid"))
            }
        }
        _ => (
            "404 Not Found",
            None,
            r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"no such resource"}"#.into(),
        ),
    }
}
