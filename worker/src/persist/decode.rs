//! Turns a Kafka payload into an event the store can write, or into the reason it cannot.
//!
//! Beyond [`EventEnvelope::decode`] (empty, malformed, unknown version) this rejects the values
//! PostgreSQL would refuse for ever: a NUL character in any text or JSON string, and a
//! timestamp outside `timestamptz`'s range. Letting one through would fail its batch on every
//! retry and stall the partition; rejected, it goes to the dead-letter topic like any
//! undecodable message and the partition keeps moving.

use pulse_shared::envelope::{DecodeError, EventEnvelope};
use pulse_shared::event;

/// Every rejection reason, the `reason` label of `pulse_events_dead_lettered_total`.
pub const REASONS: [&str; 4] = ["empty", "malformed", "unknown_version", "unstorable"];

/// Why a message is dead-lettered: a short label for metrics and the full text for the
/// `pulse-dlq-reason` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// One of [`REASONS`].
    pub reason: &'static str,
    /// Human-readable cause, written to the dead-letter header.
    pub message: String,
}

impl From<DecodeError> for Rejection {
    fn from(error: DecodeError) -> Self {
        let reason = match error {
            DecodeError::Empty => "empty",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::UnknownVersion(_) => "unknown_version",
        };
        Self {
            reason,
            message: error.to_string(),
        }
    }
}

/// Decodes and checks one payload.
pub fn decode(payload: Option<&[u8]>) -> Result<EventEnvelope, Rejection> {
    let envelope = EventEnvelope::decode(payload)?;
    event::check_storable(&envelope.event, &envelope.received_at).map_err(|message| Rejection {
        reason: "unstorable",
        message,
    })?;
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use pulse_shared::event::in_pg_range;
    use serde_json::{json, Value};

    fn payload(event: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "v": 2,
            "project_id": "0192f0c1-0000-7000-8000-0000000000aa",
            "received_at": "2026-11-23T10:00:01Z",
            "event": event,
        }))
        .expect("json")
    }

    fn event() -> Value {
        json!({"id": "0192f0c1-0000-7000-8000-000000000001", "timestamp": "2026-11-23T10:00:00Z", "event_type": "signup"})
    }

    #[test]
    fn accepts_a_valid_envelope() {
        let envelope = decode(Some(&payload(event()))).expect("valid");
        assert_eq!(envelope.event.event_type, "signup");
    }

    #[test]
    fn labels_each_kind_of_undecodable_message() {
        assert_eq!(decode(None).expect_err("none").reason, "empty");
        assert_eq!(decode(Some(b"")).expect_err("empty").reason, "empty");
        assert_eq!(decode(Some(b"{not json")).expect_err("bad").reason, "malformed");
        let mut future: Value = serde_json::from_slice(&payload(event())).expect("json");
        future["v"] = 7.into();
        let rejection = decode(Some(&serde_json::to_vec(&future).expect("json"))).expect_err("future");
        assert_eq!(rejection.reason, "unknown_version");
        assert!(rejection.message.contains('7'), "{}", rejection.message);
    }

    #[test]
    fn rejects_what_postgres_would_refuse_for_ever() {
        let mut with_nul = event();
        with_nul["tags"] = json!(["ok", "bad\u{0}"]);
        assert_eq!(
            decode(Some(&payload(with_nul))).expect_err("nul tag").reason,
            "unstorable"
        );

        let mut nested = event();
        nested["data"] = json!({"a": [{"b": "x\u{0}y"}]});
        let rejection = decode(Some(&payload(nested))).expect_err("nul in json");
        assert_eq!(rejection.reason, "unstorable");
        assert!(rejection.message.starts_with("data"), "{}", rejection.message);

        let mut nul_key = event();
        nul_key["metadata"] = json!({"k\u{0}": 1});
        assert_eq!(
            decode(Some(&payload(nul_key))).expect_err("nul key").reason,
            "unstorable"
        );

        let mut ancient = event();
        ancient["timestamp"] = json!("-5000-01-01T00:00:00Z");
        assert_eq!(
            decode(Some(&payload(ancient))).expect_err("too old").reason,
            "unstorable"
        );

        let mut loud = event();
        loud["priority"] = json!(5000);
        let rejection = decode(Some(&payload(loud))).expect_err("priority out of range");
        assert_eq!(rejection.reason, "unstorable");
        assert!(rejection.message.starts_with("priority"), "{}", rejection.message);

        // chrono ends (year 262143) before PostgreSQL does (294276): any decoded future date fits.
        let mut far = event();
        far["timestamp"] = json!("+200000-01-01T00:00:00Z");
        assert!(decode(Some(&payload(far))).is_ok());
    }

    #[test]
    fn range_edges_match_postgres() {
        // 4714-11-24 BC is year -4713 in chrono's proleptic (astronomical) numbering.
        let first = chrono::NaiveDate::from_ymd_opt(-4713, 11, 24)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .expect("min")
            .and_utc();
        assert!(in_pg_range(&first));
        assert!(!in_pg_range(&(first - chrono::Duration::microseconds(1))));
        assert!(in_pg_range(&DateTime::<Utc>::MAX_UTC));
    }
}
