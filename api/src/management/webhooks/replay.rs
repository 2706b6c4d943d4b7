//! Putting deliveries back in line, and adding one (admins, on an enabled endpoint only; a
//! disabled one is 409 `WEBHOOK_DISABLED` until it is PATCHed with `enabled: true`):
//!
//! - `POST …/webhooks/{webhook_id}/deliveries/{delivery_id}/retry`: that delivery, due now;
//! - `POST …/webhooks/{webhook_id}/recover` `{"since": T}`: every failed delivery of the
//!   endpoint made at or after T (at most [`MAX_RECOVER_DAYS`] ago), due now;
//! - `POST …/webhooks/{webhook_id}/test`: a new `webhook.test` delivery, due now.
//!
//! A delivery put back keeps its id and `message_id`, so the receiver gets the same
//! `webhook-id` and can de-duplicate; the worker claims it like any due delivery. Nothing is
//! sent from here: the answer is 202, and the delivery log shows what happened.

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::webhook_deliveries;
use pulse_shared::webhook::{message_id, WEBHOOK_TEST};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::log::{self, DeliveryRow, DeliveryStatus, DeliveryView};
use super::{find, require_enabled};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::json::{self, Json};
use crate::management::ManagementState;

/// How far back `recover` reaches: a receiver down for longer needs a re-sync, not a replay
/// (and the events of older `event.created` deliveries may be gone with the project's
/// retention, 30 days by default). It also bounds the work one request can start.
pub const MAX_RECOVER_DAYS: i64 = 30;
/// Deliveries put back per statement of a recovery.
const RECOVER_BATCH: i64 = 1000;
/// The `message` of a test delivery's default payload.
pub const TEST_MESSAGE: &str = "This is a test message from Pulse.";

/// `POST …/recover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-12-01T00:00:00Z"}))]
pub struct Recover {
    /// RFC 3339; not in the future, at most 30 days ago.
    pub since: DateTime<Utc>,
}

/// The answer of `POST …/recover`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"recovered": 12}))]
pub struct Recovered {
    /// Failed deliveries now pending again.
    pub recovered: u64,
}

/// `POST …/test` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payload": {"message": "hello from the runbook"}}))]
pub struct TestMessage {
    /// A JSON object merged over the default data
    /// `{"webhook_id": …, "message": "This is a test message from Pulse."}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

/// Loads the endpoint for an admin and insists that it is enabled.
async fn enabled_endpoint(
    conn: &mut AsyncPgConnection,
    caller: AuthUser,
    project_id: Uuid,
    webhook_id: Uuid,
) -> Result<(Uuid, Uuid), ApiError> {
    let (project, _) = require_project(conn, caller.user_id, project_id, Role::Admin).await?;
    let webhook = find(conn, project.id, webhook_id).await?;
    require_enabled(&webhook)?;
    Ok((project.id, webhook.id))
}

/// Sends one delivery again now, with the same `message_id` (admin).
///
/// The delivery becomes pending and due now, and loses its lease. Its `attempts` count is
/// kept: the worker marks a delivery failed once `attempts >= max_attempts` after a failed
/// attempt, so retrying a failed delivery buys exactly one more attempt (a succeeded one is
/// simply sent again). A delivery a worker is attempting right now (pending, leased, and
/// `next_attempt_at`, the end of the lease, still ahead) is 409 `DELIVERY_IN_FLIGHT`: its
/// outcome is not known yet, and resetting it would let a second worker send it meanwhile.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    operation_id = "webhooks_retry_delivery",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Due now; the delivery log shows the attempt", body = DeliveryView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project, endpoint or delivery"),
        (status = 409, description = "WEBHOOK_DISABLED (PATCH enabled: true first) or DELIVERY_IN_FLIGHT (being attempted; details.next_attempt_at)"),
    )
)]
pub async fn retry(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, webhook_id, delivery_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, webhook) = enabled_endpoint(&mut conn, caller, project_id, webhook_id).await?;
    let pending = DeliveryStatus::Pending.as_str();
    // One statement decides, with the database's clock the worker's leases use.
    let not_in_flight = webhook_deliveries::status
        .ne(pending)
        .or(webhook_deliveries::lease.is_null())
        .or(webhook_deliveries::next_attempt_at.is_null())
        .or(webhook_deliveries::next_attempt_at.le(now));
    let retried: Option<DeliveryRow> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(delivery_id))
            .filter(webhook_deliveries::webhook_id.eq(webhook))
            .filter(not_in_flight),
    )
    .set((
        webhook_deliveries::status.eq(pending),
        webhook_deliveries::next_attempt_at.eq(now),
        webhook_deliveries::completed_at.eq(None::<DateTime<Utc>>),
        webhook_deliveries::lease.eq(None::<Uuid>),
    ))
    .returning(DeliveryRow::as_returning())
    .get_result(&mut conn)
    .await
    .optional()?;
    let Some(row) = retried else {
        let row = log::load(&mut conn, webhook, delivery_id).await?;
        return Err(ApiError::DeliveryInFlight {
            until: row.next_attempt_at.unwrap_or_else(Utc::now),
        });
    };
    tracing::info!(project_id = %project, webhook_id = %webhook, delivery_id = %row.id, attempts = row.attempts, "Webhook delivery retried");
    Ok(HttpResponse::Accepted().json(DeliveryView::from(row)))
}

