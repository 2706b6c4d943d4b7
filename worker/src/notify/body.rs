//! The body of a delivery: `{"type", "timestamp", "data"}` (Standard Webhooks). The timestamp is
//! when the message was made and `data` is rebuilt the same at every attempt, so a retry sends
//! the same bytes under the same `webhook-id`.
//!
//! `event.created` carries `data.events`, each event as `GET /v1/events/{id}` shows it
//! ([`StoredEvent`]), read from `events` at each attempt in the delivery's order (deliveries
//! hold ids, not copies: ten endpoints do not store every event ten more times). An event
//! purged by retention before its delivery is left out; the delivery's `event_count` still
//! says how many it was made with.
//!
//! Endpoints without filters get the same chunks of ids (fan-out cuts every endpoint's list
//! at the same places), so the rendered event list is kept for a minute in a cache keyed by
//! the project and the ids ([`Renderer`]): ten endpoints cost one read of the events, not ten.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{event_ids, events};
use pulse_shared::stored_event::StoredEvent;
use pulse_shared::webhook::EVENT_CREATED;
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::claim::Claimed;

#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    #[serde(rename = "type")]
    message_type: &'a str,
    timestamp: String,
    data: T,
}

/// The rendered `[event, …]` lists of recent deliveries, shared by the endpoints that get
/// the same chunk.
#[derive(Clone)]
pub struct Renderer {
    events: moka::future::Cache<(Uuid, Vec<Uuid>), Arc<RawValue>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new(64 * 1024 * 1024, Duration::from_secs(60))
    }
}

impl Renderer {
    /// At most `max_bytes` of rendered lists, each kept `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self {
            events: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &(Uuid, Vec<Uuid>), value: &Arc<RawValue>| {
                    u32::try_from(value.get().len() + key.1.len() * 16).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The body's bytes. Endpoints asking for the same list at once wait for one read.
    pub async fn render(&self, conn: &mut AsyncPgConnection, delivery: &Claimed) -> Result<Vec<u8>, String> {
        if delivery.message_type != EVENT_CREATED {
            let data = delivery.payload.clone().unwrap_or(serde_json::Value::Null);
            return Ok(encode(&delivery.message_type, delivery.created_at, data));
        }
        let ids = delivery.event_ids.clone().unwrap_or_default();
        let key = (delivery.project_id, ids);
        let project_id = delivery.project_id;
        let ids = key.1.clone();
        let list = self
            .events
            .try_get_with(key, async move {
                let events = load_events(conn, project_id, &ids).await?;
                // Serializing stored events cannot fail.
                let list: Arc<RawValue> = serde_json::value::to_raw_value(&events)
                    .unwrap_or_else(|_| empty_list())
                    .into();
                Ok::<_, diesel::result::Error>(list)
            })
            .await
            .map_err(|error| error.to_string())?;
        Ok(encode(&delivery.message_type, delivery.created_at, EventList(&list)))
    }
}

/// `{"events": [...]}` with the list already rendered.
struct EventList<'a>(&'a RawValue);

impl Serialize for EventList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("events", &self.0)?;
        map.end()
    }
}

fn empty_list() -> Box<RawValue> {
    RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| unreachable!("[] is JSON"))
}

fn encode<T: Serialize>(message_type: &str, created_at: DateTime<Utc>, data: T) -> Vec<u8> {
    let body = Body {
        message_type,
        timestamp: created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        data,
    };
    // Serializing plain structs and JSON values cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The stored events of `ids`, in that order. `event_ids` gives each one's timestamp, which
/// prunes `events` to its partition.
async fn load_events(conn: &mut AsyncPgConnection, project_id: Uuid, ids: &[Uuid]) -> QueryResult<Vec<StoredEvent>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: Vec<StoredEvent> = event_ids::table
        .inner_join(
            events::table.on(events::id
                .eq(event_ids::id)
                .and(events::project_id.eq(event_ids::project_id))
                .and(events::timestamp.eq(event_ids::timestamp))),
        )
        .filter(event_ids::id.eq_any(ids))
        .filter(event_ids::project_id.eq(project_id))
        .select(StoredEvent::as_select())
        .load(conn)
        .await?;
    let order: std::collections::HashMap<Uuid, usize> =
        ids.iter().enumerate().map(|(index, id)| (*id, index)).collect();
    found.sort_by_key(|event| order.get(&event.id).copied().unwrap_or(usize::MAX));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_type_timestamp_and_data_in_that_order() {
        let at: DateTime<Utc> = "2026-12-01T10:00:00.5Z".parse().expect("time");
        let body = encode("webhook.test", at, serde_json::json!({"a": 1}));
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"type":"webhook.test","timestamp":"2026-12-01T10:00:00.500000Z","data":{"a":1}}"#
        );
    }
}
