//! Signed webhook endpoints of a project and their delivery log: the management side of issue
//! 12. The worker (`pulse-worker notify`, worker/src/notify/) expands the outbox into
//! deliveries and sends them; these routes manage endpoints, show what was sent, and put
//! deliveries back in line (retry, recover) or add one (test). The user guide is
//! docs/webhooks.md.
//!
//! Modules, one job each: [`endpoints`] (create, list, read, change, delete endpoints),
//! [`rules`] (the field checks, the SSRF check of `url` among them), [`views`] (an endpoint as
//! the routes show it, never its secret), [`secrets`] (reading and rotating the signing
//! secret), [`log`] (a delivery and its attempts as the routes show them), [`deliveries`] (the
//! delivery log), [`replay`] (retry one delivery, recover failed ones, send a test), [`page`]
//! (`limit`, `cursor`, `next_cursor`).
//!
//! Roles: members read endpoints and the delivery log; admins (and owners) change endpoints,
//! read and rotate secrets, retry, recover and test. An endpoint of a project the caller
//! cannot see is 404, like the project.

pub(crate) mod deliveries;
pub(crate) mod endpoints;
pub(crate) mod log;
pub(crate) mod page;
pub(crate) mod replay;
pub(crate) mod rules;
pub(crate) mod secrets;
pub(crate) mod views;

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::config::WebhookConfig;
use pulse_shared::schema::webhooks;
use pulse_shared::webhook::ssrf::Guard;
use uuid::Uuid;

use self::views::WebhookRow;
use crate::error::ApiError;

/// What the webhook routes take from `PULSE_WEBHOOK_*`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Checks `url` at creation and change (`PULSE_WEBHOOK_ALLOW_NETS`).
    pub guard: Guard,
    /// `max_attempts` when a creation names none: the retry schedule's length plus one.
    pub default_max_attempts: i32,
    /// Grace period of a rotation that names none (`PULSE_WEBHOOK_SECRET_GRACE_SECS`).
    pub secret_grace: Duration,
}

impl Settings {
    pub fn new(config: &WebhookConfig) -> Self {
        Self {
            guard: Guard::new(config.allow_nets.clone()),
            default_max_attempts: i32::try_from(config.default_max_attempts())
                .unwrap_or(rules::MAX_ATTEMPTS)
                .clamp(1, rules::MAX_ATTEMPTS),
            secret_grace: config.secret_grace,
        }
    }
}

/// The endpoint `webhook` of `project`, or 404.
pub async fn find(conn: &mut AsyncPgConnection, project: Uuid, webhook: Uuid) -> Result<WebhookRow, ApiError> {
    webhooks::table
        .filter(webhooks::id.eq(webhook))
        .filter(webhooks::project_id.eq(project))
        .select(WebhookRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("webhook"))
}

/// 409 unless the endpoint is enabled (retry, recover and test would only queue work that
/// the worker does not send).
pub fn require_enabled(row: &WebhookRow) -> Result<(), ApiError> {
    if row.enabled {
        Ok(())
    } else {
        Err(ApiError::WebhookDisabled)
    }
}
