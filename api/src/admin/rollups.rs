//! `pulse-api admin rebuild-rollups --project ID --from T --to T`: recomputes a project's
//! rollups from its raw events over a range (after a bug fix, or a restore of `events`).
//!
//! The range is widened to whole hours (the coarsest rollup rows are hourly). In one REPEATABLE
//! READ transaction it deletes the range's rows of `event_rollups`, `event_rollups_hourly` and
//! `event_rollups_hourly_totals` and writes them anew, compacted (one row per minute or hour and dimensions), from the events
//! of the same snapshot, read 10,000 at a time in (timestamp, id) order; rows are written as
//! their minute or hour completes, so memory stays bounded however long the range. The persist
//! worker keeps running meanwhile: a batch it commits after the snapshot is neither counted
//! here nor deleted (its delta rows are inserts this transaction does not see), so nothing
//! counts twice. The scheduler's compaction waits while a rebuild runs (both take the
//! compaction lock, [`COMPACTION_LOCK`]), so neither changes rows under the other. Run twice,
//! it writes the same rows: idempotent.

use std::borrow::Cow;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::RunQueryDsl;
use pulse_shared::config::DatabaseConfig;
use pulse_shared::db;
use pulse_shared::rollup::rows::{hour, insert_at, Level, RollupEvent};
use pulse_shared::rollup::{RollupRows, COMPACTION_LOCK};
use pulse_shared::schema::events;
use serde::Serialize;
use uuid::Uuid;

/// Events read per round trip.
const PAGE: i64 = 10_000;

/// What `rebuild-rollups` prints.
#[derive(Debug, Serialize)]
pub struct Rebuilt {
    pub project_id: Uuid,
    /// The range rebuilt, widened to whole hours.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub events: u64,
    pub rows_deleted: usize,
    pub rows_written: usize,
}

type EventRow = (
    DateTime<Utc>,
    Uuid,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// Rebuilds the project's rollups over `[from, to)`. The database must be migrated.
pub async fn rebuild_rollups(
    config: &DatabaseConfig,
    project: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Rebuilt> {
    anyhow::ensure!(from < to, "--from must be before --to");
    let from = hour(from);
    let to = if hour(to) == to {
        to
    } else {
        hour(to) + TimeDelta::hours(1)
    };
    let pool = db::build_pool(config, "pulse-api-admin")?;
    let mut conn = db::connection(&pool).await?;
    // A session lock, taken before the transaction's snapshot: a compaction round that was
    // running has committed by then.
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(COMPACTION_LOCK)
        .execute(&mut conn)
        .await
        .context("taking the compaction lock")?;
    let rebuilt = conn
        .build_transaction()
        .repeatable_read()
        .run::<_, diesel::result::Error, _>(|conn| {
            async move {
                let mut deleted = 0;
                for table in ["event_rollups", "event_rollups_hourly", "event_rollups_hourly_totals"] {
                    deleted += diesel::sql_query(format!(
                        "DELETE FROM {table} WHERE project_id = $1 AND bucket >= $2 AND bucket < $3"
                    ))
                    .bind::<SqlUuid, _>(project)
                    .bind::<Timestamptz, _>(from)
                    .bind::<Timestamptz, _>(to)
                    .execute(conn)
                    .await?;
                }
                let mut rows = RollupRows::default();
                let mut counted = 0u64;
                let mut written = 0;
                let mut after: Option<(DateTime<Utc>, Uuid)> = None;
                loop {
                    let mut query = events::table
                        .filter(events::project_id.eq(project))
                        .filter(events::timestamp.ge(from))
                        .filter(events::timestamp.lt(to))
                        .order((events::timestamp.asc(), events::id.asc()))
                        .limit(PAGE)
                        .select((
                            events::timestamp,
                            events::id,
                            events::event_type,
                            events::source,
                            events::status,
                            events::duration_ms,
                            events::user_id,
                            events::session_id,
                        ))
                        .into_boxed();
                    if let Some((timestamp, id)) = after {
                        // `>=` first: it bounds the index scan (the OR alone does not), so a
                        // page starts at the last event instead of the range's start.
                        query = query.filter(events::timestamp.ge(timestamp)).filter(
                            events::timestamp
                                .gt(timestamp)
                                .or(events::timestamp.eq(timestamp).and(events::id.gt(id))),
                        );
                    }
                    let page: Vec<EventRow> = query.load(conn).await?;
                    let full = page.len() as i64 == PAGE;
                    after = page.last().map(|row| (row.0, row.1));
                    counted += page.len() as u64;
                    for (timestamp, _, event_type, source, status, duration_ms, user_id, session_id) in page {
                        rows.record(RollupEvent {
                            project_id: project,
                            timestamp,
                            event_type: Cow::Owned(event_type),
                            source: source.map(Cow::Owned),
                            status: status.map(Cow::Owned),
                            duration_ms,
                            user_id: user_id.as_deref(),
                            session_id: session_id.as_deref(),
                        });
                    }
                    // Every hour before the last event's is complete (events come in time order).
                    let complete = match (full, after) {
                        (true, Some((last, _))) => hour(last),
                        _ => to,
                    };
                    written += write_complete(conn, rows.take_before(complete)).await?;
                    if !full {
                        break;
                    }
                }
                Ok((counted, deleted, written))
            }
            .scope_boxed()
        })
        .await;
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(COMPACTION_LOCK)
        .execute(&mut conn)
        .await;
    let (events, rows_deleted, rows_written) = rebuilt.context("rebuilding the rollups")?;
    unlocked.context("releasing the compaction lock")?;
    Ok(Rebuilt {
        project_id: project,
        from,
        to,
        events,
        rows_deleted,
        rows_written,
    })
}

/// Writes whole hours of minute rows, compacted, and their hourly rows; returns the rows written.
async fn write_complete(
    conn: &mut diesel_async::AsyncPgConnection,
    rows: RollupRows<'_>,
) -> diesel::QueryResult<usize> {
    let minutes = rows.into_rows();
    let mut hours = std::collections::BTreeMap::new();
    for ((project, bucket, event_type, source, status), summary) in &minutes {
        let key = (
            *project,
            hour(*bucket),
            event_type.clone(),
            source.clone(),
            status.clone(),
        );
        match hours.get_mut(&key) {
            Some(row) => pulse_shared::rollup::Summary::merge(row, summary.clone()),
            None => {
                hours.insert(key, summary.clone());
            }
        }
    }
    let totals = pulse_shared::rollup::rows::hourly_totals(&hours);
    let written = minutes.len() + hours.len() + totals.len();
    insert_at(conn, Level::MinuteCompacted, minutes).await?;
    insert_at(conn, Level::Hour, hours).await?;
    insert_at(conn, Level::HourTotal, totals).await?;
    Ok(written)
}
