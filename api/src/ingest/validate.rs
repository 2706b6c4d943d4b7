//! Parsing the wire JSON of an event into a [`pulse_shared::event::Event`] in one pass, with a
//! field-level message for the first problem found, and the batch wrapper. The field rules
//! themselves (limits, NUL, objects) live with the event in `pulse_shared::event`, where the
//! worker's storage check uses them too (documented in docs/ingest.md, "Event fields").
//!
//! The event object is read by a hand-written serde visitor rather than a derived struct so that
//! a wrong type names its field (`duration_ms: invalid type: string "x", expected i64`) without a
//! second parse through `serde_json::Value`. Unknown and duplicate fields are refused.
//!
//! PostgreSQL cannot store the NUL character in `text` or `jsonb`; an event holding one would
//! be accepted here and then fail in the worker forever, so it is refused here, at the door
//! (and the worker dead-letters one that got onto Kafka another way).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use pulse_shared::event::{self, check_object, check_tags, check_text, Event};
pub use pulse_shared::event::{
    MAX_EVENT_TYPE_CHARS, MAX_LABEL_CHARS, MAX_NAME_CHARS, MAX_PRIORITY, MAX_TAGS, MAX_TAG_CHARS,
};
use pulse_shared::whole::Whole;

/// Code of an event that breaks a rule below.
pub const INVALID_EVENT: &str = "INVALID_EVENT";
/// Code of an event whose encoded Kafka message would exceed [`MAX_ENVELOPE_BYTES`].
pub const EVENT_TOO_LARGE: &str = "EVENT_TOO_LARGE";
/// Code of an event Kafka refused for good.
pub const EVENT_REJECTED: &str = "EVENT_REJECTED";

/// Largest encoded envelope (the Kafka message), under Kafka's default 1 MB message limit.
pub const MAX_ENVELOPE_BYTES: usize = 900 * 1024;

/// Why one event was not accepted, as reported to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the batch (0 for a single event).
    pub index: usize,
    pub code: &'static str,
    /// The field at fault, absent when the event as a whole is (not an object, too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
    pub message: String,
}

/// Why an event could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not JSON at all (only possible for a single event: batch entries are already JSON).
    Syntax(String),
    /// JSON, but not a valid event.
    Event {
        field: Option<Cow<'static, str>>,
        message: String,
    },
}

impl Invalid {
    /// The rejection of the event at `index`.
    pub fn into_rejection(self, index: usize) -> Rejection {
        match self {
            Self::Syntax(message) => Rejection {
                index,
                code: INVALID_EVENT,
                field: None,
                message,
            },
            Self::Event { field, message } => Rejection {
                index,
                code: INVALID_EVENT,
                field,
                message,
            },
        }
    }
}

/// The body of `POST /v1/events/batch`: the events are kept as raw JSON slices of the body (no
/// copy) so that each one is validated on its own and one bad event does not fail the rest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody<'a> {
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
}

/// Parses the batch wrapper; the message is serde's, with line and column.
pub fn parse_batch(body: &[u8]) -> Result<BatchBody<'_>, String> {
    serde_json::from_slice(body).map_err(|error| error.to_string())
}

/// Parses and validates one event. `received_at` is the default timestamp.
pub fn parse_event(json: &[u8], received_at: DateTime<Utc>) -> Result<Event, Invalid> {
    let mut field = None;
    let mut problem = None;
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let result = EventSeed {
        field: &mut field,
        problem: &mut problem,
        received_at,
    }
    .deserialize(&mut deserializer)
    .and_then(|event| deserializer.end().map(|()| event));
    match result {
        Ok(event) => Ok(event),
        Err(_) if problem.is_some() => {
            let (field, message) = problem.unwrap_or_default();
            Err(Invalid::Event {
                field: Some(field),
                message,
            })
        }
        Err(error) if error.is_syntax() || error.is_eof() || error.is_io() => Err(Invalid::Syntax(error.to_string())),
        Err(error) => {
            let message = without_position(&error.to_string()).to_owned();
            let message = match &field {
                Some(name) => format!("{name}: {message}"),
                None => message,
            };
            Err(Invalid::Event { field, message })
        }
    }
}

