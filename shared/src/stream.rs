//! The stored-events topic (`<prefix>events.stored`): what the persist worker publishes after
//! each commit and every api replica reads for its live streams.
//!
//! - **Placement**: each project's messages go to one partition, [`partition_for`] of the
//!   topic's partition count, chosen by the worker rather than by librdkafka's key hash, so
//!   that an api replica resuming a stream knows which partition to read without scanning the
//!   others. One partition per project also keeps a project's events in one order that every
//!   replica sees alike (the order `Last-Event-ID` resumes in).
//! - **Payload**: newline-separated event envelopes, exactly as the events topic carries them
//!   (`crate::envelope`, versioned), one message per project and batch, split at
//!   [`MAX_MESSAGE_BYTES`]. Reusing the envelope's bytes costs the worker a copy, not a second
//!   serialization, and keeps one definition of an event on the wire.
//! - **Key**: the project id, for tools that read the topic.
//! - **Kind**: the [`KIND_HEADER`] says whether the lines are events, named-metric points
//!   (the metrics worker announces what it stored the same way, on the same partition, so a
//!   project's stream has one order) or a monitor's state change ([`KIND_MONITOR`], one JSON
//!   object per message, published by the scheduler and the api's "check now" after the
//!   recording commit: `crate::monitor::announce`).
//!
//! Why a topic, and not Redis pub/sub or PostgreSQL LISTEN/NOTIFY: see docs/stream.md.

use uuid::Uuid;

use crate::envelope::{DecodeError, EventEnvelope};

/// Header naming what a stored-events message holds: [`KIND_EVENT`] (event envelopes, also
/// when the header is absent), [`KIND_METRIC`] (named-metric envelopes, `crate::metric`) or
/// [`KIND_MONITOR`] (a monitor state change, `crate::monitor::StateChange` as JSON).
pub const KIND_HEADER: &str = "pulse-stored-kind";
pub const KIND_EVENT: &str = "event";
pub const KIND_METRIC: &str = "metric";
pub const KIND_MONITOR: &str = "monitor";

/// Largest payload of one stored-events message; a batch's events of one project that would
/// exceed it go out in several messages (the broker's default limit is 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// The partition of `partitions` that carries `project`'s stored events. The low half of the
/// UUID is random in v4 and v7 ids alike (the high half of a v7 id is its creation time).
pub fn partition_for(project: Uuid, partitions: i32) -> i32 {
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(1);
    let (_, low) = project.as_u64_pair();
    i32::try_from(low % partitions).unwrap_or(0)
}

/// Joins envelope payloads into message payloads of at most [`MAX_MESSAGE_BYTES`] (a single
/// larger envelope travels alone). A payload holding a newline (JSON from another producer,
/// pretty-printed) is re-encoded compactly first, so that each line stays one envelope.
pub fn join<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for payload in payloads {
        let compact;
        let line = if payload.contains(&b'\n') {
            match serde_json::from_slice::<serde_json::Value>(payload).and_then(|value| serde_json::to_vec(&value)) {
                Ok(bytes) => {
                    compact = bytes;
                    compact.as_slice()
                }
                // It was decoded before it was stored, so this cannot happen; skip rather than
                // break the message's framing.
                Err(_) => continue,
            }
        } else {
            payload
        };
        if !current.is_empty() && current.len() + 1 + line.len() > MAX_MESSAGE_BYTES {
            messages.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(b'\n');
        }
        current.extend_from_slice(line);
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// The envelopes of one stored-events message, in order.
pub fn split(payload: &[u8]) -> impl Iterator<Item = Result<EventEnvelope, DecodeError>> + '_ {
    payload
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| EventEnvelope::decode(Some(line)))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::event::Event;

    fn envelope(index: usize) -> EventEnvelope {
        EventEnvelope::new(
            Uuid::nil(),
            Utc::now(),
            Event {
                id: Uuid::now_v7(),
                timestamp: Utc::now(),
                event_type: format!("type_{index}"),
                source: None,
                user_id: None,
                session_id: None,
                duration_ms: None,
                priority: None,
                status: None,
                tags: vec![],
                data: serde_json::json!({"text": "line\nbreak"}),
                metadata: serde_json::json!({}),
            },
        )
    }

    #[test]
    fn joined_envelopes_split_back_in_order_even_when_a_payload_had_newlines() {
        let envelopes: Vec<EventEnvelope> = (0..5).map(envelope).collect();
        let mut payloads: Vec<Vec<u8>> = envelopes.iter().map(|e| e.encode().expect("encodes")).collect();
        payloads[2] = serde_json::to_vec_pretty(&envelopes[2]).expect("pretty");
        let messages = join(payloads.iter().map(Vec::as_slice));
        assert_eq!(messages.len(), 1);
        let back: Vec<EventEnvelope> = split(&messages[0]).map(|e| e.expect("decodes")).collect();
        assert_eq!(back, envelopes);
    }

    #[test]
    fn messages_are_split_at_the_size_bound() {
        let envelopes: Vec<EventEnvelope> = (0..3000).map(envelope).collect();
        let payloads: Vec<Vec<u8>> = envelopes.iter().map(|e| e.encode().expect("encodes")).collect();
        let messages = join(payloads.iter().map(Vec::as_slice));
        assert!(messages.len() > 1, "{} bytes in one message", messages[0].len());
        assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        let back: Vec<Uuid> = messages
            .iter()
            .flat_map(|m| split(m).map(|e| e.expect("decodes").event.id))
            .collect();
        assert_eq!(back, envelopes.iter().map(|e| e.event.id).collect::<Vec<_>>());
    }

    #[test]
    fn a_project_always_lands_on_the_same_partition_within_range() {
        for _ in 0..1000 {
            let project = Uuid::now_v7();
            let partition = partition_for(project, 8);
            assert!((0..8).contains(&partition));
            assert_eq!(partition, partition_for(project, 8));
        }
        assert_eq!(partition_for(Uuid::now_v7(), 0), 0);
    }
}
