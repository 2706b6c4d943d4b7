//! The rules of an endpoint's fields. Each check returns the value to store or a 400 naming
//! the field. The limits are constants so the OpenAPI document states the bounds the checks
//! enforce.
//!
//! - `url`: http or https, at most 2048 characters, and every address its host resolves to is
//!   public or inside `PULSE_WEBHOOK_ALLOW_NETS` (`pulse_shared::webhook::ssrf`); the worker
//!   checks again at each attempt, since DNS can change. Resolution waits at most
//!   [`RESOLVE_TIMEOUT`]. Stored as the URL parser writes it
//!   (`http://example.com` becomes `http://example.com/`).
//! - `event_types`: a non-empty subset of `pulse_shared::webhook::MESSAGE_TYPES`, duplicates
//!   dropped, in the order given.
//! - `filter`: for `event.created` only, the event types and sources an event must have; each
//!   list optional (absent: any), 1 to [`MAX_FILTER_ITEMS`] non-empty strings.
//! - `headers`: at most [`MAX_HEADERS`] extra request headers. Names are HTTP tokens and must
//!   not be one Pulse sets or the connection needs ([`RESERVED_HEADERS`] and anything starting
//!   with `webhook-`, compared case-insensitively), values are visible ASCII (spaces and tabs
//!   inside) of at most [`MAX_HEADER_VALUE_BYTES`].

use std::collections::BTreeMap;

use actix_web::http::header::{HeaderName, HeaderValue};
use pulse_shared::webhook::secret::Secret;
use pulse_shared::webhook::ssrf::Guard;
use pulse_shared::webhook::MESSAGE_TYPES;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Most items in each list of `filter`.
pub const MAX_FILTER_ITEMS: usize = 100;
/// Longest item of a `filter` list, in characters (event types and sources are no longer).
pub const MAX_FILTER_ITEM_CHARS: usize = 200;
/// Most custom headers of an endpoint.
pub const MAX_HEADERS: usize = 20;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Most attempts of one delivery (the column's CHECK says the same).
pub const MAX_ATTEMPTS: i32 = 50;
/// Header names an endpoint may not set: the ones Pulse writes on every request, and the
/// hop-by-hop ones that belong to the connection (RFC 9110, 7.6.1). Every `webhook-…` name is
/// refused too ([`RESERVED_PREFIX`]).
pub const RESERVED_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// The Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and
/// any future one.
pub const RESERVED_PREFIX: &str = "webhook-";

/// The `event.created` filter: only events whose `event_type` is in `event_types` and whose
/// `source` is in `sources` (a list left out: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_types": ["checkout.completed"], "sources": ["web"]}))]
pub struct Filter {
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub sources: Option<Vec<String>>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// `Option<Option<T>>` for PATCH: absent is `None` (with `#[serde(default)]`), `null` is
/// `Some(None)`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Longest wait for the resolver when checking a `url` (a request never hangs on DNS).
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The URL to store, or 400 `url` with the guard's reason.
pub async fn check_url(guard: &Guard, raw: &str) -> Result<String, ApiError> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, guard.check_url(raw.trim())).await {
        Ok(Ok(url)) => Ok(url.as_str().to_owned()),
        Ok(Err(refusal)) => Err(invalid("url", refusal.to_string())),
        Err(_) => Err(invalid(
            "url",
            format!("the url's host did not resolve within {} s", RESOLVE_TIMEOUT.as_secs()),
        )),
    }
}

/// At most [`MAX_DESCRIPTION_CHARS`], no NUL (PostgreSQL text cannot hold it).
pub fn check_description(raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS || raw.contains('\0') {
        return Err(invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters, without NUL"),
        ));
    }
    Ok(raw.to_owned())
}

/// A non-empty subset of [`MESSAGE_TYPES`], de-duplicated.
pub fn check_event_types(requested: &[String]) -> Result<Vec<String>, ApiError> {
    let mut types: Vec<String> = Vec::new();
    for requested in requested {
        if !MESSAGE_TYPES.contains(&requested.as_str()) {
            return Err(invalid(
                "event_types",
                format!(
                    "unknown event type {requested:?}: an endpoint can receive {}",
                    MESSAGE_TYPES.join(", ")
                ),
            ));
        }
        if !types.contains(requested) {
            types.push(requested.clone());
        }
    }
    if types.is_empty() {
        return Err(invalid(
            "event_types",
            format!("event_types needs at least one of {}", MESSAGE_TYPES.join(", ")),
        ));
    }
    Ok(types)
}

fn check_filter_list(field: &'static str, list: Option<Vec<String>>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = list else { return Ok(None) };
    let rule = || {
        format!(
            "{field} must hold 1 to {MAX_FILTER_ITEMS} strings of 1 to {MAX_FILTER_ITEM_CHARS} characters without NUL (leave it out to match any)"
        )
    };
    if list.is_empty() || list.len() > MAX_FILTER_ITEMS {
        return Err(invalid(field, rule()));
    }
    let mut kept: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let count = item.chars().count();
        if count == 0 || count > MAX_FILTER_ITEM_CHARS || item.contains('\0') {
            return Err(invalid(field, rule()));
        }
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    Ok(Some(kept))
}

