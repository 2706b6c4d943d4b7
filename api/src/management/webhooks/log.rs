//! A delivery and its attempts as the routes show them ([`DeliveryView`], [`DeliveryDetail`]),
//! and their loaders. A delivery is one message for one endpoint; its `message_id` is the
//! `webhook-id` header of every attempt and replay. The payload is not shown (for
//! `event.created` it is the events themselves, read at each attempt).

use chrono::{DateTime, Utc};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{webhook_attempts, webhook_deliveries};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// A 2xx answer.
    Succeeded,
    /// `max_attempts` attempts failed, or the endpoint answered 410 Gone.
    Failed,
}

impl DeliveryStatus {
    /// The stored form (`webhook_deliveries.status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// A delivery's stored columns, with the number of events it carries.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub message_id: String,
    pub message_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    #[diesel(select_expression = diesel::dsl::sql::<Nullable<Integer>>("cardinality(webhook_deliveries.event_ids)"))]
    #[diesel(select_expression_type = SqlLiteral<Nullable<Integer>>)]
    pub event_count: Option<i32>,
}

/// One delivery of a message to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000f001",
    "webhook_id": "0192f0c1-7a3e-7000-8000-00000000e001",
    "message_id": "msg_0192f0c17a3e7000800000000000f001",
    "type": "event.created",
    "status": "pending",
    "attempts": 2,
    "event_count": 37,
    "next_attempt_at": "2026-12-01T10:05:05Z",
    "created_at": "2026-12-01T10:00:00Z",
    "last_attempt_at": "2026-12-01T10:00:05Z",
    "last_response_status": 503,
    "last_error": "HTTP 503",
    "completed_at": null
}))]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `webhook-id` header, the same on every attempt and replay.
    pub message_id: String,
    /// `event.created`, `webhook.test`, …
    #[serde(rename = "type")]
    pub message_type: String,
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// Events the body carries (`event.created`); `null` for other types.
    pub event_count: Option<i32>,
    /// While pending: when the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the message was made (the body's `timestamp`).
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
    /// When it succeeded or failed for good.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        let pending = row.status == DeliveryStatus::Pending.as_str();
        Self {
            id: row.id,
            webhook_id: row.webhook_id,
            message_id: row.message_id,
            message_type: row.message_type,
            status: row.status,
            attempts: row.attempts,
            event_count: row.event_count,
            next_attempt_at: row.next_attempt_at.filter(|_| pending),
            created_at: row.created_at,
            last_attempt_at: row.last_attempt_at,
            last_response_status: row.last_response_status,
            last_error: row.last_error,
            completed_at: row.completed_at,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = webhook_attempts)]
#[schema(example = json!({
    "attempt": 1,
    "attempted_at": "2026-12-01T10:00:00Z",
    "duration_ms": 5002,
    "response_status": null,
    "error_class": "timeout",
    "error_message": "no answer within 15 s",
    "response_body": null
}))]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub response_status: Option<i32>,
    /// `timeout`, `connect`, `tls`, `dns`, `ssrf_refused` or `http_status`; `null` on success.
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    /// The response body, cut to 4 KB.
    pub response_body: Option<String>,
}

/// A delivery with every attempt, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The delivery `delivery` of endpoint `webhook`, or 404.
pub async fn load(conn: &mut AsyncPgConnection, webhook: Uuid, delivery: Uuid) -> Result<DeliveryRow, ApiError> {
    webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(delivery))
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .select(DeliveryRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("delivery"))
}

/// The attempts of a delivery, in order.
pub async fn attempts(conn: &mut AsyncPgConnection, delivery: Uuid) -> Result<Vec<AttemptView>, ApiError> {
    Ok(webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq(delivery))
        .order((webhook_attempts::attempted_at.asc(), webhook_attempts::attempt.asc()))
        .select(AttemptView::as_select())
        .load(conn)
        .await?)
}
