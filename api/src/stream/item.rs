//! One message of the live stream, built once per stored event and shared by every client
//! that receives it: its position in the stored-events topic, what filters look at, and its
//! JSON, `{"type": "event", "data": {…}}` with the event in the shape `GET /v1/events/{id}`
//! returns, encoded once as a WebSocket text and once as an SSE frame (clients share the
//! bytes: sending to one more client costs a reference count, not a copy). `type` leaves room
//! for the other kinds: `metric` (named-metric points) and `monitor` (an uptime monitor's state
//! change, `{monitor_id, name, state, previous, at, error_class, error}`) today, alert state
//! changes later.

use actix_web::web::Bytes;
use bytestring::ByteString;
use chrono::SubsecRound;
use pulse_shared::envelope::EventEnvelope;
use serde::Serialize;
use uuid::Uuid;

use pulse_shared::metric::MetricEnvelope;

use crate::query::metrics::StoredPoint;
use crate::query::StoredEvent;

/// What a message is about, as filters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Event {
        event_type: String,
        source: Option<String>,
    },
    /// A named-metric point, for clients that asked for its name (`metrics=`).
    Metric {
        name: String,
    },
    /// An uptime monitor's state change, for every client of the project.
    Monitor,
}

/// A stream message.
#[derive(Debug)]
pub struct Item {
    /// Offset in the project's partition of the stored-events topic (resumption skips what
    /// it replayed by this).
    pub offset: i64,
    /// The event's or point's id (an event's is SSE's `id:`).
    pub id: Uuid,
    pub kind: Kind,
    /// The whole message, as a WebSocket text frame.
    pub json: ByteString,
    /// The same as one Server-Sent Event (`event:`, `id:`, `data:`).
    pub sse: Bytes,
}

#[derive(Serialize)]
struct Message<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a T,
}

/// `{"type": kind, "data": data}`.
pub fn message<T: Serialize>(kind: &str, data: &T) -> String {
    serde_json::to_string(&Message { kind, data }).unwrap_or_else(|_| format!(r#"{{"type":"{kind}"}}"#))
}

impl Item {
    /// The message of a stored event (timestamps at the database's microseconds, as read back).
    pub fn event(offset: i64, envelope: EventEnvelope) -> Self {
        let event = envelope.event;
        let stored = StoredEvent {
            id: event.id,
            timestamp: event.timestamp.trunc_subsecs(6),
            received_at: envelope.received_at.trunc_subsecs(6),
            event_type: event.event_type,
            source: event.source,
            user_id: event.user_id,
            session_id: event.session_id,
            duration_ms: event.duration_ms,
            priority: event.priority,
            status: event.status,
            tags: event.tags,
            data: event.data,
            metadata: event.metadata,
        };
        let json = message("event", &stored);
        let sse = Bytes::from(format!("event: event\nid: {}\ndata: {json}\n\n", stored.id));
        Self {
            offset,
            id: stored.id,
            kind: Kind::Event {
                event_type: stored.event_type,
                source: stored.source,
            },
            json: json.into(),
            sse,
        }
    }

    /// The message of a stored named-metric point, `{"type": "metric", "data": {…}}` with the
    /// point as `GET /v1/metrics` lists it. Its SSE frame has no `id:`, so `Last-Event-ID`
    /// stays the last event's (points after it are replayed with the events).
    pub fn metric(offset: i64, envelope: MetricEnvelope) -> Self {
        let point = envelope.point;
        let stored = StoredPoint {
            id: point.id,
            name: point.name,
            timestamp: point.timestamp.trunc_subsecs(6),
            value: point.value,
            labels: serde_json::to_value(point.labels).unwrap_or_else(|_| serde_json::json!({})),
            received_at: envelope.received_at.trunc_subsecs(6),
        };
        let json = message("metric", &stored);
        let sse = Bytes::from(format!("event: metric\ndata: {json}\n\n"));
        Self {
            offset,
            id: stored.id,
            kind: Kind::Metric { name: stored.name },
            json: json.into(),
            sse,
        }
    }

    /// The message of a monitor's state change (`pulse_shared::monitor::StateChange` as the
    /// scheduler or the api's "check now" published it), `{"type": "monitor", "data": {…}}`.
    /// Its SSE frame has no `id:` (resumption goes by events). `None`: not a state change.
    pub fn monitor(offset: i64, payload: &[u8]) -> Option<Self> {
        let data: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let id = data.get("monitor_id")?.as_str()?.parse().ok()?;
        let json = message("monitor", &data);
        let sse = Bytes::from(format!("event: monitor\ndata: {json}\n\n"));
        Some(Self {
            offset,
            id,
            kind: Kind::Monitor,
            json: json.into(),
            sse,
        })
    }

    #[cfg(test)]
    pub fn test_event(offset: i64, event_type: &str) -> Self {
        Self {
            offset,
            id: Uuid::now_v7(),
            kind: Kind::Event {
                event_type: event_type.into(),
                source: None,
            },
            json: ByteString::new(),
            sse: Bytes::new(),
        }
    }
}

/// A server notice (`reset`, `dropped`, `closing`) as one Server-Sent Event.
pub fn sse_notice(kind: &str, json: &str) -> String {
    format!("event: {kind}\ndata: {json}\n\n")
}

#[cfg(test)]
mod tests {
    use crate::stream::filter::Filter;

    #[test]
    fn a_monitor_state_change_reaches_every_filter_as_its_own_type() {
        let payload = br#"{"monitor_id":"0192f0c1-7a3e-7000-8000-00000000d001","name":"api","state":"down","previous":"up","at":"2026-12-02T10:00:00Z","error_class":"timeout","error":"no whole answer within 500 ms"}"#;
        let items = crate::stream::relay::items_of(7, pulse_shared::stream::KIND_MONITOR, payload);
        assert_eq!(items.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&items[0].json).expect("json");
        assert_eq!(json["type"], "monitor");
        assert_eq!(json["data"]["state"], "down");
        assert_eq!(json["data"]["error_class"], "timeout");
        assert!(std::str::from_utf8(&items[0].sse)
            .expect("utf-8")
            .starts_with("event: monitor\n"));
        assert!(Filter::new(vec!["signup".into()], vec![]).matches(&items[0]));
        assert!(crate::stream::relay::items_of(8, pulse_shared::stream::KIND_MONITOR, b"not json").is_empty());
    }
}
