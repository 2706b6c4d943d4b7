//! `pulse-api admin rebuild-rollups --project ID --from T --to T`: recomputes a project's
//! rollups from its raw events over a range (after a bug fix, or a restore of `events`).
//!
//! The range is widened to whole minutes (rollup rows are per minute). In one REPEATABLE READ
//! transaction it deletes the range's rollup rows and writes them anew from the events of the
//! same snapshot, read 10,000 at a time in (timestamp, id) order. The persist worker keeps
//! running meanwhile: a batch it commits after the snapshot is neither counted here nor
//! deleted (its rows are inserts this transaction does not see), so nothing counts twice. Run
//! twice, it writes the same rows: idempotent.

use std::borrow::Cow;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::RunQueryDsl;
use pulse_shared::config::DatabaseConfig;
use pulse_shared::db;
use pulse_shared::rollup::rows::{minute, RollupEvent};
use pulse_shared::rollup::RollupRows;
use pulse_shared::schema::events;
use serde::Serialize;
use uuid::Uuid;

/// Events read per round trip.
const PAGE: i64 = 10_000;

/// What `rebuild-rollups` prints.
#[derive(Debug, Serialize)]
pub struct Rebuilt {
    pub project_id: Uuid,
    /// The range rebuilt, widened to whole minutes.
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
    let from = minute(from);
    let to = if minute(to) == to {
        to
    } else {
        minute(to) + TimeDelta::minutes(1)
    };
    let pool = db::build_pool(config, "pulse-api-admin")?;
    let mut conn = db::connection(&pool).await?;
    let (events, rows_deleted, rows_written) = conn
        .build_transaction()
        .repeatable_read()
        .run::<_, diesel::result::Error, _>(|conn| {
            async move {
                let deleted = diesel::sql_query(
                    "DELETE FROM event_rollups WHERE project_id = $1 AND bucket >= $2 AND bucket < $3",
                )
                .bind::<SqlUuid, _>(project)
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .execute(conn)
                .await?;
                let mut rows = RollupRows::default();
                let mut counted = 0u64;
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
                        query = query.filter(
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
                    if !full {
                        break;
                    }
                }
                let written = rows.len();
                rows.insert(conn).await?;
                Ok((counted, deleted, written))
            }
            .scope_boxed()
        })
        .await
        .context("rebuilding the rollups")?;
    Ok(Rebuilt {
        project_id: project,
        from,
        to,
        events,
        rows_deleted,
        rows_written,
    })
}
