//! Claiming due email: `FOR UPDATE SKIP LOCKED`, then a lease (the claim's token, with
//! `next_attempt_at` moved past the longest attempt), so any number of notify workers share
//! the outbox, each message is attempted by one at a time, and the holder of the current lease
//! alone records the attempt (`record.rs`).

use std::time::Duration;

use diesel::sql_types::{Float8, Int4, Int8, Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Parameters: how many, the lease token, the lease in seconds.
const CLAIM: &str = r#"
UPDATE email_messages m
SET lease = $2, next_attempt_at = now() + make_interval(secs => $3)
WHERE m.id IN (
    SELECT id FROM email_messages
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING m.id, m.kind, m.message_id, m.recipient, m.subject, m.text_body, m.html_body, m.attempts
"#;

/// A claimed message.
#[derive(QueryableByName, Debug, Clone)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Without angle brackets.
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Text)]
    pub subject: String,
    #[diesel(sql_type = Text)]
    pub text_body: String,
    #[diesel(sql_type = Text)]
    pub html_body: String,
    /// Attempts made before this one.
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
}

/// Claims up to `limit` due messages under `lease`.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Uuid,
    lease_for: Duration,
) -> diesel::QueryResult<Vec<Claimed>> {
    diesel::sql_query(CLAIM)
        .bind::<Int8, _>(limit)
        .bind::<SqlUuid, _>(lease)
        .bind::<Float8, _>(lease_for.as_secs_f64())
        .load(conn)
        .await
}
