//! Named metrics: the point Pulse stores, its limits and rules, and the versioned message on the
//! metrics topic, in one place for the api and the metrics worker.
//!
//! - [`MetricPoint`]: one validated point (`name`, `value`, `timestamp`, `labels`, `id`), what
//!   the api puts on `<prefix>metrics` inside a [`MetricEnvelope`] (keyed by project id) and
//!   what the metrics worker stores (tables in `schema.rs`, SQL in the worker's
//!   `metric_points/store.rs`). Field meanings: docs/ingest.md, "Named metrics".
//! - The limits (`MAX_*`), as constants beside the point; the api enforces them and the OpenAPI
//!   document states them.
//! - [`check`]: the rules, one message naming the field. The api refuses a breaking point at
//!   the door; the worker runs the same check on what it decodes (a point put on the topic by
//!   another producer) and dead-letters what breaks it rather than retry it for ever.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{has_nul, in_pg_range};

/// `name`: 1 to 128 characters.
pub const MAX_METRIC_NAME_CHARS: usize = 128;
/// The pattern of `name` (also the OpenAPI `pattern`): a letter or `_`, then letters, digits,
/// `_`, `.`, `:` or `-`. Names travel in URL paths (`/v1/metrics/{name}/latest`), so they hold
/// nothing that needs escaping.
pub const METRIC_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_.:-]*$";
/// `labels`: at most 16 labels.
pub const MAX_LABELS: usize = 16;
/// Each label key: 1 to 64 characters, a letter or `_`, then letters, digits or `_` (keys are
/// named in query parameters: `labels.KEY=VALUE`, `group_by=labels.KEY`).
pub const MAX_LABEL_KEY_CHARS: usize = 64;
/// The pattern of a label key.
pub const LABEL_KEY_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";
/// Each label value: at most 128 characters (empty is allowed), no NUL.
pub const MAX_LABEL_VALUE_CHARS: usize = 128;
/// Points in one `POST /v1/metrics/batch`.
pub const MAX_BATCH_POINTS: usize = 1000;

/// The envelope version this build writes on the metrics topic.
pub const METRIC_ENVELOPE_VERSION: u16 = 1;

/// One validated metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub id: Uuid,
    pub name: String,
    pub value: f64,
    pub timestamp: DateTime<Utc>,
    /// Sorted by key (a `BTreeMap`), so a label set has one JSON form.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `true` when `name` is a valid metric name (pattern and length).
pub fn valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("name must not be empty".into());
    };
    if name.chars().count() > MAX_METRIC_NAME_CHARS {
        return Some(format!("name must be at most {MAX_METRIC_NAME_CHARS} characters"));
    }
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if !(first.is_ascii_alphabetic() || first == '_') || !rest_ok {
        return Some(format!(
            "name must start with a letter or _ and hold only letters, digits, _, ., : or - (pattern {METRIC_NAME_PATTERN})"
        ));
    }
    None
}

