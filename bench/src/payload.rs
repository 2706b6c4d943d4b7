//! Realistic synthetic events and the request bodies built from them before a run starts.
//!
//! One generator ([`EventGen`]) feeds both the load generator (as JSON request bodies) and the
//! COPY baseline (as rows), so the two store the same kind of rows: an `event_type` from a small
//! set, `user_id`, `session_id`, a few tags and a `data` object whose keys depend on the type,
//! 200–400 bytes of JSON per event.
//!
//! Bodies carry no event id: the api assigns a UUIDv7, so one pre-built body can be sent many
//! times without the exactly-once rule folding repeats together. A *marker* request (see
//! `persisted.rs`) gets an id spliced into its first event, so the tool can find that one event
//! in PostgreSQL later.

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const EVENT_TYPES: [&str; 8] = [
    "page_view",
    "click",
    "session_start",
    "search",
    "add_to_cart",
    "purchase",
    "api_call",
    "error",
];
const SOURCES: [&str; 4] = ["web", "ios", "android", "backend"];
const TAGS: [&str; 10] = [
    "beta", "eu", "us", "mobile", "desktop", "paid", "trial", "internal", "ab-a", "ab-b",
];
const PATHS: [&str; 8] = [
    "/",
    "/pricing",
    "/docs/getting-started",
    "/blog/launch",
    "/signup",
    "/settings/billing",
    "/search",
    "/cart",
];
const BROWSERS: [&str; 4] = ["firefox", "chrome", "safari", "edge"];
const PRIORITIES: [i32; 3] = [1, 5, 10];
const STATUSES: [&str; 3] = ["ok", "ok", "failed"];

/// One synthetic event, before it becomes JSON (load) or a row (baseline).
#[derive(Debug, Clone)]
pub struct SampleEvent {
    pub timestamp: DateTime<Utc>,
    pub event_type: &'static str,
    pub source: &'static str,
    pub user_id: String,
    pub session_id: String,
    pub duration_ms: Option<i64>,
    pub priority: Option<i32>,
    pub status: Option<&'static str>,
    pub tags: Vec<String>,
    pub data: Value,
}

impl SampleEvent {
    /// The event as the ingest api takes it (no id: the api assigns one).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("event_type".into(), self.event_type.into());
        object.insert(
            "timestamp".into(),
            self.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        object.insert("source".into(), self.source.into());
        object.insert("user_id".into(), self.user_id.clone().into());
        object.insert("session_id".into(), self.session_id.clone().into());
        if let Some(duration) = self.duration_ms {
            object.insert("duration_ms".into(), duration.into());
        }
        if let Some(priority) = self.priority {
            object.insert("priority".into(), priority.into());
        }
        if let Some(status) = self.status {
            object.insert("status".into(), status.into());
        }
        object.insert("tags".into(), self.tags.clone().into());
        object.insert("data".into(), self.data.clone());
        Value::Object(object)
    }
}

/// Deterministic (seeded) source of realistic events.
pub struct EventGen {
    rng: StdRng,
    now: DateTime<Utc>,
}

