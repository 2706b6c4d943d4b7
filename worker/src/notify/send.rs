//! One HTTP attempt of a delivery, and what came of it.
//!
//! The client (reqwest) follows no redirects (a 3xx is a failed attempt), uses no proxy, has
//! the connect and total timeouts of `PULSE_WEBHOOK_*`, and resolves every host through the
//! SSRF guard ([`GuardedResolver`]): the addresses checked are the addresses connected to. A URL
//! naming an address literally is checked before the request. Headers: the endpoint's own,
//! then `content-type`, `user-agent`, `webhook-id`, `webhook-timestamp` (the attempt's unix
//! second) and `webhook-signature` (the current secret, and the previous one during a rotation's
//! grace period). The response body is kept up to 4 KB for the attempt log.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pulse_shared::config::WebhookConfig;
use pulse_shared::webhook::secret::Secret;
use pulse_shared::webhook::signing::signature_header;
use pulse_shared::webhook::ssrf::{Guard, Refusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use super::claim::Claimed;

/// Most bytes of a response body kept in the attempt log.
pub const RESPONSE_BODY_LIMIT: usize = 4096;
/// The longest `Retry-After` honoured (one day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Why an attempt failed, as the delivery log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Timeout,
    Connect,
    Tls,
    Dns,
    SsrfRefused,
    HttpStatus,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        Self::Timeout,
        Self::Connect,
        Self::Tls,
        Self::Dns,
        Self::SsrfRefused,
        Self::HttpStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Dns => "dns",
            Self::SsrfRefused => "ssrf_refused",
            Self::HttpStatus => "http_status",
        }
    }
}

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub duration: Duration,
    pub response_status: Option<u16>,
    /// `None`: success (2xx).
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub response_body: Option<String>,
    /// A 429 or 503's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }
}

/// Resolves through the SSRF guard.
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

/// The HTTP side of delivery: one client for every endpoint.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

impl Sender {
    pub fn new(config: &WebhookConfig) -> reqwest::Result<Self> {
        let guard = Guard::new(config.allow_nets.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .build()?;
        Ok(Self { client, guard })
    }

    /// Sends `body` to the delivery's endpoint, signed.
    pub async fn send(&self, delivery: &Claimed, body: Vec<u8>) -> Attempt {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let failed = |class: ErrorClass, message: String| Attempt {
            attempted_at,
            duration: started.elapsed(),
            response_status: None,
            error_class: Some(class),
            error_message: Some(message),
            response_body: None,
            retry_after: None,
        };
        let url = match self.guard.parse_checking_literal(&delivery.url) {
            Ok(url) => url,
            Err(refusal) => {
                let class = match refusal {
                    Refusal::Dns { .. } => ErrorClass::Dns,
                    _ => ErrorClass::SsrfRefused,
                };
                return failed(class, refusal.to_string());
            }
        };
        let headers = match headers(delivery, attempted_at.timestamp(), &body) {
            Ok(headers) => headers,
            Err(message) => return failed(ErrorClass::Connect, message),
        };
        let response = match self.client.post(url).headers(headers).body(body).send().await {
            Ok(response) => response,
            Err(error) => {
                let (class, message) = classify(&error);
                return failed(class, message);
            }
        };
        let status = response.status();
        let retry_after = match status.as_u16() {
            429 | 503 => retry_after(response.headers().get(RETRY_AFTER), Utc::now()),
            _ => None,
        };
        let response_body = read_limited(response).await;
        let success = status.is_success();
        Attempt {
            attempted_at,
            duration: started.elapsed(),
            response_status: Some(status.as_u16()),
            error_class: (!success).then_some(ErrorClass::HttpStatus),
            error_message: (!success).then(|| format!("the receiver answered {status}")),
            response_body,
            retry_after,
        }
    }
}

/// The request headers: the endpoint's, then the Standard Webhooks ones (which win).
fn headers(delivery: &Claimed, timestamp: i64, body: &[u8]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    if let Some(custom) = delivery.headers.as_object() {
        for (name, value) in custom {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                return Err(format!("the endpoint's header {name:?} is not a valid header"));
            };
            map.insert(name, value);
        }
    }
    let current = Secret::parse(&delivery.secret).map_err(|error| format!("the endpoint's secret: {error}"))?;
    let previous = delivery
        .previous_secret
        .as_deref()
        .filter(|_| {
            delivery
                .previous_secret_expires_at
                .is_some_and(|until| until > Utc::now())
        })
        .and_then(|text| Secret::parse(text).ok());
    let signature = signature_header(
        std::iter::once(&current).chain(previous.as_ref()),
        &delivery.message_id,
        timestamp,
        body,
    );
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("Pulse-Webhooks/", env!("CARGO_PKG_VERSION"))),
    );
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| "unprintable header".to_owned());
    map.insert("webhook-id", value(&delivery.message_id)?);
    map.insert("webhook-timestamp", value(&timestamp.to_string())?);
    map.insert("webhook-signature", value(&signature)?);
    Ok(map)
}

/// The class and message of a transport error: the guard's refusals are found in the error's
/// sources; TLS failures are told apart from other connect failures by their sources' text
/// (native-tls does not expose a kind).
fn classify(error: &reqwest::Error) -> (ErrorClass, String) {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    let mut chain = error.to_string();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            let class = match refusal {
                Refusal::Dns { .. } => ErrorClass::Dns,
                _ => ErrorClass::SsrfRefused,
            };
            return (class, refusal.to_string());
        }
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let class = if error.is_timeout() {
        ErrorClass::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        ErrorClass::Tls
    } else {
        ErrorClass::Connect
    };
    (class, chain)
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
fn retry_after(value: Option<&HeaderValue>, now: DateTime<Utc>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Up to [`RESPONSE_BODY_LIMIT`] bytes of the body, as text.
async fn read_limited(mut response: reqwest::Response) -> Option<String> {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_BODY_LIMIT - kept.len())]),
            _ => break,
        }
    }
    (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_them() {
        let now: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().expect("time");
        let header = |text: &str| HeaderValue::from_str(text).expect("header");
        assert_eq!(retry_after(Some(&header("120")), now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(Some(&header("Tue, 01 Dec 2026 10:01:00 GMT")), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after(Some(&header("999999")), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some(&header("soon")), now), None);
        assert_eq!(retry_after(None, now), None);
    }
}
