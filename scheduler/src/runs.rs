//! `job_runs`: the claim that makes a cron job run once per due time across replicas, and the
//! record of how each run went (read by `GET /jobs`).
//!
//! apalis's cron streams fire on every replica (apalis#281): each replica computes the same
//! ticks from the same expression. So before working, a replica inserts `(job, tick_at)` with
//! `ON CONFLICT DO NOTHING`; the primary key lets exactly one insert in, and the replicas whose
//! insert found the row count the tick as `skipped`. Why this rather than the alternatives:
//!
//! - apalis's PostgreSQL storage would need a producer enqueueing each tick once, which is the
//!   same problem again, plus its own schema and sqlx beside diesel;
//! - an advisory lock held during the run only keeps runs from overlapping: a replica whose
//!   clock is a little late takes the lock after the first finished and runs the tick again;
//! - `FOR UPDATE SKIP LOCKED` over rows of due runs needs those rows made ahead by someone.
//!
//! The claim is one short statement, keyed by the due time itself, survives restarts and
//! clock skew between replicas (smaller than the period), and leaves the history for free.
//! A replica that dies mid-run leaves its row `running`: that tick is not run again (at most
//! once), the next tick runs as usual.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::RunQueryDsl;
use pulse_shared::db::{self, DbPool};

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    job: String,
}

/// Claims `job`'s tick for `replica`; `false` if another run already claimed it.
pub async fn claim(pool: &DbPool, job: &str, tick_at: DateTime<Utc>, replica: &str) -> anyhow::Result<bool> {
    let mut conn = db::connection(pool).await?;
    let claimed: Option<Claimed> = diesel::sql_query(
        "INSERT INTO job_runs (job, tick_at, replica, started_at, outcome)
         VALUES ($1, $2, $3, now(), 'running')
         ON CONFLICT (job, tick_at) DO NOTHING
         RETURNING job",
    )
    .bind::<Text, _>(job)
    .bind::<Timestamptz, _>(tick_at)
    .bind::<Text, _>(replica)
    .get_result(&mut conn)
    .await
    .optional()?;
    Ok(claimed.is_some())
}

/// How a claimed run ended.
pub struct Finished<'a> {
    pub outcome: &'static str,
    pub error: Option<&'a str>,
    pub summary: Option<&'a str>,
    pub attempts: i32,
}

/// Records the end of a claimed run.
pub async fn finish(pool: &DbPool, job: &str, tick_at: DateTime<Utc>, finished: &Finished<'_>) -> anyhow::Result<()> {
    let mut conn = db::connection(pool).await?;
    diesel::sql_query(
        "UPDATE job_runs
         SET finished_at = now(), outcome = $3, error = $4, summary = $5, attempts = $6,
             duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
         WHERE job = $1 AND tick_at = $2",
    )
    .bind::<Text, _>(job)
    .bind::<Timestamptz, _>(tick_at)
    .bind::<Text, _>(finished.outcome)
    .bind::<Nullable<Text>, _>(finished.error)
    .bind::<Nullable<Text>, _>(finished.summary)
    .bind::<Integer, _>(finished.attempts)
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// A job's latest run, as `GET /jobs` shows it.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct Run {
    #[diesel(sql_type = Text)]
    pub job: String,
    #[diesel(sql_type = Timestamptz)]
    pub tick_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub replica: String,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub duration_ms: Option<i64>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub summary: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// The latest run (by tick) of each of `jobs`, one index probe each.
pub async fn latest(pool: &DbPool, jobs: &[&str]) -> anyhow::Result<Vec<Run>> {
    let mut conn = db::connection(pool).await?;
    let runs = diesel::sql_query(
        "SELECT r.job, r.tick_at, r.replica, r.started_at, r.finished_at, r.duration_ms,
                r.outcome, r.error, r.summary, r.attempts
         FROM unnest($1::text[]) AS j (job)
         CROSS JOIN LATERAL (
             SELECT * FROM job_runs WHERE job_runs.job = j.job ORDER BY tick_at DESC LIMIT 1) AS r",
    )
    .bind::<Array<Text>, _>(jobs)
    .load(&mut conn)
    .await?;
    Ok(runs)
}
