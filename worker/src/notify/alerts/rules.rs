//! Claiming due rules: `FOR UPDATE SKIP LOCKED` on enabled rules whose `next_evaluation_at`
//! has come, moved one evaluation interval on in the same statement, so with any number of
//! notify workers each rule is evaluated by one of them per interval. Rules of deleted
//! projects are skipped (the purge removes them).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Float8, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Parameters: how many, the interval in seconds.
const CLAIM: &str = r#"
UPDATE alert_rules r
SET next_evaluation_at = now() + make_interval(secs => $2), last_evaluated_at = now()
WHERE r.id IN (
    SELECT a.id FROM alert_rules a
    WHERE a.enabled AND a.next_evaluation_at <= now()
      AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = a.project_id AND p.deleted_at IS NOT NULL)
    ORDER BY a.next_evaluation_at
    LIMIT $1
    FOR UPDATE OF a SKIP LOCKED
)
RETURNING r.id, r.project_id, r.name, r.kind, r.filter_event_type, r.filter_source, r.filter_status,
          r.window_s, r.op, r.threshold, r.min_events, r.cooldown_s, r.renotify_s, r.emails,
          r.webhook_ids, r.notify_owners, r.updated_at
"#;

/// A rule as evaluation needs it.
#[derive(QueryableByName, Debug, Clone)]
pub struct Rule {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub project_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// `count`, `error_ratio` or `absent`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub filter_event_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub filter_source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub filter_status: Option<String>,
    #[diesel(sql_type = Int4)]
    pub window_s: i32,
    /// `above` or `below`.
    #[diesel(sql_type = Text)]
    pub op: String,
    #[diesel(sql_type = Float8)]
    pub threshold: f64,
    #[diesel(sql_type = Int4)]
    pub min_events: i32,
    #[diesel(sql_type = Int4)]
    pub cooldown_s: i32,
    #[diesel(sql_type = Int4)]
    pub renotify_s: i32,
    #[diesel(sql_type = Array<Text>)]
    pub emails: Vec<String>,
    #[diesel(sql_type = Array<SqlUuid>)]
    pub webhook_ids: Vec<Uuid>,
    #[diesel(sql_type = Bool)]
    pub notify_owners: bool,
    /// When the rule last changed: a window that began before it does not count for `below`
    /// and `absent` (a rule created a second ago has not seen a quiet window yet).
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// Claims up to `limit` due rules and moves each `interval` on.
pub async fn claim(conn: &mut AsyncPgConnection, limit: i64, interval: Duration) -> diesel::QueryResult<Vec<Rule>> {
    diesel::sql_query(CLAIM)
        .bind::<Int8, _>(limit)
        .bind::<Float8, _>(interval.as_secs_f64())
        .load(conn)
        .await
}
