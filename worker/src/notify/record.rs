//! Recording an attempt: the attempt log row, the delivery's new state and the endpoint's
//! health, in one transaction, and only while the attempt's lease is still held (otherwise the
//! lease ran out and another worker owns the delivery now; nothing is written).
//!
//! - 2xx: `succeeded`; the endpoint's `failing_since` is cleared (one statement).
//! - 410 Gone: `failed`, and the endpoint is disabled.
//! - any other failure: `pending` again at the retry schedule's next time ([`retry::delay`]),
//!   or `failed` once `max_attempts` attempts were made; the endpoint's `failing_since` is set
//!   if unset, and an endpoint failing everything for `PULSE_WEBHOOK_DISABLE_AFTER_SECS` is
//!   disabled.
//!
//! Disabling an endpoint fails its pending deliveries that are not in flight (so `recover`
//! re-sends them once it is enabled again) and writes a `webhook.disabled` message to the
//! outbox for the project's other endpoints that take it, and an email to the owners of the
//! project's organization, in the same transaction (and a warning in the log).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{webhook_attempts, webhook_deliveries, webhooks};
use pulse_shared::webhook::{outbox, WEBHOOK_DISABLED};
use serde_json::json;
use uuid::Uuid;

use super::alerts::Mail;
use super::claim::Claimed;
use super::email::compose::{self, DisabledEndpoint};
use super::retry;
use super::send::Attempt;

/// What recording decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Succeeded,
    Retrying {
        at: DateTime<Utc>,
    },
    Failed,
    /// The lease ran out before the attempt ended: another worker has the delivery.
    LeaseLost,
}

/// The delivery policy recording applies.
#[derive(Debug, Clone)]
pub struct Policy {
    pub retry_schedule: Vec<Duration>,
    pub disable_after: Duration,
    /// For the notice to the owners when an endpoint is disabled.
    pub mail: Mail,
}

/// Records `attempt` of `delivery` made under `lease`; returns the delivery's new state and
/// whether the endpoint was disabled by it.
pub async fn record(
    conn: &mut AsyncPgConnection,
    delivery: &Claimed,
    lease: Uuid,
    attempt: &Attempt,
    policy: &Policy,
) -> QueryResult<(Recorded, bool)> {
    let attempts_made = delivery.attempts.saturating_add(1);
    let gone = attempt.response_status == Some(410);
    let now = Utc::now();
    let outcome = if attempt.succeeded() {
        Recorded::Succeeded
    } else if gone || attempts_made >= delivery.max_attempts {
        Recorded::Failed
    } else {
        let wait = retry::delay(
            &policy.retry_schedule,
            u32::try_from(attempts_made).unwrap_or(u32::MAX),
            attempt.retry_after,
        );
        Recorded::Retrying {
            at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
        }
    };
    if attempt.succeeded() {
        return record_success(conn, delivery, lease, attempt, attempts_made).await;
    }
    conn.transaction(|conn| {
        async move {
            let (status, next, completed) = match &outcome {
                Recorded::Succeeded => ("succeeded", None, Some(now)),
                Recorded::Retrying { at } => ("pending", Some(*at), None),
                _ => ("failed", None, Some(now)),
            };
            let updated = diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq(delivery.id))
                    .filter(webhook_deliveries::lease.eq(lease))
                    .filter(webhook_deliveries::status.eq("pending")),
            )
            .set((
                webhook_deliveries::status.eq(status),
                webhook_deliveries::attempts.eq(attempts_made),
                webhook_deliveries::next_attempt_at.eq(next),
                webhook_deliveries::lease.eq(None::<Uuid>),
                webhook_deliveries::last_attempt_at.eq(attempt.attempted_at),
                webhook_deliveries::last_response_status.eq(attempt.response_status.map(i32::from)),
                webhook_deliveries::last_error.eq(attempt.error_message.as_deref()),
                webhook_deliveries::completed_at.eq(completed),
            ))
            .execute(conn)
            .await?;
            if updated == 0 {
                return Ok((Recorded::LeaseLost, false));
            }
            diesel::insert_into(webhook_attempts::table)
                .values((
                    webhook_attempts::id.eq(Uuid::now_v7()),
                    webhook_attempts::delivery_id.eq(delivery.id),
                    webhook_attempts::webhook_id.eq(delivery.webhook_id),
                    webhook_attempts::attempt.eq(attempts_made),
                    webhook_attempts::attempted_at.eq(attempt.attempted_at),
                    webhook_attempts::duration_ms.eq(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX)),
                    webhook_attempts::response_status.eq(attempt.response_status.map(i32::from)),
                    webhook_attempts::error_class.eq(attempt.error_class.map(|class| class.as_str())),
                    webhook_attempts::error_message.eq(attempt.error_message.as_deref()),
                    webhook_attempts::response_body.eq(attempt.response_body.as_deref()),
                ))
                .execute(conn)
                .await?;
            let disabled = {
                // Written only when it starts failing: a dead endpoint's every failure does
                // not rewrite its row.
                diesel::update(
                    webhooks::table
                        .filter(webhooks::id.eq(delivery.webhook_id))
                        .filter(webhooks::failing_since.is_null()),
                )
                .set(webhooks::failing_since.eq(now))
                .execute(conn)
                .await?;
                let failing_since: Option<Option<DateTime<Utc>>> = webhooks::table
                    .find(delivery.webhook_id)
                    .select(webhooks::failing_since)
                    .first(conn)
                    .await
                    .optional()?;
                let failing_for = failing_since
                    .flatten()
                    .map(|since| (now - since).to_std().unwrap_or(Duration::ZERO))
                    .unwrap_or(Duration::ZERO);
                let reason = if gone {
                    Some("the receiver answered 410 Gone".to_owned())
                } else if failing_for >= policy.disable_after {
                    Some(format!(
                        "every attempt failed for {} s (PULSE_WEBHOOK_DISABLE_AFTER_SECS)",
                        failing_for.as_secs()
                    ))
                } else {
                    None
                };
                match reason {
                    Some(reason) => disable(conn, delivery.webhook_id, &reason, &policy.mail).await?,
                    None => false,
                }
            };
            Ok((outcome.clone(), disabled))
        }
        .scope_boxed()
    })
    .await
}

