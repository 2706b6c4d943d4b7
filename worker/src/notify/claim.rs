//! Claiming due deliveries: `FOR UPDATE SKIP LOCKED`, then a lease, so any number of notify
//! workers share the deliveries and each is attempted by one at a time.
//!
//! A claim looks endpoint by endpoint (`LATERAL`, on the `(webhook_id, next_attempt_at)` index
//! of pending rows) and takes from each at most what its per-process concurrency limit leaves,
//! so however large a dead endpoint's backlog, a live endpoint's due deliveries are in the same
//! claim. The lease is the claim's token with `next_attempt_at` moved past the longest attempt:
//! the claimer records the attempt only while it still holds the lease (`record.rs`), and if it
//! dies the delivery is due again when the lease runs out (sent again with the same
//! `webhook-id`, which receivers de-duplicate on).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Float8, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Parameters: endpoints with attempts in flight here and how many, the per-endpoint limit,
/// how many to claim in all, the lease token, the lease in seconds.
const CLAIM: &str = r#"
WITH in_flight AS (
    SELECT * FROM unnest($1::uuid[], $2::int8[]) AS f (webhook_id, n)
),
picked AS (
    SELECT due.id
    FROM webhooks w
    LEFT JOIN in_flight f ON f.webhook_id = w.id
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at
        FROM webhook_deliveries d
        WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT greatest($3 - coalesce(f.n, 0), 0)
    ) due
    WHERE w.enabled
      AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = w.project_id AND p.deleted_at IS NOT NULL)
    ORDER BY due.next_attempt_at
    LIMIT $4
),
locked AS (
    SELECT d.id
    FROM webhook_deliveries d
    WHERE d.id IN (SELECT id FROM picked) AND d.status = 'pending' AND d.next_attempt_at <= now()
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET lease = $5, next_attempt_at = now() + make_interval(secs => $6)
FROM locked, webhooks w
WHERE d.id = locked.id AND w.id = d.webhook_id
RETURNING d.id, d.webhook_id, d.project_id, d.message_id, d.type AS message_type, d.event_ids,
          d.payload, d.attempts, d.created_at,
          w.url, w.headers, w.secret, w.previous_secret, w.previous_secret_expires_at,
          w.max_attempts
"#;

/// A claimed delivery with what sending it needs of its endpoint.
#[derive(QueryableByName, Debug, Clone)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub project_id: Uuid,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Text)]
    pub message_type: String,
    #[diesel(sql_type = Nullable<Array<SqlUuid>>)]
    pub event_ids: Option<Vec<Uuid>>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub payload: Option<serde_json::Value>,
    /// Attempts made before this one.
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Jsonb)]
    pub headers: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Int4)]
    pub max_attempts: i32,
}

/// Claims up to `limit` due deliveries under `lease`, at most `per_endpoint` minus what is in
/// flight (`in_flight`: endpoint and count) from each endpoint.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    in_flight: &[(Uuid, i64)],
    per_endpoint: i64,
    limit: i64,
    lease: Uuid,
    lease_for: Duration,
) -> diesel::QueryResult<Vec<Claimed>> {
    let (endpoints, counts): (Vec<Uuid>, Vec<i64>) = in_flight.iter().copied().unzip();
    diesel::sql_query(CLAIM)
        .bind::<Array<SqlUuid>, _>(&endpoints)
        .bind::<Array<Int8>, _>(&counts)
        .bind::<Int8, _>(per_endpoint)
        .bind::<Int8, _>(limit)
        .bind::<SqlUuid, _>(lease)
        .bind::<Float8, _>(lease_for.as_secs_f64())
        .load(conn)
        .await
}
