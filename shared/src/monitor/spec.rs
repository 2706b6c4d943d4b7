//! A monitor's settings in their stored forms, their validation from the api's input and the
//! checks on them that both the api and the scheduler need: accepted statuses, maintenance
//! windows, request headers, the JSON value match, error classes, states, the breaker target and
//! where in its interval a monitor is checked.
//!
//! Input forms (the api's `POST`/`PATCH …/monitors`):
//! - `expected_status`: a list of `200`, `"2xx"` (a class) or `"200-204"` (an inclusive range),
//!   stored as `[[lo, hi], …]`;
//! - `maintenance`: a list of one-off windows `{"start": RFC 3339, "end": RFC 3339}` and weekly
//!   ones `{"weekday": "monday", "start_time": "HH:MM", "duration_s": N}` (UTC; a weekly window may
//!   run past midnight into the next day), stored as given once validated;
//! - `headers`: an object of header names to string values.

use std::collections::BTreeMap;

use actix_web::http::header::{HeaderName, HeaderValue};
use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;
use uuid::Uuid;

/// Most entries of `expected_status`, `maintenance` and `headers`.
pub const MAX_LIST: usize = 50;

/// Accepted response statuses: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRanges(pub Vec<(u16, u16)>);

impl Default for StatusRanges {
    /// Any 2xx.
    fn default() -> Self {
        Self(vec![(200, 299)])
    }
}

impl StatusRanges {
    /// From the api's list of `200`, `"2xx"` and `"200-204"`; the message names the bad entry.
    pub fn parse_input(value: &Value) -> Result<Self, String> {
        let Value::Array(items) = value else {
            return Err(r#"must be a list of statuses such as [200, "2xx", "301-308"]"#.into());
        };
        if items.is_empty() || items.len() > MAX_LIST {
            return Err(format!("must list 1 to {MAX_LIST} statuses or ranges"));
        }
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let range = match item {
                Value::Number(number) => {
                    let code = number.as_u64().and_then(|code| u16::try_from(code).ok());
                    let code = code.ok_or_else(|| format!("{number} is not a status code"))?;
                    (code, code)
                }
                Value::String(text) => parse_status_text(text)?,
                other => {
                    return Err(format!(
                        "{other} is not a status, a class such as \"2xx\" or a range such as \"200-204\""
                    ))
                }
            };
            for code in [range.0, range.1] {
                if !(100..=599).contains(&code) {
                    return Err(format!("{code} is not a status code (100 to 599)"));
                }
            }
            if range.0 > range.1 {
                return Err(format!("range {}-{} is empty", range.0, range.1));
            }
            ranges.push(range);
        }
        Ok(Self(ranges))
    }

    /// The stored form, `[[lo, hi], …]`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// From the stored form (the default when it does not read).
    pub fn from_value(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub fn accepts(&self, code: u16) -> bool {
        self.0.iter().any(|(low, high)| (*low..=*high).contains(&code))
    }

    /// The api's output form: `"2xx"` for a whole class, `"200-204"` for a range, `"200"` alone.
    pub fn describe(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|&(low, high)| {
                if low == high {
                    low.to_string()
                } else if low % 100 == 0 && high == low + 99 {
                    format!("{}xx", low / 100)
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect()
    }
}

fn parse_status_text(text: &str) -> Result<(u16, u16), String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a status, a class such as \"2xx\" or a range such as \"200-204\"");
    let lower = text.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let class: u16 = class.parse().map_err(|_| bad())?;
        if !(1..=5).contains(&class) {
            return Err(bad());
        }
        return Ok((class * 100, class * 100 + 99));
    }
    if let Some((low, high)) = text.split_once('-') {
        let low = low.trim().parse().map_err(|_| bad())?;
        let high = high.trim().parse().map_err(|_| bad())?;
        return Ok((low, high));
    }
    let code = text.parse().map_err(|_| bad())?;
    Ok((code, code))
}

/// A maintenance window: checks go on, notifications are held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum MaintenanceWindow {
    /// From `start` to `end`.
    Once { start: DateTime<Utc>, end: DateTime<Utc> },
    /// Every week on `weekday` from `start_time` (UTC) for `duration_s` seconds.
    Weekly {
        weekday: String,
        start_time: String,
        duration_s: u32,
    },
}

/// Longest weekly window: a whole week would be "always".
const MAX_WEEKLY_SECS: u32 = 7 * 86_400 - 1;