/// Checks the size of an encoded envelope.
pub fn check_encoded_size(index: usize, len: usize) -> Result<(), Rejection> {
    if len > MAX_ENVELOPE_BYTES {
        return Err(Rejection {
            index,
            code: EVENT_TOO_LARGE,
            field: None,
            message: format!("the encoded event is {len} bytes, more than the limit of {MAX_ENVELOPE_BYTES}"),
        });
    }
    Ok(())
}

/// serde_json appends " at line L column C"; inside one event of a batch that position is
/// relative to the event and only noise next to the field name.
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Timestamp,
    EventType,
    Source,
    UserId,
    SessionId,
    DurationMs,
    Priority,
    Status,
    Tags,
    Data,
    Metadata,
}

const FIELDS: &[&str] = &[
    "id",
    "timestamp",
    "event_type",
    "source",
    "user_id",
    "session_id",
    "duration_ms",
    "priority",
    "status",
    "tags",
    "data",
    "metadata",
];

impl Field {
    fn name(self) -> &'static str {
        FIELDS[self as usize]
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "id" => Self::Id,
            "timestamp" => Self::Timestamp,
            "event_type" => Self::EventType,
            "source" => Self::Source,
            "user_id" => Self::UserId,
            "session_id" => Self::SessionId,
            "duration_ms" => Self::DurationMs,
            "priority" => Self::Priority,
            "status" => Self::Status,
            "tags" => Self::Tags,
            "data" => Self::Data,
            "metadata" => Self::Metadata,
            _ => return None,
        })
    }
}

