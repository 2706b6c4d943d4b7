//! The outbox every cause of a webhook message writes into, inside its own transaction:
//! [`enqueue`] for a message with a payload (alerts, monitors, `webhook.disabled`). The persist
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
    diesel::insert_into(webhook_messages::table)
        .values((
            webhook_messages::id.eq(Uuid::now_v7()),
            webhook_messages::project_id.eq(project_id),
            webhook_messages::message_type.eq(message_type),
            webhook_messages::payload.eq(payload),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}
