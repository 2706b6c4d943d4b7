//! The event Pulse stores, and its storage rules, in one place for the api and the worker.
//!
//! - [`Event`]: one validated event, what the api puts on Kafka inside an
//!   [`crate::envelope::EventEnvelope`] and what the persist worker stores (columns in
//!   `schema.rs`; the SQL in the worker's `persist/store.rs`). The api's wire parser
//!   (`api/src/ingest/validate.rs`) builds it; field meanings are in docs/ingest.md.
//! - The limits (`MAX_*`), which the api enforces and the OpenAPI document states.
//! - The rules: [`check_text`], [`check_tags`], [`check_object`] (the api refuses a breaking
//!   event at the door, naming the field) and [`check_storable`] (what PostgreSQL would refuse
//!   for ever: the worker dead-letters it rather than retry it for ever). Both sides find NUL
//!   with the same [`has_nul`] / [`json_has_nul`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `event_type`: required, 1 to 200 characters, not only whitespace.
pub const MAX_EVENT_TYPE_CHARS: usize = 200;
/// `source`, `user_id`, `session_id`: at most 200 characters.
pub const MAX_NAME_CHARS: usize = 200;
/// `status`: at most 64 characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// `priority`: an integer from 0 to this.
pub const MAX_PRIORITY: i32 = 1000;
/// `tags`: at most 50 tags.
pub const MAX_TAGS: usize = 50;
/// Each tag: 1 to 200 characters.
pub const MAX_TAG_CHARS: usize = 200;

/// What `str::trim` removes (Unicode White_Space), as the body of a regex class in the subset
/// ECMA-262, Python's `re` and Rust's regex crates read alike; the OpenAPI `pattern`s use it.
pub const WHITESPACE_CLASS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// The OpenAPI `pattern` of a text field [`check_text`] takes: no NUL.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// The OpenAPI `pattern` of `event_type`: no NUL, and not only whitespace.
pub fn event_type_pattern() -> String {
    format!(r"^[^\x00]*[^\x00{WHITESPACE_CLASS}][^\x00]*$")
}
/// One validated event: what the api puts on Kafka inside an [`crate::envelope::EventEnvelope`]
/// and what the persist worker stores. Field meanings are in README.md ("Event fields").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "priority_of_any_version"
    )]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default = "empty_object")]
    pub data: Value,
    #[serde(default = "empty_object")]
    pub metadata: Value,
}

/// `priority` as envelope version 2 writes it (an integer), or as version 1 did (a free-form
/// label): a label that is a number from 0 to [`MAX_PRIORITY`] is that number, any other is
/// dropped (the migration that made the column an integer kept stored labels in
/// `metadata.priority_label`; a version-1 message still in flight at the upgrade loses it).
fn priority_of_any_version<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Priority {
        Number(i32),
        Label(String),
    }
    Ok(match Option::<Priority>::deserialize(deserializer)? {
        Some(Priority::Number(number)) => Some(number),
        Some(Priority::Label(label)) => label
            .trim()
            .parse()
            .ok()
            .filter(|number| (0..=MAX_PRIORITY).contains(number)),
        None => None,
    })
}

/// `{}`, the value of an absent `data` or `metadata`.
pub fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Whether `text` holds the NUL character, which PostgreSQL `text` and `jsonb` cannot store.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

/// Length in characters (not bytes) and no NUL.
pub fn check_text(name: &str, value: &str, max_chars: usize) -> Option<String> {
    // A string of at most `max_chars` bytes has at most that many characters: count only when
    // the cheap test is not enough.
    if value.len() > max_chars {
        let chars = value.chars().count();
        if chars > max_chars {
            return Some(format!("{name} must be at most {max_chars} characters, got {chars}"));
        }
    }
    if has_nul(value) {
        return Some(format!("{name} must not contain the NUL character (\\u0000)"));
    }
    None
}

pub fn check_tags(tags: &[String]) -> Option<String> {
    if tags.len() > MAX_TAGS {
        return Some(format!("tags holds at most {MAX_TAGS} tags, got {}", tags.len()));
    }
    for (position, tag) in tags.iter().enumerate() {
        if tag.is_empty() {
            return Some(format!("tags[{position}] must not be empty"));
        }
        if let Some(message) = check_text("tags[]", tag, MAX_TAG_CHARS) {
            return Some(message.replacen("tags[]", &format!("tags[{position}]"), 1));
        }
    }
    None
}

/// `data` and `metadata` must be objects (`null` means `{}`) with no NUL anywhere.
pub fn check_object(name: &str, value: &Value) -> Option<String> {
    if !value.is_object() {
        return Some(format!("{name} must be a JSON object, got {}", kind(value)));
    }
    if json_has_nul(value) {
        return Some(format!(
            "{name} must not contain the NUL character (\\u0000) in any key or string"
        ));
    }
    None
}

pub fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => has_nul(text),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(key, value)| has_nul(key) || json_has_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// PostgreSQL `timestamptz` bounds in microseconds since 2000-01-01 UTC (`MIN_TIMESTAMP` and
/// `END_TIMESTAMP` in PostgreSQL's `datatype/timestamp.h`): 4714-11-24 BC to 294277-01-01.
const PG_MIN_MICROS: i64 = -211_813_488_000_000_000;
const PG_END_MICROS: i64 = 9_223_371_331_200_000_000;
/// 2000-01-01 UTC in Unix microseconds.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

pub fn in_pg_range(time: &DateTime<Utc>) -> bool {
    let micros = time.timestamp_micros() - PG_EPOCH_UNIX_MICROS;
    (PG_MIN_MICROS..PG_END_MICROS).contains(&micros)
}

/// What PostgreSQL would refuse for ever (a NUL in any text or JSON string, a time outside
/// `timestamptz`): the worker dead-letters such an event instead of failing its batch on
/// every retry. The api's rules ([`check_text`], [`check_object`]) refuse the same at the door.
pub fn check_storable(event: &Event, received_at: &DateTime<Utc>) -> Result<(), String> {
    for (field, time) in [("timestamp", &event.timestamp), ("received_at", received_at)] {
        if !in_pg_range(time) {
            return Err(format!("{field} {time} is outside PostgreSQL's timestamptz range"));
        }
    }
    let texts = [
        ("event_type", Some(event.event_type.as_str())),
        ("source", event.source.as_deref()),
        ("user_id", event.user_id.as_deref()),
        ("session_id", event.session_id.as_deref()),
        ("status", event.status.as_deref()),
    ];
    for (field, text) in texts {
        if text.is_some_and(has_nul) {
            return Err(format!(
                "{field} contains a NUL character, which PostgreSQL text cannot hold"
            ));
        }
    }
    if let Some(priority) = event.priority.filter(|priority| !(0..=MAX_PRIORITY).contains(priority)) {
        return Err(format!("priority {priority} is outside 0 to {MAX_PRIORITY}"));
    }
    if event.tags.iter().any(|tag| has_nul(tag)) {
        return Err("tags contain a NUL character, which PostgreSQL text cannot hold".into());
    }
    for (field, value) in [("data", &event.data), ("metadata", &event.metadata)] {
        if json_has_nul(value) {
            return Err(format!("{field} contains \\u0000, which PostgreSQL jsonb cannot hold"));
        }
    }
    Ok(())
}
