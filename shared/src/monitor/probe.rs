//! One check of one monitor: the HTTP request its row describes and the verdict on the answer.
//!
//! The [`Checker`] holds one reqwest client for every monitor of the process (connections are
//! pooled per host), on rustls with `tls_info` so the peer certificate of an HTTPS answer can be
//! read (its expiry, parsed from the DER with `x509-parser`). Every host name, the first and
//! each redirect's, is resolved through the webhooks' SSRF guard
//! (`crate::webhook::ssrf::Guard`) with `PULSE_MONITOR_ALLOW_NETS` as its allow-list, as the
//! webhook client does, so the address checked is the address connected to; a redirect to an
//! address literal is checked by the redirect policy. At most [`MAX_REDIRECTS`] redirects are
//! followed; the answer after that is judged as it is (a 3xx fails unless it is expected).
//! No proxy; the request's total time (connect, TLS, headers and the body read) is bounded by
//! the monitor's `timeout_ms`; at most [`BODY_LIMIT`] bytes of the body are read.
//!
//! The verdict, first failing rule wins: the guard refused the address (`refused`), the name
//! does not resolve (`dns`), no connection (`connect`), the TLS handshake or certificate failed
//! (`tls`), no whole answer in time (`timeout`), a status outside `expected_status` (`status`),
//! `body_contains` missing or the JSON value match failing (`body`), slower than
//! `max_latency_ms` (`latency`).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde_json::Value;

use super::spec::{json_matches, ErrorClass, StatusRanges};
use super::MonitorError;
use crate::config::{EmailConfig, MonitorConfig};
use crate::webhook::ssrf::{Guard, Refusal};

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 5;
/// Most bytes of a response body read (`body_contains` and the JSON match look at these).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Longest error message kept with a check.
const ERROR_CHARS: usize = 500;

/// What a check asks for: the request and the rules of its verdict (a monitor row's check
/// columns).
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub method: String,
    /// The stored `headers` object.
    pub headers: Value,
    pub body: Option<String>,
    pub timeout_ms: i32,
    pub expected_status: StatusRanges,
    pub body_contains: Option<String>,
    pub json_pointer: Option<String>,
    pub json_equals: Option<Value>,
    pub max_latency_ms: Option<i32>,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// When the request started.
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub status_code: Option<u16>,
    /// From the start of the request to the end of the body read (or the failure).
    pub latency_ms: i32,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    /// The expiry of the certificate an HTTPS answer came with.
    pub cert_expires_at: Option<DateTime<Utc>>,
}

/// Links and `Message-ID`s of monitor mail (from `EmailConfig`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Base of the links in mail, without a trailing slash.
    pub public_url: String,
    /// The domain of `Message-ID`s.
    pub domain: String,
}

impl MailSettings {
    pub fn new(config: &EmailConfig) -> Self {
        Self {
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            domain: crate::email::from_domain(&config.from).to_owned(),
        }
    }
}

/// Runs checks and records them: the HTTP client, the guard, the breaker settings and what
/// notices need. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct Checker {
    client: reqwest::Client,
    guard: Guard,
    pub(super) config: Arc<MonitorConfig>,
    pub(super) mail: Arc<MailSettings>,
}

