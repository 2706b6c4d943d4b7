//! Background removal of deleted projects and organizations, in bounded batches.
//!
//! `DELETE /v1/projects/{id}` only marks the project (`deleted_at`) and revokes its keys; this
//! job then removes its events, oldest first, `PULSE_PURGE_BATCH_SIZE` at a time (plus ties on
//! the last timestamp), each batch in its own short transaction, then the rest of its
//! `event_ids`, then its rollups (`event_rollups`, then the hourly rows and totals), then its
//! named metrics (`metric_points` by id, `metric_point_ids`, `metric_rollups`,
//! `metric_latest`, each in bounded batches), then the
//! project row itself, which cascades to everything declared `ON DELETE CASCADE` on
//! `projects` (API keys and any project-owned table added later). An organization marked
//! deleted goes once it has no project left.
//!
//! The job is durable: its state is the `deleted_at` columns, so a scheduler restart resumes it.
//! It runs in every scheduler replica; each step claims its project with `FOR UPDATE SKIP
//! LOCKED`, so replicas never work on the same project at the same moment and share the work.
//! Counted in `pulse_scheduler_job_runs_total{job="purge"}`: `ok` per project or organization
//! removed, `error` per failed step; its last step is shown in `GET /jobs`. It stays an
//! interval loop rather than a cron job (see [`super`]): it drains a queue back to back.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{record_loop, JOB_RUNS as RUNS};

/// Pause after a failed step.
const ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Deleted this many events of a project.
    Events(usize),
    /// Deleted leftover `event_ids` rows of a project.
    EventIds(usize),
    /// Deleted rollup rows of a project.
    Rollups(usize),
    /// Deleted named-metric rows of a project (points, their ids, rollups, latest rows).
    Metrics(usize),
    /// Removed a project row (all its data is gone).
    ProjectRemoved,
    /// Removed an empty deleted organization.
    OrganizationRemoved,
    /// Nothing to do.
    Idle,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Does one bounded piece of purge work in its own transaction.
pub async fn step(pool: &DbPool, batch_size: i64) -> Result<Step, pulse_shared::Error> {
    let mut conn = db::connection(pool).await?;
    let step = conn
        .transaction::<_, diesel::result::Error, _>(|conn| async move { step_in(conn, batch_size).await }.scope_boxed())
        .await?;
    Ok(step)
}

async fn step_in(conn: &mut AsyncPgConnection, batch_size: i64) -> Result<Step, diesel::result::Error> {
    let project: Option<IdRow> = diesel::sql_query(
        "SELECT id FROM projects WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .get_result(conn)
    .await
    .optional()?;
    let Some(IdRow { id: project }) = project else {
        let removed = diesel::sql_query(
            "DELETE FROM organizations WHERE id = (
                 SELECT o.id FROM organizations o
                 WHERE o.deleted_at IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.organization_id = o.id)
                 LIMIT 1 FOR UPDATE SKIP LOCKED)",
        )
        .execute(conn)
        .await?;
        return Ok(if removed > 0 {
            Step::OrganizationRemoved
        } else {
            Step::Idle
        });
    };

    // The oldest `batch_size` events (and any sharing the last timestamp), through the
    // (project_id, timestamp) index of each partition.
    let gone: Vec<IdRow> = diesel::sql_query(
        "WITH cutoff AS (
             SELECT \"timestamp\" AS ts FROM events WHERE project_id = $1
             ORDER BY \"timestamp\" LIMIT 1 OFFSET $2)
         DELETE FROM events
         WHERE project_id = $1 AND \"timestamp\" <= COALESCE((SELECT ts FROM cutoff), 'infinity')
         RETURNING id",
    )
    .bind::<SqlUuid, _>(project)
    .bind::<BigInt, _>(batch_size.max(1) - 1)
    .load(conn)
    .await?;
    if !gone.is_empty() {
        let ids: Vec<Uuid> = gone.iter().map(|row| row.id).collect();
        diesel::sql_query("DELETE FROM event_ids WHERE project_id = $1 AND id = ANY($2)")
            .bind::<SqlUuid, _>(project)
            .bind::<Array<SqlUuid>, _>(&ids)
            .execute(conn)
            .await?;
        return Ok(Step::Events(gone.len()));
    }

    // Ids whose events were already gone (retention); `event_ids` has no project index, so
    // this scans, but only once per deleted project.
    let leftovers = delete_some(conn, "event_ids", project, batch_size).await?;
    if leftovers > 0 {
        return Ok(Step::EventIds(leftovers));
    }

    // Minute rows first: the compaction folds deltas into hourly rows, so once no minute row
    // is left, no hourly row can appear.
    for table in ["event_rollups", "event_rollups_hourly", "event_rollups_hourly_totals"] {
        let rollups = delete_some(conn, table, project, batch_size).await?;
        if rollups > 0 {
            return Ok(Step::Rollups(rollups));
        }
    }

    // Named metrics: the points (partitioned, so by id rather than ctid, which is only unique
    // within one partition), then the ids left, the rollups and the latest rows.
    let points = diesel::sql_query(
        "DELETE FROM metric_points WHERE project_id = $1 AND id = ANY(ARRAY(
             SELECT id FROM metric_points WHERE project_id = $1 LIMIT $2))",
    )
    .bind::<SqlUuid, _>(project)
    .bind::<BigInt, _>(batch_size.max(1))
    .execute(conn)
    .await?;
    if points > 0 {
        return Ok(Step::Metrics(points));
    }
    for table in ["metric_point_ids", "metric_rollups", "metric_latest"] {
        let rows = delete_some(conn, table, project, batch_size).await?;
        if rows > 0 {
            return Ok(Step::Metrics(rows));
        }
    }
    diesel::sql_query("DELETE FROM projects WHERE id = $1")
        .bind::<SqlUuid, _>(project)
        .execute(conn)
        .await?;
    tracing::info!(project_id = %project, "Deleted project purged");
    Ok(Step::ProjectRemoved)
}

/// Deletes at most `limit` rows of a project from `table`, by `ctid` in one short statement;
/// returns how many went.
async fn delete_some(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    project: Uuid,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE project_id = $1 LIMIT $2))"
    ))
    .bind::<SqlUuid, _>(project)
    .bind::<BigInt, _>(limit.max(1))
    .execute(conn)
    .await
}

/// Runs purge steps until `stop`: back to back while there is work, every `interval` when idle.
pub async fn run(pool: DbPool, interval: Duration, batch_size: i64, stop: CancellationToken) {
    let mut events = 0usize;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let started = chrono::Utc::now();
        let result = step(&pool, batch_size).await;
        record_loop(
            "purge",
            started,
            result
                .as_ref()
                .map(|step| format!("{step:?}"))
                .map_err(ToString::to_string),
        );
        let pause = match result {
            Ok(Step::Idle) => interval,
            Ok(Step::Events(count)) => {
                events += count;
                Duration::ZERO
            }
            Ok(Step::ProjectRemoved) => {
                RUNS.with_label_values(&["purge", "ok"]).inc();
                tracing::info!(events, "Purge finished a project");
                events = 0;
                Duration::ZERO
            }
            Ok(Step::OrganizationRemoved) => {
                RUNS.with_label_values(&["purge", "ok"]).inc();
                Duration::ZERO
            }
            Ok(Step::EventIds(_) | Step::Rollups(_) | Step::Metrics(_)) => Duration::ZERO,
            Err(error) => {
                RUNS.with_label_values(&["purge", "error"]).inc();
                tracing::warn!(error = %error, "Purge step failed; retrying");
                ERROR_BACKOFF
            }
        };
        if pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
