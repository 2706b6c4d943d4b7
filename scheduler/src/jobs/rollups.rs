//! Rollup compaction and the hourly cascade.
//!
//! The persist worker inserts one delta row per batch, minute and dimensions into
//! `event_rollups` (insert-only, so writers never wait for each other). A busy minute gathers
//! one row per batch: a day of 30 batches a second is millions of rows, too many to merge at
//! query time. This job folds them, in one transaction per round of at most
//! `PULSE_ROLLUP_COMPACT_BATCH` deltas (back to back while rounds come back full, otherwise every
//! `PULSE_ROLLUP_COMPACT_INTERVAL_SECS`):
//!
//! 1. delete that many deltas (`compacted = false`), returning them;
//! 2. delete the compacted rows of the same (minute, dimensions) groups and of the same
//!    (hour, dimensions) groups in `event_rollups_hourly`, returning them;
//! 3. insert, per group, one merged row at each level (sketches merge without loss), and the
//!    same for each (project, hour) in `event_rollups_hourly_totals` (all dimensions in one row,
//!    for queries that filter on none).
//!
//! A delta is thus either still a delta or folded into both tables, never both: queries over
//! whole hours read `event_rollups_hourly` plus the deltas not folded yet, and count each event
//! once (the transaction is atomic). Replicas take turns through a transaction-level advisory
//! lock, [`COMPACTION_LOCK`](pulse_shared::rollup::COMPACTION_LOCK) (a replica that finds it
//! taken skips the round; `pulse-api admin rebuild-rollups` holds it while it runs), so two
//! rounds never fold the same group at once. The job is durable: its state is the rows themselves.
//! Counted in `pulse_scheduler_job_runs_total{job="rollup_compaction"}` (`ok` per round that
//! folded something, `error` per failed round); its last round is shown in `GET /jobs`. It stays
//! an interval loop rather than a cron job (see [`super`]): it drains a queue back to back.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::db::{self, DbPool};
use pulse_shared::rollup::rows::{hour, hourly_totals, insert_at, Key, Level};
use pulse_shared::rollup::{StoredSummary, Summary, COMPACTION_LOCK as LOCK, SUMMARY_COLUMNS};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{record_loop, JOB_RUNS as RUNS};

/// Pause after a failed round.
const ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Folded this many deltas into this many minute and hour rows.
    Folded {
        deltas: usize,
        minute_rows: usize,
        hour_rows: usize,
    },
    /// No delta was left.
    Idle,
    /// Another replica holds the lock.
    Busy,
}

