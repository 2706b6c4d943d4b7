//! A monitor as the routes take it, and the rules of its fields. Each check returns the value to
//! store or a 400 `INVALID_FIELD` naming the field (`interval_s`, `json_match.pointer`,
//! `channels.webhook_ids`, …). The limits are constants, which the OpenAPI document states
//! ([`super::schema`]). What a stored setting means is `pulse_shared::monitor::spec`'s, which
//! both the api and the scheduler read: `expected_status`, `maintenance` and `headers` are
//! validated there.
//!
//! - `url`: http or https, at most [`MAX_URL_CHARS`], every address its host resolves to public
//!   or inside `PULSE_MONITOR_ALLOW_NETS` (the webhooks' SSRF guard; the check engine checks
//!   again at each check, since DNS can change).
//! - `method` one of [`METHODS`] (default `GET`); `body` at most [`MAX_BODY_CHARS`].
//! - `interval_s` [`MIN_INTERVAL_S`] to [`MAX_INTERVAL_S`] (default [`DEFAULT_INTERVAL_S`]);
//!   `timeout_ms` [`MIN_TIMEOUT_MS`] to [`MAX_TIMEOUT_MS`] (default [`DEFAULT_TIMEOUT_MS`]) and
//!   never longer than the interval, so checks of one monitor never overlap.
//! - `expected_status` a list of `200`, `"2xx"`, `"200-204"` (default `["2xx"]`).
//! - `body_contains` 1 to [`MAX_MATCH_CHARS`]; `json_match` `{"pointer", "equals"}` (an RFC 6901
//!   pointer and any JSON value of at most [`MAX_JSON_EQUALS_BYTES`]).
//! - `max_latency_ms` 1 to [`MAX_TIMEOUT_MS`]; `cert_expiry_days` 0 to 365 (default 14);
//!   `failures_before_down` 1 to 100 (default 3); `renotify_s` as for alert rules.
//! - `channels` `{"emails", "webhook_ids"}`: as for alert rules (`alerts::rules`), without
//!   `owners`.
//!
//! Text that PostgreSQL cannot hold (NUL) is refused by name, never a 500.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::management::alerts::rules::{check_channels, AlertChannels};
use pulse_shared::event::{has_nul, json_has_nul};
use pulse_shared::monitor::spec;

/// Methods a check may use (the column's CHECK says the same).
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Longest `url`, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest request `body`, in characters.
pub const MAX_BODY_CHARS: usize = 65_536;
pub const MIN_INTERVAL_S: i64 = 10;
pub const MAX_INTERVAL_S: i64 = 86_400;
/// `interval_s` when a creation names none.
pub const DEFAULT_INTERVAL_S: i64 = 60;
pub const MIN_TIMEOUT_MS: i64 = 100;
pub const MAX_TIMEOUT_MS: i64 = 60_000;
/// `timeout_ms` when a creation names none (the column default), or the interval when shorter.
pub const DEFAULT_TIMEOUT_MS: i64 = 10_000;
/// Longest `body_contains`, in characters.
pub const MAX_MATCH_CHARS: usize = 1000;
/// Longest `json_match.pointer`, in characters.
pub const MAX_POINTER_CHARS: usize = 1000;
/// Largest `json_match.equals`, as JSON.
pub const MAX_JSON_EQUALS_BYTES: usize = 10_000;
pub const MAX_CERT_EXPIRY_DAYS: i64 = 365;
pub const DEFAULT_CERT_EXPIRY_DAYS: i64 = 14;
pub const MAX_FAILURES_BEFORE_DOWN: i64 = 100;
pub const DEFAULT_FAILURES_BEFORE_DOWN: i64 = 3;

/// A JSON value match: the response body parsed as JSON holds `equals` at `pointer`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MonitorJsonMatch, example = json!({"pointer": "/status", "equals": "ok"}))]
pub struct JsonMatch {
    /// RFC 6901 pointer: `""` (the whole document) or starting with `/`.
    pub pointer: String,
    /// The value expected there (any JSON, compared exactly).
    #[schema(value_type = Object)]
    pub equals: Value,
}