/// The filter as stored (`filter_event_types`, `filter_sources`): each list checked and
/// de-duplicated; no filter is both lists absent.
pub fn check_filter(filter: Option<Filter>) -> Result<Filter, ApiError> {
    let filter = filter.unwrap_or_default();
    Ok(Filter {
        event_types: check_filter_list("filter.event_types", filter.event_types)?,
        sources: check_filter_list("filter.sources", filter.sources)?,
    })
}

/// Whether an endpoint may set the header `name` (any case).
pub fn is_reserved(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with(RESERVED_PREFIX) || RESERVED_HEADERS.contains(&name.as_str())
}

/// The headers as stored: a JSON object of strings, names as given.
pub fn check_headers(headers: BTreeMap<String, String>) -> Result<serde_json::Value, ApiError> {
    if headers.len() > MAX_HEADERS {
        return Err(invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut seen: Vec<String> = Vec::with_capacity(headers.len());
    let mut stored = serde_json::Map::new();
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(invalid("headers", format!("{name:?} is not a valid HTTP header name")));
        }
        if is_reserved(&name) {
            return Err(invalid(
                "headers",
                format!(
                    "{name:?} is set by Pulse or the connection: an endpoint may not set {}, or any webhook-… header",
                    RESERVED_HEADERS.join(", ")
                ),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(invalid(
                "headers",
                format!("{name:?} is given twice (names ignore case)"),
            ));
        }
        seen.push(lower);
        if value.len() > MAX_HEADER_VALUE_BYTES || HeaderValue::from_str(&value).is_err() {
            return Err(invalid(
                "headers",
                format!(
                    "the value of {name:?} must be visible ASCII (spaces and tabs allowed) of at most {MAX_HEADER_VALUE_BYTES} bytes"
                ),
            ));
        }
        stored.insert(name, serde_json::Value::String(value));
    }
    Ok(serde_json::Value::Object(stored))
}

/// 1 to [`MAX_ATTEMPTS`].
pub fn check_max_attempts(attempts: i32) -> Result<i32, ApiError> {
    if (1..=MAX_ATTEMPTS).contains(&attempts) {
        Ok(attempts)
    } else {
        Err(invalid(
            "max_attempts",
            format!("max_attempts (every attempt, the first included) must be between 1 and {MAX_ATTEMPTS}"),
        ))
    }
}

/// The unique constraint on `webhooks.secret`.
pub const SECRET_UNIQUE: &str = "webhooks_secret_key";

/// 409: a caller brought a secret another endpoint has.
pub fn secret_in_use() -> ApiError {
    ApiError::Conflict {
        code: "SECRET_IN_USE",
        message: "another endpoint has this secret: every endpoint needs its own".into(),
    }
}

/// A caller's secret: `whsec_` + base64 of 24 to 64 bytes.
pub fn check_secret(raw: &str) -> Result<Secret, ApiError> {
    Secret::parse(raw).map_err(|reason| invalid("secret", reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_known_deduplicated_and_not_empty() {
        let types =
            check_event_types(&["event.created".into(), "monitor.up".into(), "event.created".into()]).expect("valid");
        assert_eq!(types, vec!["event.created", "monitor.up"]);
        assert!(check_event_types(&[]).is_err());
        let unknown = check_event_types(&["webhook.test".into()]).expect_err("test is not subscribable");
        assert!(unknown.to_string().contains("alert.fired"), "{unknown}");
    }

    #[test]
    fn headers_refuse_reserved_invalid_and_repeated_names() {
        let ok = check_headers(BTreeMap::from([("X-Team".into(), "ops".into())])).expect("valid");
        assert_eq!(ok, serde_json::json!({"X-Team": "ops"}));
        for name in [
            "Content-Type",
            "HOST",
            "webhook-id",
            "Webhook-Signature",
            "webhook-anything",
            "Transfer-Encoding",
        ] {
            let refused = check_headers(BTreeMap::from([(name.to_owned(), "x".to_owned())]));
            assert!(refused.is_err(), "{name}");
        }
        assert!(check_headers(BTreeMap::from([("bad name".into(), "x".into())])).is_err());
        assert!(check_headers(BTreeMap::from([("x-a".into(), "line\nbreak".into())])).is_err());
        assert!(check_headers(BTreeMap::from([("x-a".into(), "v".repeat(MAX_HEADER_VALUE_BYTES + 1))])).is_err());
        assert!(check_headers(BTreeMap::from([("X-A".into(), "1".into()), ("x-a".into(), "2".into())])).is_err());
        let many: BTreeMap<String, String> = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "v".into())).collect();
        assert!(check_headers(many).is_err());
    }

    #[test]
    fn filters_and_attempts_are_bounded() {
        assert_eq!(check_filter(None).expect("none"), Filter::default());
        let checked = check_filter(Some(Filter {
            event_types: Some(vec!["a".into(), "a".into()]),
            sources: None,
        }))
        .expect("valid");
        assert_eq!(
            (checked.event_types, checked.sources),
            (Some(vec!["a".to_owned()]), None)
        );
        assert!(check_filter(Some(Filter {
            event_types: Some(vec![]),
            sources: None
        }))
        .is_err());
        assert!(check_filter(Some(Filter {
            event_types: None,
            sources: Some(vec!["s".into(); MAX_FILTER_ITEMS + 1])
        }))
        .is_err());
        assert!(check_max_attempts(0).is_err() && check_max_attempts(51).is_err());
        assert_eq!(check_max_attempts(50).expect("max"), 50);
        assert!(check_description(&"d".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(check_description(&"d".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
    }
}