/// Runs rounds until `stop` is cancelled: back to back while rounds come back full (a
/// backlog), otherwise every `interval`. Under steady load a round every `interval` folds what
/// the workers wrote meanwhile; looping on every few new deltas would cost the database a round
/// of statements each time for almost nothing (measured: 0.3 cores under single-event load).
pub async fn run(pool: DbPool, interval: Duration, batch: i64, stop: CancellationToken) {
    loop {
        let started = chrono::Utc::now();
        let result = round(&pool, batch).await;
        record_loop(
            "rollup_compaction",
            started,
            result
                .as_ref()
                .map(|round| format!("{round:?}"))
                .map_err(ToString::to_string),
        );
        let wait = match result {
            Ok(Round::Folded {
                deltas,
                minute_rows,
                hour_rows,
            }) => {
                RUNS.with_label_values(&["rollup_compaction", "ok"]).inc();
                tracing::debug!(deltas, minute_rows, hour_rows, "Rollup deltas folded");
                if deltas as i64 >= batch {
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Ok(Round::Idle | Round::Busy) => interval,
            Err(error) => {
                RUNS.with_label_values(&["rollup_compaction", "error"]).inc();
                tracing::warn!(%error, "Rollup compaction failed; retrying");
                ERROR_BACKOFF
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round in its own transaction.
pub async fn round(pool: &DbPool, batch: i64) -> Result<Round, pulse_shared::Error> {
    let mut conn = db::connection(pool).await?;
    let round = conn
        .transaction::<_, diesel::result::Error, _>(|conn| async move { round_in(conn, batch).await }.scope_boxed())
        .await?;
    Ok(round)
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// A rollup row as deleted (`RETURNING`).
#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = SqlUuid)]
    project_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    bucket: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(embed)]
    summary: StoredSummary,
}

/// What a deletion returns, with `prefix` before each column (`r.` in a `USING` join).
fn returned(prefix: &str) -> String {
    format!(
        "{prefix}project_id, {prefix}bucket, {prefix}event_type, {prefix}source, {prefix}status, {}",
        summary_columns(prefix)
    )
}

/// [`SUMMARY_COLUMNS`] with `prefix` before each column.
fn summary_columns(prefix: &str) -> String {
    SUMMARY_COLUMNS
        .split(", ")
        .map(|column| format!("{prefix}{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl StoredRow {
    fn into_parts(self) -> Result<(Key<'static>, Summary), diesel::result::Error> {
        let summary = self
            .summary
            .decode()
            .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
        let key = (
            self.project_id,
            self.bucket,
            self.event_type.into(),
            self.source.map(Into::into),
            self.status.map(Into::into),
        );
        Ok((key, summary))
    }
}

type Rows = BTreeMap<Key<'static>, Summary>;

fn add(rows: &mut Rows, key: Key<'static>, summary: Summary) {
    match rows.get_mut(&key) {
        Some(row) => row.merge(summary),
        None => {
            rows.insert(key, summary);
        }
    }
}

async fn round_in(conn: &mut AsyncPgConnection, batch: i64) -> Result<Round, diesel::result::Error> {
    let Locked { locked } = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(LOCK)
        .get_result(conn)
        .await?;
    if !locked {
        return Ok(Round::Busy);
    }
    let deltas: Vec<StoredRow> = diesel::sql_query(format!(
        "DELETE FROM event_rollups WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM event_rollups WHERE NOT compacted LIMIT $1))
         RETURNING {}",
        returned("")
    ))
    .bind::<BigInt, _>(batch)
    .load(conn)
    .await?;
    if deltas.is_empty() {
        return Ok(Round::Idle);
    }
    let folded = deltas.len();
    let (mut minutes, mut hours) = (Rows::new(), Rows::new());
    for delta in deltas {
        let (key, summary) = delta.into_parts()?;
        let hour_key = (key.0, hour(key.1), key.2.clone(), key.3.clone(), key.4.clone());
        add(&mut hours, hour_key, summary.clone());
        add(&mut minutes, key, summary);
    }
    let mut totals = hourly_totals(&hours);
    for (key, summary) in fold_existing(conn, "event_rollups", "compacted AND ", &minutes).await? {
        add(&mut minutes, key, summary);
    }
    for (key, summary) in fold_existing(conn, "event_rollups_hourly", "", &hours).await? {
        add(&mut hours, key, summary);
    }
    for (key, summary) in fold_existing_totals(conn, &totals).await? {
        add(&mut totals, key, summary);
    }
    let (minute_rows, hour_rows) = (minutes.len(), hours.len());
    insert_at(conn, Level::MinuteCompacted, minutes).await?;
    insert_at(conn, Level::Hour, hours).await?;
    insert_at(conn, Level::HourTotal, totals).await?;
    Ok(Round::Folded {
        deltas: folded,
        minute_rows,
        hour_rows,
    })
}

/// Deletes and returns the rows of `table` (filtered by `condition`) that have the keys of
/// `groups` (NULL dimensions match NULL).
async fn fold_existing(
    conn: &mut AsyncPgConnection,
    table: &str,
    condition: &str,
    groups: &Rows,
) -> Result<Vec<(Key<'static>, Summary)>, diesel::result::Error> {
    let (mut projects, mut buckets, mut types, mut sources, mut statuses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (project, bucket, event_type, source, status) in groups.keys() {
        projects.push(*project);
        buckets.push(*bucket);
        types.push(event_type.as_ref());
        sources.push(source.as_deref());
        statuses.push(status.as_deref());
    }
    let rows: Vec<StoredRow> = diesel::sql_query(format!(
        "DELETE FROM {table} r
         USING unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
             AS g (project_id, bucket, event_type, source, status)
         WHERE {condition}r.project_id = g.project_id AND r.bucket = g.bucket
           AND r.event_type = g.event_type
           AND r.source IS NOT DISTINCT FROM g.source AND r.status IS NOT DISTINCT FROM g.status
         RETURNING {}",
        returned("r.")
    ))
    .bind::<Array<SqlUuid>, _>(&projects)
    .bind::<Array<Timestamptz>, _>(&buckets)
    .bind::<Array<Text>, _>(&types)
    .bind::<Array<Nullable<Text>>, _>(&sources)
    .bind::<Array<Nullable<Text>>, _>(&statuses)
    .load(conn)
    .await?;
    rows.into_iter().map(StoredRow::into_parts).collect()
}

/// Deletes and returns the hourly totals rows of the (project, hour) keys of `groups`.
async fn fold_existing_totals(
    conn: &mut AsyncPgConnection,
    groups: &Rows,
) -> Result<Vec<(Key<'static>, Summary)>, diesel::result::Error> {
    let (projects, buckets): (Vec<Uuid>, Vec<DateTime<Utc>>) = groups.keys().map(|key| (key.0, key.1)).unzip();
    let rows: Vec<StoredRow> = diesel::sql_query(format!(
        "DELETE FROM event_rollups_hourly_totals r
         USING unnest($1::uuid[], $2::timestamptz[]) AS g (project_id, bucket)
         WHERE r.project_id = g.project_id AND r.bucket = g.bucket
         RETURNING r.project_id, r.bucket, ''::text AS event_type, NULL::text AS source,
                   NULL::text AS status, {}",
        summary_columns("r.")
    ))
    .bind::<Array<SqlUuid>, _>(&projects)
    .bind::<Array<Timestamptz>, _>(&buckets)
    .load(conn)
    .await?;
    rows.into_iter().map(StoredRow::into_parts).collect()
}