/// `true` when `key` is a valid label key (pattern and length).
pub fn valid_label_key(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else { return false };
    key.len() <= MAX_LABEL_KEY_CHARS
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first rule `point` breaks, as `(field, message)`.
pub fn check(point: &MetricPoint) -> Result<(), (String, String)> {
    if let Some(message) = name_problem(&point.name) {
        return Err(("name".into(), message));
    }
    if !point.value.is_finite() {
        return Err(("value".into(), "value must be a finite number".into()));
    }
    if !in_pg_range(&point.timestamp) {
        return Err(("timestamp".into(), "timestamp is outside the storable range".into()));
    }
    if point.labels.len() > MAX_LABELS {
        return Err((
            "labels".into(),
            format!("at most {MAX_LABELS} labels, got {}", point.labels.len()),
        ));
    }
    for (key, value) in &point.labels {
        if !valid_label_key(key) {
            return Err((
                "labels".into(),
                format!(
                    "label key {key:?} must be 1 to {MAX_LABEL_KEY_CHARS} characters, a letter or _ then letters, digits or _"
                ),
            ));
        }
        let field = format!("labels.{key}");
        if has_nul(value) {
            return Err((field.clone(), format!("{field} must not contain NUL")));
        }
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            return Err((
                field.clone(),
                format!("{field} must be at most {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// The message on the metrics topic: the project, when the api received the point, the point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEnvelope {
    pub v: u16,
    pub project_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub point: MetricPoint,
}

/// Why a payload could not be read as a metric envelope.
#[derive(Debug, thiserror::Error)]
pub enum MetricDecodeError {
    #[error("not a valid metric envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("metric envelope version {0} is newer than this worker understands ({METRIC_ENVELOPE_VERSION})")]
    UnknownVersion(u16),
    #[error("empty message")]
    Empty,
    /// Decoded, but breaks a rule of [`check`] (written by something other than this api).
    #[error("{field}: {message}")]
    Unstorable { field: String, message: String },
}

impl MetricEnvelope {
    pub fn new(project_id: Uuid, received_at: DateTime<Utc>, point: MetricPoint) -> Self {
        Self {
            v: METRIC_ENVELOPE_VERSION,
            project_id,
            received_at,
            point,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Decodes and checks one payload.
    pub fn decode(payload: Option<&[u8]>) -> Result<Self, MetricDecodeError> {
        let payload = payload.filter(|p| !p.is_empty()).ok_or(MetricDecodeError::Empty)?;
        let envelope: Self = serde_json::from_slice(payload)?;
        if envelope.v == 0 || envelope.v > METRIC_ENVELOPE_VERSION {
            return Err(MetricDecodeError::UnknownVersion(envelope.v));
        }
        check(&envelope.point).map_err(|(field, message)| MetricDecodeError::Unstorable { field, message })?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str) -> MetricPoint {
        MetricPoint {
            id: Uuid::nil(),
            name: name.into(),
            value: 1.5,
            timestamp: "2026-12-01T10:00:00Z".parse().expect("time"),
            labels: BTreeMap::from([("region".into(), "eu".into())]),
        }
    }

    #[test]
    fn names_and_label_keys_follow_their_patterns() {
        for good in ["cpu", "_x", "http.requests:rate-5m", &"a".repeat(MAX_METRIC_NAME_CHARS)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "1cpu",
            "cpu load",
            "cpu/1",
            "é",
            &"a".repeat(MAX_METRIC_NAME_CHARS + 1),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_label_key("host_1"));
        assert!(!valid_label_key("host-1"));
        assert!(!valid_label_key(""));
    }

    #[test]
    fn checks_name_each_problem_by_field() {
        assert!(check(&point("cpu")).is_ok());
        let mut many = point("cpu");
        many.labels = (0..=MAX_LABELS).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(check(&many).expect_err("many").0, "labels");
        let mut long = point("cpu");
        long.labels.insert("host".into(), "x".repeat(MAX_LABEL_VALUE_CHARS + 1));
        assert_eq!(check(&long).expect_err("long").0, "labels.host");
        let mut nan = point("cpu");
        nan.value = f64::NAN;
        assert_eq!(check(&nan).expect_err("nan").0, "value");
    }

    #[test]
    fn envelopes_round_trip_and_unreadable_ones_say_why() {
        let envelope = MetricEnvelope::new(Uuid::nil(), Utc::now(), point("cpu"));
        let bytes = envelope.encode().expect("encodes");
        assert_eq!(MetricEnvelope::decode(Some(&bytes)).expect("decodes"), envelope);
        assert!(matches!(MetricEnvelope::decode(None), Err(MetricDecodeError::Empty)));
        assert!(matches!(
            MetricEnvelope::decode(Some(b"{")),
            Err(MetricDecodeError::Malformed(_))
        ));
        let mut future = serde_json::to_value(&envelope).expect("value");
        future["v"] = 9.into();
        let bytes = serde_json::to_vec(&future).expect("bytes");
        assert!(matches!(
            MetricEnvelope::decode(Some(&bytes)),
            Err(MetricDecodeError::UnknownVersion(9))
        ));
        let mut bad = serde_json::to_value(&envelope).expect("value");
        bad["point"]["name"] = "no spaces".into();
        let bytes = serde_json::to_vec(&bad).expect("bytes");
        assert!(matches!(
            MetricEnvelope::decode(Some(&bytes)),
            Err(MetricDecodeError::Unstorable { .. })
        ));
    }
}
