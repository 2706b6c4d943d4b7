//! The body of a delivery: `{"type", "timestamp", "data"}` (Standard Webhooks). The timestamp is
//! when the message was made and `data` is rebuilt the same at every attempt, so a retry sends
//! the same bytes under the same `webhook-id`.
//!
//! `event.created` carries `data.events`, each event as `GET /v1/events/{id}` shows it
//! ([`StoredEvent`]), read from `events` at each attempt in the delivery's order (deliveries
//! hold ids, not copies: ten endpoints do not store every event ten more times). An event
//! purged by retention before its delivery is left out; the delivery's `event_count` still
//! says how many it was made with.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{event_ids, events};
use pulse_shared::stored_event::StoredEvent;
use pulse_shared::webhook::EVENT_CREATED;
use serde::Serialize;
use uuid::Uuid;

use super::claim::Claimed;

#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    #[serde(rename = "type")]
    message_type: &'a str,
    timestamp: String,
    data: T,
}

#[derive(Serialize)]
struct Events {
    events: Vec<StoredEvent>,
}

/// The body's bytes.
pub async fn render(conn: &mut AsyncPgConnection, delivery: &Claimed) -> QueryResult<Vec<u8>> {
    if delivery.message_type == EVENT_CREATED {
        let ids = delivery.event_ids.as_deref().unwrap_or_default();
        let events = load_events(conn, delivery.project_id, ids).await?;
        Ok(encode(&delivery.message_type, delivery.created_at, Events { events }))
    } else {
        let data = delivery.payload.clone().unwrap_or(serde_json::Value::Null);
        Ok(encode(&delivery.message_type, delivery.created_at, data))
    }
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
