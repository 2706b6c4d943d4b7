//! An endpoint as the routes show it: [`WebhookView`], never the secret (only the creation
//! answer, [`CreatedWebhook`], and `GET …/secret` carry it), loaded as a [`WebhookRow`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use pulse_shared::schema::webhooks;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::rules::Filter;

/// An endpoint's stored columns, the secrets left out.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub filter_event_types: Option<Vec<String>>,
    pub filter_sources: Option<Vec<String>>,
    pub headers: serde_json::Value,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000e001",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "orders",
    "url": "https://hooks.example.com/pulse",
    "description": "New checkouts to the order service",
    "event_types": ["event.created"],
    "filter": {"event_types": ["checkout.completed"], "sources": null},
    "headers": {"X-Team": "orders"},
    "enabled": true,
    "disabled_reason": null,
    "disabled_at": null,
    "failing_since": null,
    "max_attempts": 9,
    "secret_rotation_ends_at": null,
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:00Z"
}))]
pub struct WebhookView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    pub description: String,
    /// What it receives.
    pub event_types: Vec<String>,
    /// For `event.created`: which events; `null`: all of them.
    pub filter: Option<Filter>,
    /// Extra request headers.
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// `false` when a user or the worker disabled it (410 Gone, or failing for
    /// `PULSE_WEBHOOK_DISABLE_AFTER_SECS`); nothing is sent to it then.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt failed; `null` after any success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Attempts of one delivery, the first included.
    pub max_attempts: i32,
    /// While a rotation's grace period runs: when the previous secret stops signing.
    pub secret_rotation_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookView {
    /// The view of `row` at `now` (which decides whether a rotation is still running).
    pub fn new(row: WebhookRow, now: DateTime<Utc>) -> Self {
        let filter = (row.filter_event_types.is_some() || row.filter_sources.is_some()).then_some(Filter {
            event_types: row.filter_event_types,
            sources: row.filter_sources,
        });
        Self {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            url: row.url,
            description: row.description,
            event_types: row.event_types,
            filter,
            headers: row.headers,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            disabled_at: row.disabled_at,
            failing_since: row.failing_since,
            max_attempts: row.max_attempts,
            secret_rotation_ends_at: row.previous_secret_expires_at.filter(|ends| *ends > now),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint just created, with its signing secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "id": "0192f0c1-7a3e-7000-8000-00000000e001",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "orders",
    "url": "https://hooks.example.com/pulse",
    "description": "",
    "event_types": ["event.created"],
    "filter": null,
    "headers": {},
    "enabled": true,
    "disabled_reason": null,
    "disabled_at": null,
    "failing_since": null,
    "max_attempts": 9,
    "secret_rotation_ends_at": null,
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:00Z"
}))]
pub struct CreatedWebhook {
    /// The signing secret; `GET …/webhooks/{webhook_id}/secret` shows it again (admins).
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

/// A page of endpoints, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub data: Vec<WebhookView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