/// Where a monitor's `monitor.down` and `monitor.up` go. Both lists are optional in a request;
/// `channels` in a PATCH replaces both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"emails": ["ops@example.com"], "webhook_ids": []}))]
pub struct MonitorChannels {
    /// Addresses to mail, at most 20; stored trimmed, lower-cased and de-duplicated.
    pub emails: Vec<String>,
    /// Webhook endpoints of the same project (they receive `monitor.down` and `monitor.up`
    /// when subscribed to them), at most 20.
    pub webhook_ids: Vec<Uuid>,
}

/// `Option<Option<T>>` for PATCH: absent is `None` (with `#[serde(default)]`), `null` is
/// `Some(None)`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

fn between(field: &'static str, value: i64, min: i64, max: i64, unit: &str) -> Result<i32, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value as i32)
    } else {
        Err(invalid(field, format!("{field} must be between {min} and {max}{unit}")))
    }
}

/// One of [`METHODS`], case-insensitive; stored upper case.
pub fn check_method(raw: &str) -> Result<&'static str, ApiError> {
    let upper = raw.trim().to_ascii_uppercase();
    METHODS
        .iter()
        .find(|method| **method == upper)
        .copied()
        .ok_or_else(|| invalid("method", format!("method must be one of {}", METHODS.join(", "))))
}

pub fn check_interval(interval_s: i64) -> Result<i32, ApiError> {
    between("interval_s", interval_s, MIN_INTERVAL_S, MAX_INTERVAL_S, " seconds")
}

/// Within its bounds and not longer than the interval.
pub fn check_timeout(timeout_ms: i64, interval_s: i32) -> Result<i32, ApiError> {
    let timeout = between("timeout_ms", timeout_ms, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, " ms")?;
    if i64::from(timeout) > i64::from(interval_s) * 1000 {
        return Err(invalid(
            "timeout_ms",
            format!("timeout_ms ({timeout}) must not be longer than interval_s ({interval_s} s): checks would overlap"),
        ));
    }
    Ok(timeout)
}

pub fn check_max_latency(max_latency_ms: i64) -> Result<i32, ApiError> {
    between(
        "max_latency_ms",
        max_latency_ms,
        1,
        MAX_TIMEOUT_MS,
        " ms (or null for none)",
    )
}

pub fn check_cert_expiry(days: i64) -> Result<i32, ApiError> {
    between("cert_expiry_days", days, 0, MAX_CERT_EXPIRY_DAYS, " days")
}

pub fn check_failures(failures: i64) -> Result<i32, ApiError> {
    between("failures_before_down", failures, 1, MAX_FAILURES_BEFORE_DOWN, "")
}

/// At most [`MAX_BODY_CHARS`], no NUL.
pub fn check_body(body: String) -> Result<String, ApiError> {
    if body.chars().count() > MAX_BODY_CHARS || has_nul(&body) {
        return Err(invalid(
            "body",
            format!("body must be at most {MAX_BODY_CHARS} characters, without NUL"),
        ));
    }
    Ok(body)
}

/// 1 to [`MAX_MATCH_CHARS`], no NUL (compared with the response body exactly, not trimmed).
pub fn check_body_contains(text: String) -> Result<String, ApiError> {
    let count = text.chars().count();
    if count == 0 || count > MAX_MATCH_CHARS || has_nul(&text) {
        return Err(invalid(
            "body_contains",
            format!("body_contains must be 1 to {MAX_MATCH_CHARS} characters without NUL (or null for none)"),
        ));
    }
    Ok(text)
}

pub fn check_json_match(found: JsonMatch) -> Result<JsonMatch, ApiError> {
    if found.pointer.chars().count() > MAX_POINTER_CHARS || has_nul(&found.pointer) {
        return Err(invalid(
            "json_match.pointer",
            format!("json_match.pointer must be at most {MAX_POINTER_CHARS} characters, without NUL"),
        ));
    }
    spec::validate_json_pointer(&found.pointer).map_err(|reason| invalid("json_match.pointer", reason))?;
    let size = serde_json::to_string(&found.equals)
        .map(|text| text.len())
        .unwrap_or(usize::MAX);
    if size > MAX_JSON_EQUALS_BYTES || json_has_nul(&found.equals) {
        return Err(invalid(
            "json_match.equals",
            format!("json_match.equals must be at most {MAX_JSON_EQUALS_BYTES} bytes of JSON, without NUL"),
        ));
    }
    Ok(found)
}

