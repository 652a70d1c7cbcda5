//! The HTTPS client portico talks ACME through: instant-acme's own stack
//! (hyper + rustls), with one difference that matters for speed. Every JWS
//! POST goes out as a HEADERS and a DATA frame; with Nagle on, the second
//! waits for the server's delayed ACK, 40 ms per request on Linux, about
//! 400 ms per issuance. TCP_NODELAY sends both at once.

use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// A client trusting the platform's roots, or only the PEM `ca_root` (a
/// private ACME server's CA; may hold several certificates).
pub fn client(ca_root: Option<&[u8]>) -> Result<Box<dyn HttpClient>, String> {
    let builder = HttpsConnectorBuilder::new();
    let builder = match ca_root {
        None => builder
            .try_with_platform_verifier()
            .map_err(|e| format!("cannot load the system's CA roots: {e}"))?,
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_slice_iter(pem);
            for cert in certs {
                roots
                    .add(cert.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            if roots.is_empty() {
                return Err("holds no PEM certificate".into());
            }
            builder.with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        }
    };
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let https = builder
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(Box::new(
        Client::builder(TokioExecutor::new()).build::<_, BodyWrapper<bytes::Bytes>>(https),
    ))
}

/// What a CA asked for in `Retry-After`, per request URL: instant-acme
/// keeps it to itself, and polling must honour it.
#[derive(Debug, Default)]
pub struct RetryAfter(
    std::sync::Mutex<std::collections::HashMap<String, Duration>>,
    /// The `Retry-After` of the last 429 (Too Many Requests), if it had one.
    std::sync::Mutex<Option<Duration>>,
);

impl RetryAfter {
    /// What the last 429 asked to wait, if it said.
    pub fn rate_limited(&self) -> Option<Duration> {
        *self.1.lock().ok()?
    }

    /// The wait the last answer from `url` asked for, once.
    pub fn take(&self, url: &str) -> Option<Duration> {
        self.0.lock().ok()?.remove(url)
    }

    fn put(&self, url: String, wait: Option<Duration>) {
        if let Ok(mut map) = self.0.lock() {
            match wait {
                Some(w) => map.insert(url, w),
                None => map.remove(&url),
            };
        }
    }
}

/// `Retry-After` (RFC 9110 10.2.3): seconds, or an HTTP date; `now` for
/// the date form. A date in the past is no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The longest wait a `Retry-After` is taken for: more is no different to
/// a run that gives up after 90 s, and a huge number would overflow the
/// time arithmetic instant-acme does with it.
pub const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// An [`HttpClient`] that notes each answer's `Retry-After` (bounded by
/// [`LONGEST_RETRY_AFTER`]) and hands instant-acme the bounded value only.
pub struct Observed {
    inner: Box<dyn HttpClient>,
    retry_after: Arc<RetryAfter>,
}

impl Observed {
    /// `inner`, noting into `retry_after`.
    pub fn wrap(inner: Box<dyn HttpClient>, retry_after: Arc<RetryAfter>) -> Self {
        Observed { inner, retry_after }
    }
}

impl HttpClient for Observed {
    fn request(
        &self,
        req: http::Request<BodyWrapper<bytes::Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let url = req.uri().to_string();
        let notes = self.retry_after.clone();
        let sent = self.inner.request(req);
        Box::pin(async move {
            let mut rsp = whole_within(sent, crate::limits::REQUEST_MAX).await?;
            let wait = rsp
                .parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .map(|w| w.min(LONGEST_RETRY_AFTER));
            // What the CA sent is hostile until bounded: instant-acme adds
            // the seconds to the clock unchecked (ARI, order polls).
            rsp.parts.headers.remove(http::header::RETRY_AFTER);
            if let Some(w) = wait {
                rsp.parts
                    .headers
                    .insert(http::header::RETRY_AFTER, w.as_secs().into());
            }
            if rsp.parts.status == http::StatusCode::TOO_MANY_REQUESTS {
                if let Ok(mut last) = notes.1.lock() {
                    *last = wait;
                }
            }
            notes.put(url, wait);
            Ok(rsp)
        })
    }
}

/// The answer to a request, its body read whole, within `limit` (the HTTP
/// client has no time limit of its own); else an error saying so.
async fn whole_within(
    sent: impl Future<Output = Result<BytesResponse, instant_acme::Error>>,
    limit: Duration,
) -> Result<BytesResponse, instant_acme::Error> {
    let whole = async {
        let rsp = sent.await?;
        let mut body = rsp.body;
        let bytes = body
            .into_bytes()
            .await
            .map_err(instant_acme::Error::Other)?;
        Ok(BytesResponse::from(http::Response::from_parts(
            rsp.parts,
            http_body_util::Full::new(bytes),
        )))
    };
    match tokio::time::timeout(limit, whole).await {
        Ok(answer) => answer,
        Err(_) => Err(instant_acme::Error::Other(
            format!(
                "no answer within {} s (one request's limit); the next run asks again",
                limit.as_secs()
            )
            .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that never answers.
    struct Silent;

    impl HttpClient for Silent {
        fn request(
            &self,
            _: http::Request<BodyWrapper<bytes::Bytes>>,
        ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>>
        {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_the_server_never_answers_fails_at_its_limit() {
        let observed = Observed::wrap(Box::new(Silent), Arc::default());
        let req = http::Request::get("https://127.0.0.1:14000/dir")
            .body(BodyWrapper::default())
            .unwrap();
        let started = tokio::time::Instant::now();
        // Bounded here too: without the request's own limit the test fails
        // (at twice it) instead of waiting for ever.
        let ended = tokio::time::timeout(2 * crate::limits::REQUEST_MAX, observed.request(req))
            .await
            .expect("the request ends at its own limit");
        let err = match ended {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an answer from a server that never answers"),
        };
        assert!(err.contains("no answer within 60 s"), "{err}");
        assert_eq!(started.elapsed(), crate::limits::REQUEST_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_read_whole_and_passed_on() {
        let answer = async {
            Ok(BytesResponse::from(
                http::Response::builder()
                    .status(201)
                    .header("Retry-After", "7")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                    .unwrap(),
            ))
        };
        let rsp = whole_within(answer, Duration::from_secs(1)).await.unwrap();
        assert_eq!(rsp.parts.status, 201);
        let mut body = rsp.body;
        assert_eq!(&body.into_bytes().await.unwrap()[..], b"{}");
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = httpdate::parse_http_date("Fri, 27 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" Fri, 27 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        // Parsed whatever the size; bounded by the client before use.
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
