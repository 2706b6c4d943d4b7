//! The outbox every cause of a webhook message writes into, inside its own transaction:
//! [`enqueue`] for a message with a payload to every subscribed endpoint (monitors,
//! `webhook.disabled`), [`enqueue_to`] for one to named endpoints (an alert rule's channels). The persist
//! worker writes `event.created` messages with its batch (`worker/src/persist/outbox.rs`).
//! A notify worker expands each message into one delivery per subscribed endpoint.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::webhook_messages;

/// Writes a message of `message_type` with `payload` as its data for every endpoint of
/// `project_id` that subscribes to the type. Call it in the transaction of what caused it.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    message_type: &str,
    payload: &serde_json::Value,
) -> QueryResult<()> {
    insert(conn, project_id, message_type, payload, None).await
}

/// Writes a message for the endpoints `webhook_ids` of `project_id` (those still enabled when
/// it is expanded), whatever types they subscribe to: naming an endpoint is the subscription.
/// Nothing is written for an empty list.
pub async fn enqueue_to(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    message_type: &str,
    payload: &serde_json::Value,
    webhook_ids: &[Uuid],
) -> QueryResult<()> {
    if webhook_ids.is_empty() {
        return Ok(());
    }
    insert(conn, project_id, message_type, payload, Some(webhook_ids)).await
}

async fn insert(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    message_type: &str,
    payload: &serde_json::Value,
    webhook_ids: Option<&[Uuid]>,
) -> QueryResult<()> {
    diesel::insert_into(webhook_messages::table)
        .values((
            webhook_messages::id.eq(Uuid::now_v7()),
            webhook_messages::project_id.eq(project_id),
            webhook_messages::message_type.eq(message_type),
            webhook_messages::payload.eq(payload),
            webhook_messages::webhook_ids.eq(webhook_ids.map(<[Uuid]>::to_vec)),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}
