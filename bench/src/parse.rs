//! `pulse-bench parse`: the api's event parser against the alternative issue 9 asked to try, on
//! the benchmark's own events, in one process. Measures CPU time per event, single-threaded.
//!
//! - **visitor**: `pulse_api::ingest::validate::parse_event`, the hand-written serde visitor the
//!   api uses (one pass; a wrong type names its field; duplicates and unknown fields refused).
//! - **derive**: a `#[derive(Deserialize)]` struct with `deny_unknown_fields`, read through
//!   `serde_path_to_error` (so a type error still names its field), then the same rules from
//!   `pulse_shared::event`. Written here, not in the api: it is the candidate being measured.
//!
//! Rounds alternate the two so machine noise hits both alike; the median of the rounds counts.

use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use pulse_shared::event::{self, Event};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::payload::EventGen;

/// The wire event as a derived struct: every field optional so `null` means absent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default, deserialize_with = "rfc3339")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    duration_ms: Option<i64>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
}

fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<&str> = Option::deserialize(deserializer)?;
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| serde::de::Error::custom(format!("timestamp must be an RFC 3339 date-time ({error})")))
    })
    .transpose()
}

/// The derive candidate: `(field, message)` of the first problem, like the visitor's.
pub fn parse_derived(json: &[u8], received_at: DateTime<Utc>) -> Result<Event, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let wire: WireEvent = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| (error.path().to_string(), error.inner().to_string()))?;
    let event_type = match wire.event_type {
        None => return Err(("event_type".into(), "event_type is required".into())),
        Some(value) if value.trim().is_empty() => {
            return Err(("event_type".into(), "event_type must not be empty".into()))
        }
        Some(value) => value,
    };
    let texts = [
        ("event_type", Some(event_type.as_str()), event::MAX_EVENT_TYPE_CHARS),
        ("source", wire.source.as_deref(), event::MAX_NAME_CHARS),
        ("user_id", wire.user_id.as_deref(), event::MAX_NAME_CHARS),
        ("session_id", wire.session_id.as_deref(), event::MAX_NAME_CHARS),
        ("status", wire.status.as_deref(), event::MAX_LABEL_CHARS),
    ];
    for (name, value, max) in texts {
        if let Some(message) = value.and_then(|value| event::check_text(name, value, max)) {
            return Err((name.into(), message));
        }
    }
    if let Some(priority) = wire
        .priority
        .filter(|priority| !(0..=event::MAX_PRIORITY).contains(priority))
    {
        return Err((
            "priority".into(),
            format!("priority must be between 0 and {}, got {priority}", event::MAX_PRIORITY),
        ));
    }
    if let Some(ms) = wire.duration_ms.filter(|ms| *ms < 0) {
        return Err(("duration_ms".into(), format!("duration_ms must be 0 or more, got {ms}")));
    }
    let tags = wire.tags.unwrap_or_default();
    if let Some(message) = event::check_tags(&tags) {
        return Err(("tags".into(), message));
    }
    for (name, value) in [("data", &wire.data), ("metadata", &wire.metadata)] {
        if let Some(message) = value.as_ref().and_then(|value| event::check_object(name, value)) {
            return Err((name.into(), message));
        }
    }
    Ok(Event {
        id: wire.id.unwrap_or_else(Uuid::now_v7),
        timestamp: wire.timestamp.unwrap_or(received_at),
        event_type,
        source: wire.source,
        user_id: wire.user_id,
        session_id: wire.session_id,
        duration_ms: wire.duration_ms,
        priority: wire.priority,
        status: wire.status,
        tags,
        data: wire.data.unwrap_or_else(event::empty_object),
        metadata: wire.metadata.unwrap_or_else(event::empty_object),
    })
}

/// One comparison: ns per event of each parser (median of `rounds`), on `count` events.
#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    pub events: usize,
    pub rounds: usize,
    pub mean_event_bytes: usize,
    pub visitor_ns_per_event: f64,
    pub derive_ns_per_event: f64,
    pub visitor_ns_per_invalid: f64,
    pub derive_ns_per_invalid: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs both parsers over the same events, alternating, and checks they agree on every one.
pub fn compare(count: usize, rounds: usize) -> Result<Comparison> {
    let mut generator = EventGen::new(7);
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|_| serde_json::to_vec(&generator.event().to_json()))
        .collect::<Result<_, _>>()?;
    // A type error deep in the event: `duration_ms` as a string after every other field.
    let invalid: Vec<Vec<u8>> = bodies
        .iter()
        .map(|body| {
            let mut value: Value = serde_json::from_slice(body).expect("json");
            value["duration_ms"] = Value::String("slow".into());
            serde_json::to_vec(&value).expect("json")
        })
        .collect();
    let received_at = Utc::now();
    for body in &bodies {
        let visitor =
            pulse_api::ingest::validate::parse_event(body, received_at).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let derived = parse_derived(body, received_at).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        anyhow::ensure!(
            (visitor.event_type == derived.event_type && visitor.data == derived.data && visitor.tags == derived.tags),
            "the parsers disagree on {}",
            String::from_utf8_lossy(body)
        );
    }
    let time = |f: &dyn Fn(&[u8]) -> bool, inputs: &[Vec<u8>]| {
        let started = Instant::now();
        let mut kept = 0usize;
        for input in inputs {
            kept += usize::from(f(input));
        }
        std::hint::black_box(kept);
        started.elapsed().as_nanos() as f64 / inputs.len() as f64
    };
    let visitor = |json: &[u8]| pulse_api::ingest::validate::parse_event(json, received_at).is_ok();
    let derive = |json: &[u8]| parse_derived(json, received_at).is_ok();
    let (mut v, mut d, mut vi, mut di) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            v.push(time(&visitor, &bodies));
            d.push(time(&derive, &bodies));
            vi.push(time(&visitor, &invalid));
            di.push(time(&derive, &invalid));
        } else {
            d.push(time(&derive, &bodies));
            v.push(time(&visitor, &bodies));
            di.push(time(&derive, &invalid));
            vi.push(time(&visitor, &invalid));
        }
    }
    Ok(Comparison {
        events: count,
        rounds,
        mean_event_bytes: bodies.iter().map(Vec::len).sum::<usize>() / count.max(1),
        visitor_ns_per_event: median(v),
        derive_ns_per_event: median(d),
        visitor_ns_per_invalid: median(vi),
        derive_ns_per_invalid: median(di),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_names_fields_like_the_visitor() {
        let now = Utc::now();
        let (field, message) = parse_derived(br#"{"event_type": "x", "duration_ms": "slow"}"#, now).expect_err("type");
        assert_eq!(field, "duration_ms");
        assert!(message.contains("invalid type"), "{message}");
        let (field, _) = parse_derived(br#"{"event_type": "x", "nope": 1}"#, now).expect_err("unknown");
        assert!(field.is_empty() || field == "nope" || field == ".", "{field}");
        let event = parse_derived(br#"{"event_type": "x", "data": null}"#, now).expect("valid");
        assert_eq!(event.data, serde_json::json!({}));
    }
}