/// A key of the event object: a known field, or the name of an unknown one.
enum Key {
    Known(Field),
    Unknown(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(Field::from_name(name).map_or_else(|| Key::Unknown(name.to_owned()), Key::Known))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// An RFC 3339 timestamp, parsed from the borrowed string without copying it; a bad one is kept
/// as a message so the caller can report it against the field.
struct Timestamp(Result<DateTime<Utc>, String>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Timestamp, E> {
                Ok(Timestamp(
                    DateTime::parse_from_rfc3339(value)
                        .map(|time| time.with_timezone(&Utc))
                        .map_err(|error| {
                            format!("timestamp must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z ({error})")
                        }),
                ))
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

struct EventSeed<'s> {
    /// The field being read, for type errors raised by serde.
    field: &'s mut Option<Cow<'static, str>>,
    /// A rule broken by a well-typed value; set before aborting the parse.
    problem: &'s mut Option<(Cow<'static, str>, String)>,
    received_at: DateTime<Utc>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut seen = 0u16;
        let mut id = None;
        let mut timestamp = None;
        let mut event_type = None;
        let mut source = None;
        let mut user_id = None;
        let mut session_id = None;
        let mut duration_ms = None;
        let mut priority = None;
        let mut status = None;
        let mut tags = Vec::new();
        let mut data = None;
        let mut metadata = None;

        while let Some(key) = map.next_key::<Key>()? {
            let field = match key {
                Key::Known(field) => field,
                Key::Unknown(name) => {
                    let message = format!("unknown field `{name}`, expected one of: {}", FIELDS.join(", "));
                    *self.problem = Some((Cow::Owned(name), message));
                    return Err(de::Error::custom("unknown field"));
                }
            };
            let name = field.name();
            *self.field = Some(Cow::Borrowed(name));
            let bit = 1u16 << (field as u16);
            if seen & bit != 0 {
                *self.problem = Some((Cow::Borrowed(name), format!("duplicate field `{name}`")));
                return Err(de::Error::custom("duplicate field"));
            }
            seen |= bit;
            let broken = match field {
                Field::Id => {
                    id = map.next_value::<Option<Uuid>>()?;
                    None
                }
                Field::Timestamp => match map.next_value::<Option<Timestamp>>()? {
                    Some(Timestamp(Ok(time))) => {
                        timestamp = Some(time);
                        None
                    }
                    Some(Timestamp(Err(message))) => Some(message),
                    None => None,
                },
                Field::EventType => {
                    let value = map.next_value::<Option<String>>()?;
                    let problem = match value.as_deref() {
                        None => Some("event_type is required".to_owned()),
                        Some(value) if value.trim().is_empty() => Some("event_type must not be empty".to_owned()),
                        Some(value) => check_text(name, value, MAX_EVENT_TYPE_CHARS),
                    };
                    event_type = value;
                    problem
                }
                Field::Source => read_text(&mut map, name, MAX_NAME_CHARS, &mut source)?,
                Field::UserId => read_text(&mut map, name, MAX_NAME_CHARS, &mut user_id)?,
                Field::SessionId => read_text(&mut map, name, MAX_NAME_CHARS, &mut session_id)?,
                Field::Priority => {
                    let value = map.next_value::<Option<Whole<i64>>>()?.map(|whole| whole.0);
                    match value.map(|number| i32::try_from(number).ok().filter(|n| (0..=MAX_PRIORITY).contains(n))) {
                        Some(Some(number)) => {
                            priority = Some(number);
                            None
                        }
                        Some(None) => Some(format!(
                            "priority must be between 0 and {MAX_PRIORITY}, got {}",
                            value.unwrap_or_default()
                        )),
                        None => None,
                    }
                }
                Field::Status => read_text(&mut map, name, MAX_LABEL_CHARS, &mut status)?,
                Field::DurationMs => {
                    duration_ms = map.next_value::<Option<Whole<i64>>>()?.map(|whole| whole.0);
                    match duration_ms {
                        Some(ms) if ms < 0 => Some(format!("duration_ms must be 0 or more, got {ms}")),
                        _ => None,
                    }
                }
                Field::Tags => {
                    tags = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default();
                    check_tags(&tags)
                }
                Field::Data => {
                    data = map.next_value::<Option<Value>>()?;
                    data.as_ref().and_then(|value| check_object(name, value))
                }
                Field::Metadata => {
                    metadata = map.next_value::<Option<Value>>()?;
                    metadata.as_ref().and_then(|value| check_object(name, value))
                }
            };
            if let Some(message) = broken {
                *self.problem = Some((Cow::Borrowed(name), message));
                return Err(de::Error::custom("invalid field"));
            }
        }
        *self.field = None;

        let Some(event_type) = event_type else {
            *self.problem = Some((Cow::Borrowed("event_type"), "event_type is required".to_owned()));
            return Err(de::Error::custom("missing field"));
        };
        Ok(Event {
            id: id.unwrap_or_else(Uuid::now_v7),
            timestamp: timestamp.unwrap_or(self.received_at),
            event_type,
            source,
            user_id,
            session_id,
            duration_ms,
            priority,
            status,
            tags,
            data: data.unwrap_or_else(event::empty_object),
            metadata: metadata.unwrap_or_else(event::empty_object),
        })
    }
}

/// Reads an optional string field into `slot` and returns the rule it breaks, if any.
fn read_text<'de, A: MapAccess<'de>>(
    map: &mut A,
    name: &'static str,
    max_chars: usize,
    slot: &mut Option<String>,
) -> Result<Option<String>, A::Error> {
    *slot = map.next_value::<Option<String>>()?;
    Ok(slot.as_deref().and_then(|value| check_text(name, value, max_chars)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().expect("time")
    }

    fn parse(value: serde_json::Value) -> Result<Event, Invalid> {
        parse_event(value.to_string().as_bytes(), now())
    }

    fn field_error(value: serde_json::Value) -> (String, String) {
        match parse(value) {
            Err(Invalid::Event { field, message }) => (field.map(|f| f.into_owned()).unwrap_or_default(), message),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let event = parse(json!({"event_type": "signup"})).expect("valid");
        assert_eq!(event.event_type, "signup");
        assert_eq!(event.timestamp, now());
        assert_eq!(event.id.get_version_num(), 7);
        assert_eq!(event.data, json!({}));
        assert_eq!(event.metadata, json!({}));
        assert!(event.tags.is_empty());
    }

    #[test]
    fn full_event_is_kept_and_timestamps_become_utc() {
        let event = parse(json!({
            "id": "0192f0c1-0000-7000-8000-000000000001",
            "timestamp": "2026-01-31T14:00:00+02:00",
            "event_type": "checkout",
            "source": "web",
            "user_id": "u1",
            "session_id": "s1",
            "duration_ms": 0,
            "priority": 5,
            "status": "ok",
            "tags": ["a", "b"],
            "data": {"amount": 3},
            "metadata": {"ip": "x"},
        }))
        .expect("valid");
        assert_eq!(event.id.to_string(), "0192f0c1-0000-7000-8000-000000000001");
        assert_eq!(event.timestamp.to_rfc3339(), "2026-01-31T12:00:00+00:00");
        assert_eq!(event.tags, vec!["a", "b"]);
        assert_eq!(event.data, json!({"amount": 3}));
        assert_eq!(event.duration_ms, Some(0));
    }

    #[test]
    fn nulls_mean_absent_and_any_date_is_accepted() {
        let event = parse(json!({
            "event_type": "x", "id": null, "timestamp": null, "source": null, "tags": null,
            "data": null, "metadata": null, "duration_ms": null,
        }))
        .expect("valid");
        assert_eq!(event.data, json!({}));
        let old = parse(json!({"event_type": "x", "timestamp": "1970-01-01T00:00:00Z"})).expect("valid");
        assert_eq!(old.timestamp.timestamp(), 0);
        parse(json!({"event_type": "x", "timestamp": "9999-12-31T23:59:59.999Z"})).expect("far future");
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases = [
            (json!({}), "event_type", "event_type is required"),
            (json!({"event_type": null}), "event_type", "event_type is required"),
            (json!({"event_type": "  "}), "event_type", "must not be empty"),
            (
                json!({"event_type": "é".repeat(201)}),
                "event_type",
                "at most 200 characters",
            ),
            (json!({"event_type": 5}), "event_type", "invalid type: integer `5`"),
            (json!({"event_type": "x", "id": "nope"}), "id", "id: "),
            (
                json!({"event_type": "x", "timestamp": "yesterday"}),
                "timestamp",
                "RFC 3339",
            ),
            (
                json!({"event_type": "x", "timestamp": "2026-01-01 10:00:00"}),
                "timestamp",
                "RFC 3339",
            ),
            (
                json!({"event_type": "x", "timestamp": 1700000000}),
                "timestamp",
                "invalid type",
            ),
            (
                json!({"event_type": "x", "source": "s".repeat(201)}),
                "source",
                "at most 200",
            ),
            (json!({"event_type": "x", "user_id": 42}), "user_id", "invalid type"),
            (json!({"event_type": "x", "session_id": "a\u{0}b"}), "session_id", "NUL"),
            (
                json!({"event_type": "x", "priority": 1001}),
                "priority",
                "between 0 and 1000",
            ),
            (
                json!({"event_type": "x", "priority": -1}),
                "priority",
                "between 0 and 1000",
            ),
            (
                json!({"event_type": "x", "priority": "high"}),
                "priority",
                "whole number",
            ),
            (json!({"event_type": "x", "priority": 1.5}), "priority", "whole number"),
            (
                json!({"event_type": "x", "status": "s".repeat(65)}),
                "status",
                "at most 64",
            ),
            (
                json!({"event_type": "x", "duration_ms": -1}),
                "duration_ms",
                "0 or more",
            ),
            (
                json!({"event_type": "x", "duration_ms": 1.5}),
                "duration_ms",
                "invalid type",
            ),
            (
                json!({"event_type": "x", "duration_ms": "10"}),
                "duration_ms",
                "invalid type",
            ),
            (json!({"event_type": "x", "tags": "a"}), "tags", "invalid type"),
            (json!({"event_type": "x", "tags": [1]}), "tags", "invalid type"),
            (
                json!({"event_type": "x", "tags": [""]}),
                "tags",
                "tags[0] must not be empty",
            ),
            (
                json!({"event_type": "x", "tags": ["a", "t".repeat(201)]}),
                "tags",
                "tags[1] must be at most 200",
            ),
            (
                json!({"event_type": "x", "tags": vec!["t"; 51]}),
                "tags",
                "at most 50 tags",
            ),
            (
                json!({"event_type": "x", "data": [1]}),
                "data",
                "must be a JSON object, got an array",
            ),
            (json!({"event_type": "x", "metadata": "m"}), "metadata", "got a string"),
            (json!({"event_type": "x", "data": {"a": ["\u{0}"]}}), "data", "NUL"),
            (json!({"event_type": "x", "data": {"\u{0}": 1}}), "data", "NUL"),
            (
                json!({"event_type": "x", "colour": "red"}),
                "colour",
                "unknown field `colour`",
            ),
        ];
        for (input, field, message) in cases {
            let (got_field, got_message) = field_error(input.clone());
            assert_eq!(got_field, field, "{input}");
            assert!(
                got_message.contains(message),
                "{input}: {got_message:?} lacks {message:?}"
            );
            assert!(!got_message.contains(" at line "), "{got_message}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        parse(json!({"event_type": "é".repeat(200), "tags": vec!["t".repeat(200); 50], "priority": 1000}))
            .expect("at the limits");
    }

    #[test]
    fn duplicate_fields_and_non_objects_are_refused() {
        let (field, message) = match parse_event(br#"{"event_type":"a","event_type":"b"}"#, now()) {
            Err(Invalid::Event { field, message }) => (field, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(field.as_deref(), Some("event_type"));
        assert!(message.contains("duplicate"));
        assert!(matches!(parse(json!([1])), Err(Invalid::Event { field: None, .. })));
        assert!(matches!(parse(json!("x")), Err(Invalid::Event { field: None, .. })));
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        match parse_event(b"{\n  \"event_type\": \"x\",\n}", now()) {
            Err(Invalid::Syntax(message)) => assert!(message.contains("line 3"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_event(b"", now()), Err(Invalid::Syntax(_))));
        assert!(matches!(
            parse_event(b"{\"event_type\": \"x\"} trailing", now()),
            Err(Invalid::Syntax(_))
        ));
    }

    #[test]
    fn batch_wrapper_keeps_events_raw() {
        let body = br#"{"events": [{"event_type": "a"}, {"bad": 1}, 3]}"#;
        let batch = parse_batch(body).expect("batch");
        assert_eq!(batch.events.len(), 3);
        assert!(parse_event(batch.events[0].get().as_bytes(), now()).is_ok());
        let rejection = parse_event(batch.events[1].get().as_bytes(), now())
            .expect_err("bad")
            .into_rejection(1);
        assert_eq!(rejection.index, 1);
        assert_eq!(rejection.code, INVALID_EVENT);
        assert_eq!(rejection.field.as_deref(), Some("bad"));
        assert!(parse_batch(br#"{"events": {}}"#).is_err());
        assert!(parse_batch(br#"{"events": [], "extra": 1}"#).is_err());
        assert!(parse_batch(br#"{"evts": []}"#).is_err());
        assert!(parse_batch(br#"{"events": [1,]}"#)
            .expect_err("syntax")
            .contains("line 1"));
    }

    #[test]
    fn encoded_size_limit() {
        assert!(check_encoded_size(0, MAX_ENVELOPE_BYTES).is_ok());
        let rejection = check_encoded_size(4, MAX_ENVELOPE_BYTES + 1).expect_err("too large");
        assert_eq!((rejection.index, rejection.code), (4, EVENT_TOO_LARGE));
    }

    #[test]
    fn rejection_serializes_without_absent_field() {
        let rejection = check_encoded_size(2, usize::MAX).expect_err("too large");
        let value = serde_json::to_value(&rejection).expect("json");
        assert_eq!(value["index"], 2);
        assert!(value.get("field").is_none());
    }
}
