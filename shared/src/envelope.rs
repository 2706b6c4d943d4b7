//! The versioned message put on the events topic: which project an event belongs to, when the
//! api received it, and the validated event. JSON, so any Kafka tool can read it.
//!
//! Compatibility: a reader accepts every version up to [`ENVELOPE_VERSION`]; a message with a
//! higher or missing version is undecodable and goes to the dead-letter topic with the reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;

/// The envelope version this build writes. 2: `priority` is an integer (1: a text label).
pub const ENVELOPE_VERSION: u16 = 2;

/// Kafka header naming the envelope version, for tools that route without decoding.
pub const VERSION_HEADER: &str = "pulse-envelope-version";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub v: u16,
    pub project_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub event: Event,
}

/// Why a payload could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid event envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("envelope version {0} is newer than this worker understands ({ENVELOPE_VERSION})")]
    UnknownVersion(u16),
    #[error("empty message")]
    Empty,
}

impl EventEnvelope {
    pub fn new(project_id: Uuid, received_at: DateTime<Utc>, event: Event) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            project_id,
            received_at,
            event,
        }
    }

    /// The Kafka payload. Serializing plain data with string keys does not fail in practice;
    /// if it ever did, the caller refuses the event rather than send an empty message.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn decode(payload: Option<&[u8]>) -> Result<Self, DecodeError> {
        let payload = payload.filter(|p| !p.is_empty()).ok_or(DecodeError::Empty)?;
        let envelope: Self = serde_json::from_slice(payload)?;
        if envelope.v == 0 || envelope.v > ENVELOPE_VERSION {
            return Err(DecodeError::UnknownVersion(envelope.v));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priority_in(version: u16, priority: serde_json::Value) -> Option<i32> {
        let message = serde_json::json!({
            "v": version,
            "project_id": Uuid::nil(),
            "received_at": "2026-11-23T10:00:01Z",
            "event": {"id": Uuid::nil(), "timestamp": "2026-11-23T10:00:00Z", "event_type": "x", "priority": priority},
        });
        let bytes = serde_json::to_vec(&message).expect("bytes");
        EventEnvelope::decode(Some(&bytes)).expect("decodes").event.priority
    }

    #[test]
    fn priority_is_an_integer_and_version_1_labels_are_read() {
        assert_eq!(priority_in(2, 7.into()), Some(7));
        assert_eq!(priority_in(2, serde_json::Value::Null), None);
        assert_eq!(priority_in(1, " 42 ".into()), Some(42));
        assert_eq!(priority_in(1, "high".into()), None);
        assert_eq!(priority_in(1, "5000".into()), None);
    }

    #[test]
    fn round_trips_and_rejects_what_it_cannot_read() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "0192f0c1-0000-7000-8000-000000000001",
            "timestamp": "2026-11-23T10:00:00Z",
            "event_type": "signup",
            "tags": ["a"],
        }))
        .expect("event");
        let envelope = EventEnvelope::new(Uuid::nil(), Utc::now(), event);
        let decoded = EventEnvelope::decode(Some(&envelope.encode().expect("encodes"))).expect("decodes");
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.event.data, serde_json::json!({}));

        assert!(matches!(EventEnvelope::decode(None), Err(DecodeError::Empty)));
        assert!(matches!(
            EventEnvelope::decode(Some(b"{nope")),
            Err(DecodeError::Malformed(_))
        ));
        let mut future = serde_json::to_value(&envelope).expect("value");
        future["v"] = 99.into();
        let bytes = serde_json::to_vec(&future).expect("bytes");
        assert!(matches!(
            EventEnvelope::decode(Some(&bytes)),
            Err(DecodeError::UnknownVersion(99))
        ));
    }
}