#[derive(QueryableByName)]
struct PutBack {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Re-sends every failed delivery of the endpoint made since `since` (admin), each with its
/// original `message_id`; `attempts` are kept, as for a retry, so each gets one more attempt.
/// Deliveries are put back in batches, one statement each, so a long outage's backlog never
/// holds one long transaction; the count is of the deliveries this request put back.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/recover",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    request_body = Recover,
    responses(
        (status = 202, description = "That many failed deliveries are due now", body = Recovered),
        (status = 400, description = "INVALID_FIELD (since in the future or more than 30 days ago), invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
        (status = 409, description = "WEBHOOK_DISABLED: PATCH enabled: true first"),
    )
)]
pub async fn recover(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<Recover>,
) -> Result<HttpResponse, ApiError> {
    let since = body.since;
    let current = Utc::now();
    if since > current || since < current - ChronoDuration::days(MAX_RECOVER_DAYS) {
        return Err(ApiError::InvalidField {
            field: "since",
            message: format!("since must be in the past, at most {MAX_RECOVER_DAYS} days ago"),
        });
    }
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, webhook) = enabled_endpoint(&mut conn, caller, project_id, webhook_id).await?;
    let mut recovered: u64 = 0;
    let mut after = Uuid::nil();
    loop {
        // In id order from where the last batch ended, so a delivery that fails again while
        // this runs is not put back twice.
        let batch: Vec<PutBack> = diesel::sql_query(
            "UPDATE webhook_deliveries \
             SET status = 'pending', next_attempt_at = now(), completed_at = NULL, lease = NULL \
             WHERE status = 'failed' AND id IN ( \
                 SELECT id FROM webhook_deliveries \
                 WHERE webhook_id = $1 AND status = 'failed' AND created_at >= $2 AND id > $3 \
                 ORDER BY id LIMIT $4) \
             RETURNING id",
        )
        .bind::<SqlUuid, _>(webhook)
        .bind::<Timestamptz, _>(since)
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(RECOVER_BATCH)
        .load(&mut conn)
        .await?;
        recovered += batch.len() as u64;
        match batch.iter().map(|row| row.id).max() {
            Some(last) if batch.len() as i64 == RECOVER_BATCH => after = last,
            _ => break,
        }
    }
    tracing::info!(project_id = %project, webhook_id = %webhook, since = %since, recovered, "Webhook deliveries recovered");
    Ok(HttpResponse::Accepted().json(Recovered { recovered }))
}

/// The data of a test message: the default, with the caller's object merged over it.
fn test_payload(webhook: Uuid, custom: Option<Value>) -> Result<Value, ApiError> {
    let mut payload = json!({"webhook_id": webhook, "message": TEST_MESSAGE});
    let Some(custom) = custom.filter(|custom| !custom.is_null()) else {
        return Ok(payload);
    };
    if let Some(problem) = pulse_shared::event::check_object("payload", &custom) {
        return Err(ApiError::InvalidField {
            field: "payload",
            message: problem,
        });
    }
    if let (Some(target), Value::Object(custom)) = (payload.as_object_mut(), custom) {
        target.extend(custom);
    }
    Ok(payload)
}

/// Sends a `webhook.test` message to this endpoint only (admin): a new delivery, due now.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/test",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    request_body(content = Option<TestMessage>, description = "Optional"),
    responses(
        (status = 202, description = "The test delivery, due now", body = DeliveryView),
        (status = 400, description = "INVALID_FIELD (payload is not an object), invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
        (status = 409, description = "WEBHOOK_DISABLED: PATCH enabled: true first"),
    )
)]
pub async fn test(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: TestMessage = json::optional_object(&body)?.unwrap_or_default();
    let (project_id, webhook_id) = path.into_inner();
    let payload = test_payload(webhook_id, request.payload)?;
    let mut conn = state.conn().await?;
    let (project, webhook) = enabled_endpoint(&mut conn, caller, project_id, webhook_id).await?;
    let id = Uuid::now_v7();
    let row: DeliveryRow = diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(id),
            webhook_deliveries::webhook_id.eq(webhook),
            webhook_deliveries::project_id.eq(project),
            webhook_deliveries::message_id.eq(message_id(id)),
            webhook_deliveries::message_type.eq(WEBHOOK_TEST),
            webhook_deliveries::payload.eq(Some(&payload)),
            webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::created_at.eq(now),
        ))
        .returning(DeliveryRow::as_returning())
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project, webhook_id = %webhook, delivery_id = %id, "Webhook test message queued");
    Ok(HttpResponse::Accepted().json(DeliveryView::from(row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_payloads_merge_over_the_default() {
        let id = Uuid::now_v7();
        let default = test_payload(id, None).expect("default");
        assert_eq!(default, json!({"webhook_id": id, "message": TEST_MESSAGE}));
        let merged = test_payload(id, Some(json!({"message": "hi", "n": 1}))).expect("merged");
        assert_eq!(merged, json!({"webhook_id": id, "message": "hi", "n": 1}));
        assert!(test_payload(id, Some(json!([1]))).is_err());
        assert!(test_payload(id, Some(json!({"k": "a\u{0}b"}))).is_err());
    }
}
