//! A stored event as every read route shows it (`GET /v1/events/{id}`, pages, exports) and as
//! webhooks carry it (`event.created`'s `data.events`): one definition, so a receiver and a
//! reader see the same JSON.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::events;

/// A stored event, as every read route shows it.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = events)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-0000000e0001",
    "timestamp": "2026-12-01T10:00:00Z",
    "received_at": "2026-12-01T10:00:00.120Z",
    "event_type": "purchase",
    "source": "checkout",
    "user_id": "u_42",
    "session_id": "s_9",
    "duration_ms": 350,
    "priority": 5,
    "status": "ok",
    "tags": ["eu"],
    "data": {"amount_cents": 4200},
    "metadata": {}
}))]
pub struct StoredEvent {
    pub id: Uuid,
    pub timestamp: DateTime<Utc>,
    /// When the api received it.
    pub received_at: DateTime<Utc>,
    pub event_type: String,
    pub source: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub duration_ms: Option<i64>,
    pub priority: Option<i32>,
    pub status: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}