impl MaintenanceWindow {
    /// Whether `at` falls inside the window (a malformed stored window never does).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        match self {
            Self::Once { start, end } => *start <= at && at < *end,
            Self::Weekly {
                weekday,
                start_time,
                duration_s,
            } => {
                let (Some(weekday), Some(start_time)) = (parse_weekday(weekday), parse_time(start_time)) else {
                    return false;
                };
                // The latest start at or before `at` (this week's or last week's).
                let days_back = (7 + at.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
                let mut start = at.date_naive().and_time(start_time).and_utc() - TimeDelta::days(i64::from(days_back));
                if start > at {
                    start -= TimeDelta::days(7);
                }
                at < start + TimeDelta::seconds(i64::from(*duration_s))
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            Self::Once { start, end } => {
                if end <= start {
                    return Err(format!("window from {start} must end after it starts, not at {end}"));
                }
            }
            Self::Weekly {
                weekday,
                start_time,
                duration_s,
            } => {
                parse_weekday(weekday)
                    .ok_or_else(|| format!("weekday {weekday:?} is not a day of the week (monday … sunday)"))?;
                parse_time(start_time).ok_or_else(|| format!("start_time {start_time:?} is not HH:MM (UTC)"))?;
                if *duration_s == 0 || *duration_s > MAX_WEEKLY_SECS {
                    return Err(format!("duration_s must be 1 to {MAX_WEEKLY_SECS} seconds"));
                }
            }
        }
        Ok(())
    }
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    text.trim().parse().ok()
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let time = NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()?;
    (time.second() == 0).then_some(time)
}

/// Validates the api's `maintenance` list; the message names the bad window.
pub fn parse_maintenance(value: &Value) -> Result<Vec<MaintenanceWindow>, String> {
    let Value::Array(items) = value else {
        return Err("must be a list of windows".into());
    };
    if items.len() > MAX_LIST {
        return Err(format!("must hold at most {MAX_LIST} windows"));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let window: MaintenanceWindow = serde_json::from_value(item.clone()).map_err(|_| {
                format!(
                    "window {index} must be {{\"start\", \"end\"}} (RFC 3339) or {{\"weekday\", \"start_time\" (HH:MM), \"duration_s\"}}"
                )
            })?;
            window.validate().map_err(|reason| format!("window {index}: {reason}"))?;
            Ok(window)
        })
        .collect()
}

/// Reads the stored `maintenance` list (entries that do not read are left out).
pub fn maintenance_from_value(value: &Value) -> Vec<MaintenanceWindow> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| serde_json::from_value(item.clone()).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `at` is inside any of `windows`.
pub fn in_maintenance(windows: &[MaintenanceWindow], at: DateTime<Utc>) -> bool {
    windows.iter().any(|window| window.contains(at))
}

/// Headers a monitor may not set: the client sets them from the request itself.
const RESERVED_HEADERS: [&str; 5] = ["host", "content-length", "transfer-encoding", "connection", "upgrade"];

/// Validates the api's `headers` object (names and values as HTTP allows them).
pub fn parse_headers(value: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(map) = value else {
        return Err("must be an object of header names to values".into());
    };
    if map.len() > MAX_LIST {
        return Err(format!("must hold at most {MAX_LIST} headers"));
    }
    let mut headers = BTreeMap::new();
    for (name, value) in map {
        let Value::String(text) = value else {
            return Err(format!("the value of {name:?} must be a string"));
        };
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a header name"))?;
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("{name} is set by the check itself"));
        }
        HeaderValue::from_str(text).map_err(|_| format!("the value of {name:?} is not a header value"))?;
        headers.insert(name.clone(), text.clone());
    }
    Ok(headers)
}

/// Validates a JSON value match's pointer (RFC 6901: empty, or starting with `/`).
pub fn validate_json_pointer(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{pointer:?} is not a JSON pointer (it starts with \"/\", e.g. \"/status\")"
        ))
    }
}

/// Whether `body` parsed as JSON holds `expected` at `pointer`.
pub fn json_matches(body: &[u8], pointer: &str, expected: &Value) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|document| document.pointer(pointer).cloned())
        .is_some_and(|found| &found == expected)
}

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The host name does not resolve.
    Dns,
    /// No connection (refused, unreachable, reset).
    Connect,
    /// The TLS handshake or the certificate failed.
    Tls,
    /// No whole answer within `timeout_ms`.
    Timeout,
    /// A status outside `expected_status`.
    Status,
    /// The body lacks `body_contains` or fails the JSON value match.
    Body,
    /// Slower than `max_latency_ms`.
    Latency,
    /// Not checked: the target's circuit breaker is open.
    Breaker,
    /// The URL resolves to an address monitors may not reach (the SSRF guard).
    Refused,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 9] = [
        Self::Dns,
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::Status,
        Self::Body,
        Self::Latency,
        Self::Breaker,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Status => "status",
            Self::Body => "body",
            Self::Latency => "latency",
            Self::Breaker => "breaker",
            Self::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == text)
    }
}

/// A monitor's verdict as stored (`paused` is shown by the api from the `paused` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    /// No verdict yet.
    Pending,
    Up,
    Down,
}

impl MonitorState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "up" => Self::Up,
            "down" => Self::Down,
            _ => Self::Pending,
        }
    }
}

/// A target's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Checks run.
    Closed,
    /// Checks of the target are held until `retry_at`.
    Open,
    /// One probe is let through; its result closes or reopens the breaker.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "open" => Self::Open,
            "half_open" => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// The breaker key of a URL: `host:port` (the scheme's port when none is given), lower case.
pub fn target_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(0);
    format!("{host}:{port}")
}