/// A success in one statement (the hot path: one round trip, no explicit transaction): the
/// delivery done, its attempt logged, the endpoint's `failing_since` cleared if set. Parameters:
/// delivery, lease, attempts made, attempted at, status, attempt id, duration, body.
const RECORD_SUCCESS: &str = r#"
WITH done AS (
    UPDATE webhook_deliveries
    SET status = 'succeeded', attempts = $3, next_attempt_at = NULL, lease = NULL,
        last_attempt_at = $4, last_response_status = $5, last_error = NULL, completed_at = now()
    WHERE id = $1 AND lease = $2 AND status = 'pending'
    RETURNING id, webhook_id
),
logged AS (
    INSERT INTO webhook_attempts (id, delivery_id, webhook_id, attempt, attempted_at, duration_ms,
                                  response_status, response_body)
    SELECT $6, id, webhook_id, $3, $4, $7, $5, $8 FROM done
),
healthy AS (
    UPDATE webhooks SET failing_since = NULL
    WHERE id = (SELECT webhook_id FROM done) AND failing_since IS NOT NULL
)
SELECT count(*) AS recorded FROM done
"#;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    recorded: i64,
}

async fn record_success(
    conn: &mut AsyncPgConnection,
    delivery: &Claimed,
    lease: Uuid,
    attempt: &Attempt,
    attempts_made: i32,
) -> QueryResult<(Recorded, bool)> {
    use diesel::sql_types::{Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    let count: Count = diesel::sql_query(RECORD_SUCCESS)
        .bind::<SqlUuid, _>(delivery.id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Int4, _>(attempts_made)
        .bind::<Timestamptz, _>(attempt.attempted_at)
        .bind::<Nullable<Int4>, _>(attempt.response_status.map(i32::from))
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<Int4, _>(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX))
        .bind::<Nullable<Text>, _>(attempt.response_body.as_deref())
        .get_result(conn)
        .await?;
    let outcome = if count.recorded == 0 {
        Recorded::LeaseLost
    } else {
        Recorded::Succeeded
    };
    Ok((outcome, false))
}

/// Disables an enabled endpoint; returns whether it was enabled.
async fn disable(conn: &mut AsyncPgConnection, webhook_id: Uuid, reason: &str, mail: &Mail) -> QueryResult<bool> {
    let now = Utc::now();
    let endpoint: Option<(Uuid, String, String)> = diesel::update(
        webhooks::table
            .filter(webhooks::id.eq(webhook_id))
            .filter(webhooks::enabled.eq(true)),
    )
    .set((
        webhooks::enabled.eq(false),
        webhooks::disabled_reason.eq(reason),
        webhooks::disabled_at.eq(now),
        webhooks::updated_at.eq(now),
    ))
    .returning((webhooks::project_id, webhooks::name, webhooks::url))
    .get_result(conn)
    .await
    .optional()?;
    let Some((project_id, name, url)) = endpoint else {
        return Ok(false);
    };
    // Pending and not in flight (an attempt in flight records its own outcome).
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::webhook_id.eq(webhook_id))
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(
                webhook_deliveries::lease
                    .is_null()
                    .or(webhook_deliveries::next_attempt_at.le(now)),
            ),
    )
    .set((
        webhook_deliveries::status.eq("failed"),
        webhook_deliveries::next_attempt_at.eq(None::<DateTime<Utc>>),
        webhook_deliveries::lease.eq(None::<Uuid>),
        webhook_deliveries::completed_at.eq(now),
        webhook_deliveries::last_error.eq(format!("not sent: the endpoint was disabled ({reason})")),
    ))
    .execute(conn)
    .await?;
    let payload = json!({
        "webhook_id": webhook_id,
        "name": name,
        "url": url,
        "reason": reason,
        "disabled_at": now,
    });
    outbox::enqueue(conn, project_id, WEBHOOK_DISABLED, &payload).await?;
    let notice = DisabledEndpoint {
        project_id,
        webhook_id,
        name: &name,
        url: &url,
        reason,
        disabled_at: now,
    };
    compose::webhook_disabled(conn, &notice, mail).await?;
    tracing::warn!(%webhook_id, %project_id, reason, "Webhook endpoint disabled");
    Ok(true)
}