/// Resolves through the SSRF guard (every hop's host name).
struct GuardedResolver(Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            // The connector sets each address's port from the URL.
            let addrs = guard.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Checker {
    /// The checker of a process; fails only when the TLS backend cannot be set up.
    pub fn new(config: &MonitorConfig, email: &EmailConfig) -> Result<Self, MonitorError> {
        let guard = Guard::new(config.allow_nets.clone());
        let redirect_guard = guard.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.stop();
            }
            match redirect_guard.parse_checking_literal(attempt.url().as_str()) {
                Ok(_) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_info(true)
            .redirect(redirects)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .build()
            .map_err(|error| MonitorError::Client(error.to_string()))?;
        Ok(Self {
            client,
            guard,
            config: Arc::new(config.clone()),
            mail: Arc::new(MailSettings::new(email)),
        })
    }

    /// The monitor settings this checker was built with.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Runs one check of `request` (never fails: a failure is the verdict).
    pub async fn probe(&self, request: &Request) -> Outcome {
        let checked_at = Utc::now();
        let started = Instant::now();
        let failed = |class: ErrorClass, message: String, status: Option<u16>| Outcome {
            checked_at,
            ok: false,
            status_code: status,
            latency_ms: elapsed_ms(started),
            error_class: Some(class),
            error: Some(truncate(message)),
            cert_expires_at: None,
        };
        let url = match self.guard.parse_checking_literal(&request.url) {
            Ok(url) => url,
            Err(refusal) => {
                let (class, message) = refusal_class(&refusal);
                return failed(class, message, None);
            }
        };
        let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                return failed(
                    ErrorClass::Connect,
                    format!("{:?} is not a method", request.method),
                    None,
                )
            }
        };
        let headers = match headers(&request.headers) {
            Ok(headers) => headers,
            Err(message) => return failed(ErrorClass::Connect, message, None),
        };
        let timeout = Duration::from_millis(u64::try_from(request.timeout_ms.max(1)).unwrap_or(10_000));
        let mut builder = self.client.request(method, url).headers(headers).timeout(timeout);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        // The client's timeout covers the body read too; the outer one is a bound on
        // everything else (a resolver that hangs).
        let answer = tokio::time::timeout(timeout + Duration::from_millis(50), async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let cert = response
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|info| info.peer_certificate())
                .and_then(certificate_expiry);
            let body = read_limited(response).await?;
            Ok::<_, reqwest::Error>((status, cert, body))
        })
        .await;
        let (status, cert_expires_at, body) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                let (class, message) = classify(&error);
                return failed(class, message, error.status().map(|status| status.as_u16()));
            }
            Err(_) => {
                return failed(
                    ErrorClass::Timeout,
                    format!("no whole answer within {} ms", request.timeout_ms),
                    None,
                )
            }
        };
        let latency_ms = elapsed_ms(started);
        let verdict = verdict(request, status, &body, latency_ms);
        Outcome {
            checked_at,
            ok: verdict.is_none(),
            status_code: Some(status),
            latency_ms,
            error_class: verdict.as_ref().map(|(class, _)| *class),
            error: verdict.map(|(_, message)| truncate(message)),
            cert_expires_at,
        }
    }
}

/// The rules on a whole answer: status, then body, then latency. `None`: passed.
pub fn verdict(request: &Request, status: u16, body: &[u8], latency_ms: i32) -> Option<(ErrorClass, String)> {
    if !request.expected_status.accepts(status) {
        return Some((
            ErrorClass::Status,
            format!(
                "answered {status}, expected {}",
                request.expected_status.describe().join(", ")
            ),
        ));
    }
    if let Some(needle) = request.body_contains.as_deref().filter(|needle| !needle.is_empty()) {
        let found = body.windows(needle.len()).any(|window| window == needle.as_bytes());
        if !found {
            return Some((ErrorClass::Body, format!("the body does not contain {needle:?}")));
        }
    }
    if let (Some(pointer), Some(expected)) = (&request.json_pointer, &request.json_equals) {
        if !json_matches(body, pointer, expected) {
            return Some((
                ErrorClass::Body,
                format!("the body's JSON at {pointer:?} is not {expected}"),
            ));
        }
    }
    if let Some(max) = request.max_latency_ms.filter(|max| latency_ms > *max) {
        return Some((ErrorClass::Latency, format!("took {latency_ms} ms, more than {max} ms")));
    }
    None
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
}

fn truncate(message: String) -> String {
    if message.chars().count() <= ERROR_CHARS {
        return message;
    }
    message.chars().take(ERROR_CHARS).collect::<String>() + "…"
}

/// The stored headers as a request's (the api validated them; one that does not read now is an
/// error of the check rather than silently left out).
fn headers(stored: &Value) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("Pulse-Monitor/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(custom) = stored.as_object() {
        for (name, value) in custom {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                return Err(format!("the monitor's header {name:?} is not a valid header"));
            };
            map.insert(name, value);
        }
    }
    Ok(map)
}

/// The class and message of a refusal by the guard.
fn refusal_class(refusal: &Refusal) -> (ErrorClass, String) {
    match refusal {
        Refusal::Dns { .. } => (ErrorClass::Dns, refusal.to_string()),
        Refusal::NotPublic { host, ip } => (
            ErrorClass::Refused,
            format!("{host} resolves to {ip}, which is not a public address (allow it with PULSE_MONITOR_ALLOW_NETS)"),
        ),
        Refusal::BadUrl(message) => (ErrorClass::Refused, message.clone()),
    }
}