/// The stored form `[[lo, hi], …]` of `expected_status`.
pub fn check_expected_status(value: &Value) -> Result<Value, ApiError> {
    spec::StatusRanges::parse_input(value)
        .map(|ranges| ranges.to_value())
        .map_err(|reason| invalid("expected_status", format!("expected_status {reason}")))
}

/// The stored form of `maintenance` (the windows as validated).
pub fn check_maintenance(value: &Value) -> Result<Value, ApiError> {
    let windows =
        spec::parse_maintenance(value).map_err(|reason| invalid("maintenance", format!("maintenance {reason}")))?;
    serde_json::to_value(windows).map_err(|error| ApiError::Internal(format!("maintenance windows: {error}")))
}

/// The stored form of `headers` (an object of names to values).
pub fn check_headers(value: &Value) -> Result<Value, ApiError> {
    let headers = spec::parse_headers(value).map_err(|reason| invalid("headers", format!("headers {reason}")))?;
    serde_json::to_value(headers).map_err(|error| ApiError::Internal(format!("headers: {error}")))
}

/// The channels to store: addresses normalized and de-duplicated, ids de-duplicated (that the
/// endpoints belong to the project is `alerts::rules::check_webhooks`'s job).
pub fn check_monitor_channels(channels: MonitorChannels) -> Result<MonitorChannels, ApiError> {
    let checked = check_channels(AlertChannels {
        emails: channels.emails,
        webhook_ids: channels.webhook_ids,
        owners: false,
    })?;
    Ok(MonitorChannels {
        emails: checked.emails,
        webhook_ids: checked.webhook_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(result: Result<impl std::fmt::Debug, ApiError>) -> &'static str {
        match result {
            Err(ApiError::InvalidField { field, .. }) => field,
            other => panic!("expected INVALID_FIELD, got {other:?}"),
        }
    }

    #[test]
    fn numbers_are_bounded_and_name_their_field() {
        assert_eq!(check_interval(10).expect("10"), 10);
        assert_eq!(field(check_interval(9)), "interval_s");
        assert_eq!(field(check_interval(86_401)), "interval_s");
        assert_eq!(check_timeout(10_000, 10).expect("equal"), 10_000);
        assert_eq!(field(check_timeout(10_001, 10)), "timeout_ms");
        assert_eq!(field(check_timeout(99, 60)), "timeout_ms");
        assert_eq!(field(check_max_latency(0)), "max_latency_ms");
        assert_eq!(field(check_cert_expiry(366)), "cert_expiry_days");
        assert_eq!(field(check_failures(0)), "failures_before_down");
        assert_eq!(check_method("head").expect("head"), "HEAD");
        assert_eq!(field(check_method("TRACE")), "method");
    }

    #[test]
    fn texts_and_json_are_checked() {
        assert_eq!(field(check_body("a\0b".into())), "body");
        assert_eq!(field(check_body_contains(String::new())), "body_contains");
        let ok = JsonMatch {
            pointer: "/status".into(),
            equals: json!("ok"),
        };
        assert_eq!(check_json_match(ok.clone()).expect("valid"), ok);
        let bad_pointer = JsonMatch {
            pointer: "status".into(),
            equals: json!(1),
        };
        assert_eq!(field(check_json_match(bad_pointer)), "json_match.pointer");
        let nul = JsonMatch {
            pointer: String::new(),
            equals: json!({"a": "\u{0}"}),
        };
        assert_eq!(field(check_json_match(nul)), "json_match.equals");
        assert_eq!(
            check_expected_status(&json!([200, "3xx"])).expect("statuses"),
            json!([[200, 200], [300, 399]])
        );
        assert_eq!(field(check_expected_status(&json!("2xx"))), "expected_status");
        assert_eq!(field(check_maintenance(&json!([{"start": "x"}]))), "maintenance");
        assert_eq!(field(check_headers(&json!({"Host": "x"}))), "headers");
        let channels = check_monitor_channels(MonitorChannels {
            emails: vec!["A@Example.com".into(), "a@example.com".into()],
            webhook_ids: vec![],
        })
        .expect("channels");
        assert_eq!(channels.emails, vec!["a@example.com"]);
    }
}