impl EventGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            now: Utc::now(),
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    pub fn event(&mut self) -> SampleEvent {
        let event_type = self.pick(&EVENT_TYPES);
        let user = self.rng.random_range(0..50_000u32);
        let session = self.rng.random::<u64>();
        // Within the last minute: today's partition, except in the first minute after midnight
        // UTC, when the row lands in yesterday's or the default partition (both indexed alike).
        let timestamp = self.now - ChronoDuration::milliseconds(self.rng.random_range(0..60_000));
        let tag_count = self.rng.random_range(0..=3);
        let tags = (0..tag_count).map(|_| self.pick(&TAGS).to_owned()).collect();
        let data = self.data(event_type);
        let duration_ms =
            matches!(event_type, "page_view" | "api_call" | "search").then(|| self.rng.random_range(1..5_000i64));
        let priority = (event_type == "error").then(|| self.pick(&PRIORITIES));
        let status = matches!(event_type, "api_call" | "purchase").then(|| self.pick(&STATUSES));
        SampleEvent {
            timestamp,
            event_type,
            source: self.pick(&SOURCES),
            user_id: format!("user_{user:06}"),
            session_id: format!("sess_{session:016x}"),
            duration_ms,
            priority,
            status,
            tags,
            data,
        }
    }

    fn data(&mut self, event_type: &str) -> Value {
        let path = self.pick(&PATHS);
        let browser = self.pick(&BROWSERS);
        match event_type {
            "page_view" | "session_start" => json!({
                "path": path,
                "referrer": "https://www.example.com/landing?utm_source=newsletter",
                "browser": browser,
                "screen": {"w": 1920, "h": 1080},
                "locale": "en-GB",
            }),
            "click" => json!({
                "path": path,
                "element": format!("button#cta-{}", self.rng.random_range(0..20u32)),
                "x": self.rng.random_range(0..1920u32),
                "y": self.rng.random_range(0..1080u32),
            }),
            "search" => json!({
                "query": format!("wireless headphones {}", self.rng.random_range(0..500u32)),
                "results": self.rng.random_range(0..200u32),
                "page": self.rng.random_range(1..5u32),
            }),
            "add_to_cart" | "purchase" => json!({
                "sku": format!("SKU-{:05}", self.rng.random_range(0..20_000u32)),
                "quantity": self.rng.random_range(1..4u32),
                "price_cents": self.rng.random_range(199..49_999u32),
                "currency": "EUR",
                "cart_id": format!("cart_{:08x}", self.rng.random::<u32>()),
            }),
            "api_call" => json!({
                "method": "POST",
                "route": "/v2/orders/{id}/items",
                "status_code": self.pick(&[200u16, 201, 400, 404, 500]),
                "bytes": self.rng.random_range(100..100_000u32),
            }),
            _ => json!({
                "message": "TypeError: cannot read properties of undefined (reading 'id')",
                "file": "app.js",
                "line": self.rng.random_range(1..4_000u32),
                "browser": browser,
            }),
        }
    }
}

/// A pre-built request body and where its first event object starts.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    /// Byte offset just after the `{` that opens the first event: where a marker id goes.
    first_event_field: usize,
    pub events: u64,
}

impl Body {
    /// This body with `"id":"<id>",` spliced into its first event.
    pub fn with_marker(&self, id: Uuid) -> Bytes {
        let at = self.first_event_field;
        let mut out = Vec::with_capacity(self.bytes.len() + 48);
        out.extend_from_slice(&self.bytes[..at]);
        out.extend_from_slice(b"\"id\":\"");
        out.extend_from_slice(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).as_bytes());
        out.extend_from_slice(b"\",");
        out.extend_from_slice(&self.bytes[at..]);
        Bytes::from(out)
    }
}

/// Builds `count` distinct bodies of `batch_size` events: a bare event object for a batch size
/// of 1 (`POST /v1/events`), `{"events": [...]}` otherwise (`POST /v1/events/batch`).
pub fn bodies(seed: u64, count: usize, batch_size: usize) -> Vec<Body> {
    let mut generator = EventGen::new(seed);
    (0..count)
        .map(|_| {
            if batch_size == 1 {
                let text = generator.event().to_json().to_string();
                Body {
                    bytes: Bytes::from(text),
                    first_event_field: 1,
                    events: 1,
                }
            } else {
                let events: Vec<Value> = (0..batch_size).map(|_| generator.event().to_json()).collect();
                let text = json!({ "events": events }).to_string();
                // serde_json writes `{"events":[{` with no whitespace.
                let first_event_field = text.find("[{").map_or(0, |at| at + 2);
                Body {
                    bytes: Bytes::from(text),
                    first_event_field,
                    events: batch_size as u64,
                }
            }
        })
        .collect()
}

/// How many distinct bodies to pre-build: enough variety, at most ~64 MB of bodies.
pub fn body_pool_size(batch_size: usize) -> usize {
    (200_000 / batch_size.max(1)).clamp(16, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_realistically_sized() {
        let mut generator = EventGen::new(7);
        let sizes: Vec<usize> = (0..1000)
            .map(|_| generator.event().to_json().to_string().len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((200..=400).contains(&mean), "mean event size {mean}");
    }

    #[test]
    fn marker_id_lands_in_the_first_event_and_stays_valid_json() {
        let id = Uuid::now_v7();
        for batch in [1, 3] {
            let body = &bodies(1, 1, batch)[0];
            let marked: Value = serde_json::from_slice(&body.with_marker(id)).expect("valid json");
            let first = if batch == 1 { &marked } else { &marked["events"][0] };
            assert_eq!(first["id"], id.to_string());
            if batch > 1 {
                assert!(marked["events"][1].get("id").is_none());
                assert_eq!(marked["events"].as_array().map(Vec::len), Some(batch));
            }
        }
    }
}