/// The class and message of a transport error: the guard's refusals are found in the error's
/// sources; TLS failures are told apart from other connect failures by their sources' text
/// (rustls errors are wrapped in io errors by the connector).
fn classify(error: &reqwest::Error) -> (ErrorClass, String) {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    let mut chain = error.to_string();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return refusal_class(refusal);
        }
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let class = if error.is_timeout() {
        ErrorClass::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        ErrorClass::Tls
    } else {
        ErrorClass::Connect
    };
    (class, chain)
}

/// Up to [`BODY_LIMIT`] bytes of the body (the rest is not read).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < BODY_LIMIT {
        match response.chunk().await? {
            Some(chunk) => kept.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - kept.len())]),
            None => break,
        }
    }
    Ok(kept)
}

/// The `notAfter` of a DER certificate.
pub fn certificate_expiry(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request() -> Request {
        Request {
            url: "http://127.0.0.1/".into(),
            method: "GET".into(),
            headers: json!({}),
            body: None,
            timeout_ms: 1000,
            expected_status: StatusRanges::default(),
            body_contains: Some("healthy".into()),
            json_pointer: None,
            json_equals: None,
            max_latency_ms: Some(500),
        }
    }

    #[test]
    fn the_verdict_checks_status_then_body_then_latency() {
        let request = request();
        assert_eq!(verdict(&request, 200, b"all healthy", 10), None);
        assert_eq!(
            verdict(&request, 503, b"all healthy", 10).map(|v| v.0),
            Some(ErrorClass::Status)
        );
        assert_eq!(verdict(&request, 200, b"sick", 10).map(|v| v.0), Some(ErrorClass::Body));
        assert_eq!(
            verdict(&request, 200, b"healthy", 900).map(|v| v.0),
            Some(ErrorClass::Latency)
        );
        let json = Request {
            body_contains: None,
            json_pointer: Some("/status".into()),
            json_equals: Some(json!("ok")),
            ..request
        };
        assert_eq!(verdict(&json, 200, br#"{"status": "ok"}"#, 10), None);
        assert_eq!(
            verdict(&json, 200, br#"{"status": "bad"}"#, 10).map(|v| v.0),
            Some(ErrorClass::Body)
        );
    }

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(truncate("x".repeat(600)).chars().count(), ERROR_CHARS + 1);
        assert_eq!(truncate("short".into()), "short");
    }

    /// A self-signed P-256 certificate for `pulse.test` (openssl req -x509 -days 30), notAfter
    /// 2027-01-01T06:07:15Z.
    const CERTIFICATE: &str = "MIIBfjCCASWgAwIBAgIUOD36M5WiEN8g5riofyg8pD2h9yswCgYIKoZIzj0EAwIwFTETMBEGA1UEAwwKcHVsc2UudGVzdDAeFw0yNjEyMDIwNjA3MTVaFw0yNzAxMDEwNjA3MTVaMBUxEzARBgNVBAMMCnB1bHNlLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATWVsBkKckYSqTO+scgIuyD+bLtGJ4IxnFdclHzGP9OgsO5m5A/60Iapx0bC2Rj97fv1AMmz2k63x+F6nWzcFglo1MwUTAdBgNVHQ4EFgQUpuDU6vlMk09vrJW+qDgcFusYfbQwHwYDVR0jBBgwFoAUpuDU6vlMk09vrJW+qDgcFusYfbQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBocHsfVvcX+0RFHSciTjls12pftPEnslLtkDARddU+UwIgTsNoVM9aQ9YWC99GszOGnaGH60TxdVdJjIhNBCW57Yo=";

    #[test]
    fn the_expiry_is_read_from_the_certificate() {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(CERTIFICATE)
            .expect("base64");
        let expected: DateTime<Utc> = "2027-01-01T06:07:15Z".parse().expect("time");
        assert_eq!(certificate_expiry(&der), Some(expected));
        assert_eq!(certificate_expiry(b"not a certificate"), None);
    }
}