/// The breaker key of a stored URL (the URL itself when it does not parse).
pub fn target_of_text(url: &str) -> String {
    Url::parse(url)
        .map(|url| target_of(&url))
        .unwrap_or_else(|_| url.to_owned())
}

/// Where in each interval a monitor is checked, in milliseconds from a multiple of the interval
/// since the epoch: derived from its id, so monitors of one interval spread evenly over it (no
/// herd at :00) and a monitor keeps its phase across restarts and replicas.
pub fn spread_offset(monitor_id: Uuid, interval_s: i32) -> i64 {
    let interval_ms = u64::try_from(interval_s.max(1)).unwrap_or(1) * 1000;
    let (_, low) = monitor_id.as_u64_pair();
    i64::try_from(low % interval_ms).unwrap_or(0)
}

/// The first slot of a monitor's phase at or after `after`.
pub fn next_slot(monitor_id: Uuid, interval_s: i32, after: DateTime<Utc>) -> DateTime<Utc> {
    let interval_ms = i64::from(interval_s.max(1)) * 1000;
    let offset = spread_offset(monitor_id, interval_s);
    let now_ms = after.timestamp_millis();
    let base = now_ms - (now_ms - offset).rem_euclid(interval_ms);
    let slot = if base < now_ms { base + interval_ms } else { base };
    DateTime::from_timestamp_millis(slot).unwrap_or(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_parse_from_codes_classes_and_ranges() {
        let ranges = StatusRanges::parse_input(&json!([200, "3xx", "401-403"])).expect("parses");
        assert_eq!(ranges.0, vec![(200, 200), (300, 399), (401, 403)]);
        assert!(ranges.accepts(302) && ranges.accepts(402) && !ranges.accepts(404) && !ranges.accepts(201));
        assert_eq!(ranges.describe(), vec!["200", "3xx", "401-403"]);
        assert_eq!(StatusRanges::from_value(&ranges.to_value()), ranges);
        for bad in [
            json!([]),
            json!(["6xx"]),
            json!([99]),
            json!(["300-200"]),
            json!("2xx"),
            json!([true]),
        ] {
            assert!(StatusRanges::parse_input(&bad).is_err(), "{bad} is refused");
        }
        assert!(StatusRanges::default().accepts(204));
    }

    #[test]
    fn maintenance_windows_cover_their_times() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc);
        let windows = parse_maintenance(&json!([
            {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"},
            // Sunday 23:30 for two hours: into Monday.
            {"weekday": "sunday", "start_time": "23:30", "duration_s": 7200}
        ]))
        .expect("parses");
        assert!(in_maintenance(&windows, at("2026-12-01T10:30:00Z")));
        assert!(!in_maintenance(&windows, at("2026-12-01T11:00:00Z")));
        // 2026-12-06 is a Sunday.
        assert!(in_maintenance(&windows, at("2026-12-06T23:45:00Z")));
        assert!(in_maintenance(&windows, at("2026-12-07T01:29:00Z")));
        assert!(!in_maintenance(&windows, at("2026-12-07T01:30:00Z")));
        assert!(!in_maintenance(&windows, at("2026-12-06T23:29:00Z")));
        for bad in [
            json!([{"start": "2026-12-01T11:00:00Z", "end": "2026-12-01T10:00:00Z"}]),
            json!([{"weekday": "someday", "start_time": "10:00", "duration_s": 60}]),
            json!([{"weekday": "monday", "start_time": "25:00", "duration_s": 60}]),
            json!([{"weekday": "monday", "start_time": "10:00", "duration_s": 0}]),
            json!([{"start": "yesterday"}]),
        ] {
            assert!(parse_maintenance(&bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn headers_and_pointers_are_checked() {
        assert!(parse_headers(&json!({"Authorization": "Bearer x", "X-A": "1"})).is_ok());
        assert!(parse_headers(&json!({"Host": "evil"})).is_err());
        assert!(parse_headers(&json!({"bad name": "1"})).is_err());
        assert!(parse_headers(&json!({"X-A": 1})).is_err());
        assert!(validate_json_pointer("/status").is_ok() && validate_json_pointer("status").is_err());
        assert!(json_matches(br#"{"status": {"ok": true}}"#, "/status/ok", &json!(true)));
        assert!(!json_matches(b"not json", "/status", &json!("ok")));
    }

    #[test]
    fn slots_keep_a_monitor_phase_and_spread_monitors() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let slot = next_slot(id, 30, now);
        assert!(slot >= now && slot < now + TimeDelta::seconds(30));
        assert_eq!(next_slot(id, 30, slot), slot, "a slot is its own next slot");
        assert_eq!(
            next_slot(id, 30, slot + TimeDelta::milliseconds(1)),
            slot + TimeDelta::seconds(30)
        );
        let offsets: std::collections::BTreeSet<i64> =
            (0..100).map(|_| spread_offset(Uuid::new_v4(), 30) / 1000).collect();
        assert!(offsets.len() > 15, "100 monitors spread over many seconds: {offsets:?}");
        let url = Url::parse("https://Example.com/health").expect("url");
        assert_eq!(target_of(&url), "example.com:443");
    }
}
