//! Retention: removes what is past its retention, in bounded batches (never one giant DELETE),
//! each batch one short statement of its own, so ingest keeps writing meanwhile. One run:
//!
//! 1. **Whole daily partitions** of `events` and `metric_points` that no live project keeps
//!    (the day ends before `now − max(retention_days)` of the live projects; with no live
//!    project nothing is dropped) are detached and renamed `retired_<partition>` in one short
//!    transaction (`lock_timeout` 2 s: detaching locks the parent table for an instant; a busy
//!    table is left for the next run). A retired table receives nothing any more (a late event
//!    of that day lands in the DEFAULT partition and goes by step 2), so its ids are then
//!    removed from `event_ids` / `metric_point_ids` a range of pages at a time (about
//!    `PULSE_RETENTION_BATCH` rows, primary-key look-ups) and the table is dropped. A crash in
//!    between leaves the retired table, which the next run walks again (removing an id twice is
//!    a no-op) and drops.
//! 2. **Raw rows** a project no longer keeps (`timestamp` older than its `retention_days`), in
//!    the partitions it still has (the DEFAULT partition included), per project and partition:
//!    `PULSE_RETENTION_BATCH` rows by `ctid`, their ids removed from the dedup table in the
//!    same statement.
//! 3. **Rollups**, per project: compacted minute rows of `event_rollups` and `metric_rollups`
//!    older than `min(retention_days, PULSE_RETENTION_ROLLUPS_1M_DAYS)` (deltas the compaction
//!    has not folded yet are left to it, so the hourly rows stay exact; the next run removes
//!    what it folded), `event_rollups_hourly` and `event_rollups_hourly_totals` older than
//!    `PULSE_RETENTION_ROLLUPS_1H_DAYS`. There is no daily rollup table yet; daily figures will
//!    be kept forever. `metric_latest` (one row per label set) is not time-bounded.
//! 4. **Logs**: finished webhook deliveries (`succeeded`/`failed`, `completed_at` older than
//!    `PULSE_RETENTION_WEBHOOK_DAYS`) with their attempts, sent or failed emails (`sent_at`, or
//!    `created_at` for a failed one, older than `PULSE_RETENTION_EMAIL_DAYS`) with their
//!    attempts, password resets used or expired more than a day ago, resolved alert incidents
//!    (`resolved_at` older than `PULSE_RETENTION_INCIDENT_DAYS`). Pending deliveries and pending
//!    emails are never removed, however old. These walk the primary key (keyset), so a run reads
//!    each table once.
//! 5. **Uptime monitors**: checks older than `PULSE_RETENTION_CHECK_DAYS` and daily uptime rows
//!    older than `PULSE_RETENTION_INCIDENT_DAYS`, per monitor through its indexes; monitor
//!    incidents resolved more than `PULSE_RETENTION_INCIDENT_DAYS` ago (open ones stay).
//! 6. **Job runs** of the scheduler due more than `PULSE_RETENTION_JOB_RUN_DAYS` ago (also one
//!    still marked `running`: a replica killed mid-run leaves it so, and a month later it only
//!    misleads).
//!
//! **What dropping an event id means.** `event_ids` is the dedup table (promise 2): an id in it
//! is never stored twice. Once retention removed an event and its id, a producer retrying that
//! very event (same id, a timestamp older than the project's retention) has it stored again,
//! until the next run removes it again. `event_ids` has a `timestamp` column but no index on
//! it (a second index entry on every ingested event), so ids are removed by the events removed
//! (primary-key look-ups), not by scanning `event_ids` by time.
//!
//! Every step is idempotent (a second run finds nothing) and safe beside ingest: removing
//! only takes row locks, except the brief detach. Runs are kept from overlapping across
//! replicas by the scheduler's once-per-tick claim. Counted in
//! `pulse_retention_rows_deleted_total{table}` and `pulse_retention_partitions_dropped_total{table}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use prometheus::{register_int_counter_vec, IntCounterVec};
use pulse_shared::config::RetentionConfig;
use pulse_shared::db::{self, DbPool};
use pulse_shared::metrics::registered;
use uuid::Uuid;

/// Rows removed by retention, by table.
pub static ROWS_DELETED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_retention_rows_deleted_total",
        "Rows removed by the retention job, by table",
        &["table"]
    ))
});

/// Daily partitions dropped by retention, by partitioned table.
pub static PARTITIONS_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_retention_partitions_dropped_total",
        "Daily partitions dropped by the retention job, by partitioned table",
        &["table"]
    ))
});

/// How long a password reset is kept after it was used or expired.
const PASSWORD_RESET_KEEP: TimeDelta = TimeDelta::days(1);

/// A partitioned table of raw rows and its dedup table.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub table: &'static str,
    pub ids: &'static str,
}

pub const EVENTS: Raw = Raw {
    table: "events",
    ids: "event_ids",
};
pub const METRIC_POINTS: Raw = Raw {
    table: "metric_points",
    ids: "metric_point_ids",
};

/// What a run removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rows removed, by table (rows of dropped partitions included).
    pub rows: BTreeMap<&'static str, u64>,
    /// Partitions dropped, by partitioned table.
    pub partitions: BTreeMap<&'static str, u64>,
}

impl Report {
    fn rows(&mut self, table: &'static str, count: u64) {
        if count > 0 {
            *self.rows.entry(table).or_default() += count;
            ROWS_DELETED.with_label_values(&[table]).inc_by(count);
        }
    }

    fn partition(&mut self, table: &'static str) {
        *self.partitions.entry(table).or_default() += 1;
        PARTITIONS_DROPPED.with_label_values(&[table]).inc();
    }

    /// One line: `removed 120 rows (events 60, event_ids 60), dropped 1 partition (events 1)`.
    pub fn summary(&self) -> String {
        let total: u64 = self.rows.values().sum();
        if total == 0 && self.partitions.is_empty() {
            return "nothing past its retention".into();
        }
        let mut line = format!("removed {total} rows (");
        for (index, (table, count)) in self.rows.iter().enumerate() {
            let _ = write!(line, "{}{table} {count}", if index > 0 { ", " } else { "" });
        }
        line.push(')');
        let dropped: u64 = self.partitions.values().sum();
        if dropped > 0 {
            let _ = write!(line, ", dropped {dropped} partitions (");
            for (index, (table, count)) in self.partitions.iter().enumerate() {
                let _ = write!(line, "{}{table} {count}", if index > 0 { ", " } else { "" });
            }
            line.push(')');
        }
        line
    }
}

/// A live project's retention.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct ProjectRetention {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub retention_days: i32,
}

/// The job: one run of every step, returning its one-line summary.
pub async fn run(pool: &DbPool, config: &RetentionConfig) -> anyhow::Result<String> {
    let report = run_report(pool, config).await?;
    tracing::info!(summary = %report.summary(), "Retention run finished");
    Ok(report.summary())
}

/// One run, returning what it removed.
pub async fn run_report(pool: &DbPool, config: &RetentionConfig) -> anyhow::Result<Report> {
    let mut conn = db::connection(pool).await?;
    let conn: &mut AsyncPgConnection = &mut conn;
    let batch = config.batch.max(1);
    let now = database_now(conn).await?;
    let projects = live_projects(conn).await?;
    let mut report = Report::default();

    for raw in [EVENTS, METRIC_POINTS] {
        retire_partitions(conn, raw, now, &projects).await?;
        drain_retired(conn, raw, batch, &mut report).await?;
    }
    let events_partitions = partitions(conn, EVENTS).await?;
    let metric_partitions = partitions(conn, METRIC_POINTS).await?;
    let hour_cutoff = now - days(config.rollups_1h_days);
    for project in &projects {
        let raw_cutoff = now - days(project.retention_days);
        let minute_cutoff = now - days(project.retention_days.min(config.rollups_1m_days));
        delete_raw(
            conn,
            EVENTS,
            &events_partitions,
            project.id,
            raw_cutoff,
            batch,
            &mut report,
        )
        .await?;
        delete_raw(
            conn,
            METRIC_POINTS,
            &metric_partitions,
            project.id,
            raw_cutoff,
            batch,
            &mut report,
        )
        .await?;
        let minute_rollups = delete_project_rows(
            conn,
            "event_rollups",
            "bucket",
            "AND compacted",
            project.id,
            minute_cutoff,
            batch,
        )
        .await?;
        report.rows("event_rollups", minute_rollups);
        let metric_rollups =
            delete_project_rows(conn, "metric_rollups", "bucket", "", project.id, minute_cutoff, batch).await?;
        report.rows("metric_rollups", metric_rollups);
        for table in ["event_rollups_hourly", "event_rollups_hourly_totals"] {
            let hourly = delete_project_rows(conn, table, "bucket", "", project.id, hour_cutoff, batch).await?;
            report.rows(table, hourly);
        }
    }

    let (deliveries, attempts) = delete_webhook_deliveries(conn, now - days(config.webhook_days), batch).await?;
    report.rows("webhook_deliveries", deliveries);
    report.rows("webhook_attempts", attempts);
    let (emails, email_attempts) = delete_emails(conn, now - days(config.email_days), batch).await?;
    report.rows("email_messages", emails);
    report.rows("email_attempts", email_attempts);
    report.rows(
        "password_resets",
        delete_password_resets(conn, now - PASSWORD_RESET_KEEP, batch).await?,
    );
    report.rows(
        "alert_incidents",
        delete_incidents(conn, now - days(config.incident_days), batch).await?,
    );
    let (checks, daily) = delete_monitor_history(
        conn,
        now - days(config.check_days),
        now - days(config.incident_days),
        batch,
    )
    .await?;
    report.rows("monitor_checks", checks);
    report.rows("monitor_daily", daily);
    report.rows(
        "monitor_incidents",
        delete_monitor_incidents(conn, now - days(config.incident_days), batch).await?,
    );
    report.rows(
        "job_runs",
        delete_job_runs(conn, now - days(config.job_run_days), batch).await?,
    );
    Ok(report)
}

fn days(days: i32) -> TimeDelta {
    TimeDelta::days(i64::from(days))
}

/// A double-quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(QueryableByName)]
struct NowRow {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// The database's clock: every cutoff of a run is computed from it once.
async fn database_now(conn: &mut AsyncPgConnection) -> anyhow::Result<DateTime<Utc>> {
    let row: NowRow = diesel::sql_query("SELECT now() AS now").get_result(conn).await?;
    Ok(row.now)
}

/// Projects not marked deleted (the purge removes everything of a deleted one).
pub async fn live_projects(conn: &mut AsyncPgConnection) -> anyhow::Result<Vec<ProjectRetention>> {
    Ok(
        diesel::sql_query("SELECT id, retention_days FROM projects WHERE deleted_at IS NULL ORDER BY id")
            .load(conn)
            .await?,
    )
}

/// One attached partition of a raw table.
#[derive(Debug, Clone)]
pub struct Partition {
    pub name: String,
    /// The UTC day it holds, for `<table>_pYYYYMMDD`; `None` for the DEFAULT partition (or
    /// any partition not named by the convention), which may hold any day.
    pub day: Option<NaiveDate>,
}

impl Partition {
    /// The instant its rows end before (exclusive), for a daily partition.
    fn end(&self) -> Option<DateTime<Utc>> {
        let next = self.day?.checked_add_days(Days::new(1))?;
        Some(next.and_hms_opt(0, 0, 0)?.and_utc())
    }

    fn start(&self) -> Option<DateTime<Utc>> {
        Some(self.day?.and_hms_opt(0, 0, 0)?.and_utc())
    }
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The partitions attached to `raw.table`, oldest day first (the DEFAULT one last).
pub async fn partitions(conn: &mut AsyncPgConnection, raw: Raw) -> anyhow::Result<Vec<Partition>> {
    let rows: Vec<NameRow> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::text::regclass ORDER BY c.relname",
    )
    .bind::<Text, _>(raw.table)
    .load(conn)
    .await?;
    let prefix = format!("{}_p", raw.table);
    let mut partitions: Vec<Partition> = rows
        .into_iter()
        .map(|row| {
            let day = row
                .name
                .strip_prefix(&prefix)
                .filter(|digits| digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| NaiveDate::parse_from_str(digits, "%Y%m%d").ok());
            Partition { name: row.name, day }
        })
        .collect();
    partitions.sort_by_key(|partition| (partition.day.is_none(), partition.day));
    Ok(partitions)
}

#[derive(QueryableByName)]
struct HorizonRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    horizon: Option<DateTime<Utc>>,
}

/// Detaches (and renames `retired_<name>`) each daily partition of `raw.table` whose day ends
/// before the oldest instant any live project keeps. A partition whose detach cannot get its
/// lock within 2 s is left for the next run.
async fn retire_partitions(
    conn: &mut AsyncPgConnection,
    raw: Raw,
    now: DateTime<Utc>,
    projects: &[ProjectRetention],
) -> anyhow::Result<()> {
    let Some(longest) = projects.iter().map(|project| project.retention_days).max() else {
        return Ok(());
    };
    let horizon = now - days(longest);
    for partition in partitions(conn, raw).await? {
        let Some(end) = partition.end() else { continue };
        if end > horizon {
            continue;
        }
        let table = raw.table;
        let name = partition.name.clone();
        let retired = conn
            .transaction::<bool, diesel::result::Error, _>(|conn| {
                async move {
                    diesel::sql_query("SET LOCAL lock_timeout = '2s'").execute(conn).await?;
                    // Again inside the transaction: a project whose retention grew since the
                    // run started keeps its days.
                    let row: HorizonRow = diesel::sql_query(
                        "SELECT now() - make_interval(days => max(retention_days)) AS horizon
                         FROM projects WHERE deleted_at IS NULL",
                    )
                    .get_result(conn)
                    .await?;
                    if row.horizon.is_none_or(|horizon| end > horizon) {
                        return Ok(false);
                    }
                    diesel::sql_query(format!(
                        "ALTER TABLE {} DETACH PARTITION {}",
                        ident(table),
                        ident(&name)
                    ))
                    .execute(conn)
                    .await?;
                    diesel::sql_query(format!(
                        "ALTER TABLE {} RENAME TO {}",
                        ident(&name),
                        ident(&format!("retired_{name}"))
                    ))
                    .execute(conn)
                    .await?;
                    Ok(true)
                }
                .scope_boxed()
            })
            .await;
        match retired {
            Ok(true) => {
                tracing::info!(table, partition = %partition.name, "Partition past every project's retention detached")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(table, partition = %partition.name, %error, "Partition not detached; next run retries");
            }
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct RetiredRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Double)]
    tuples: f64,
    #[diesel(sql_type = BigInt)]
    pages: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Removed {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    ids: i64,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Removes the ids of each retired table of `raw` from its dedup table, about `batch` rows a
/// statement (a range of pages by `ctid`: a TID range scan reads only those pages), then drops
/// the table.
async fn drain_retired(conn: &mut AsyncPgConnection, raw: Raw, batch: i64, report: &mut Report) -> anyhow::Result<()> {
    let retired: Vec<RetiredRow> = diesel::sql_query(
        "SELECT c.relname::text AS name, c.reltuples::float8 AS tuples,
                pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname ~ $1
         ORDER BY c.relname",
    )
    .bind::<Text, _>(format!("^retired_{}_p[0-9]{{8}}$", raw.table))
    .load(conn)
    .await?;
    for table in retired {
        let quoted = ident(&table.name);
        let tuples = if table.tuples >= 0.0 {
            table.tuples
        } else {
            // Never analyzed: count once.
            let row: CountRow = diesel::sql_query(format!("SELECT count(*) AS count FROM {quoted}"))
                .get_result(conn)
                .await?;
            row.count as f64
        };
        let per_page = if table.pages > 0 {
            tuples / table.pages as f64
        } else {
            0.0
        };
        let step = ((batch as f64 / per_page.max(1.0)).floor() as i64).max(1);
        let sql = format!(
            "WITH doomed AS MATERIALIZED (
                 SELECT id FROM {quoted} WHERE ctid >= $1::text::tid AND ctid < $2::text::tid),
             gone AS (DELETE FROM {ids} WHERE id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1)
             SELECT (SELECT count(*) FROM doomed) AS rows, (SELECT count(*) FROM gone) AS ids",
            ids = ident(raw.ids)
        );
        let mut page = 0i64;
        while page < table.pages {
            let removed: Removed = diesel::sql_query(&sql)
                .bind::<Text, _>(format!("({page},0)"))
                .bind::<Text, _>(format!("({},0)", page + step))
                .get_result(conn)
                .await?;
            report.rows(raw.table, count(removed.rows));
            report.rows(raw.ids, count(removed.ids));
            page += step;
        }
        diesel::sql_query(format!("DROP TABLE IF EXISTS {quoted}"))
            .execute(conn)
            .await?;
        report.partition(raw.table);
        tracing::info!(table = raw.table, partition = %table.name, "Retired partition dropped");
    }
    Ok(())
}

/// Removes a project's rows of `raw.table` older than `cutoff` from each partition that may
/// hold some, `batch` at a time, with their ids in the dedup table (same statement).
pub async fn delete_raw(
    conn: &mut AsyncPgConnection,
    raw: Raw,
    partitions: &[Partition],
    project: Uuid,
    cutoff: DateTime<Utc>,
    batch: i64,
    report: &mut Report,
) -> anyhow::Result<()> {
    for partition in partitions {
        if partition.start().is_some_and(|start| start >= cutoff) {
            continue;
        }
        let quoted = ident(&partition.name);
        let sql = format!(
            "WITH gone AS (
                 DELETE FROM {quoted} WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM {quoted} WHERE project_id = $1 AND \"timestamp\" < $2 LIMIT $3))
                 RETURNING id),
             ids AS (DELETE FROM {ids} WHERE id = ANY(ARRAY(SELECT id FROM gone)) RETURNING 1)
             SELECT (SELECT count(*) FROM gone) AS rows, (SELECT count(*) FROM ids) AS ids",
            ids = ident(raw.ids)
        );
        loop {
            let removed: Removed = diesel::sql_query(&sql)
                .bind::<SqlUuid, _>(project)
                .bind::<Timestamptz, _>(cutoff)
                .bind::<BigInt, _>(batch)
                .get_result(conn)
                .await?;
            report.rows(raw.table, count(removed.rows));
            report.rows(raw.ids, count(removed.ids));
            if removed.rows < batch {
                break;
            }
        }
    }
    Ok(())
}

/// Removes a project's rows of `table` whose `column` is before `cutoff` (and that meet
/// `extra`, an `AND …` clause), `batch` at a time by `ctid`; returns how many went.
pub async fn delete_project_rows(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    column: &'static str,
    extra: &'static str,
    project: Uuid,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<u64> {
    let sql = format!(
        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM {table} WHERE project_id = $1 AND {column} < $2 {extra} LIMIT $3))"
    );
    let mut total = 0u64;
    loop {
        let removed = diesel::sql_query(&sql)
            .bind::<SqlUuid, _>(project)
            .bind::<Timestamptz, _>(cutoff)
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await?;
        total += removed as u64;
        if (removed as i64) < batch {
            return Ok(total);
        }
    }
}

#[derive(QueryableByName)]
struct KeysetRow {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    children: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    last: Option<Uuid>,
}

/// Walks `table` by its uuid primary key `id`, removing `batch` rows meeting `condition` (with
/// `$2`, the cutoff) per statement, and first their rows of `child` (by `child_key`), so
/// they are counted; returns (rows, child rows) removed.
async fn delete_keyset(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    condition: &'static str,
    child: Option<(&'static str, &'static str)>,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<(u64, u64)> {
    let children = match child {
        // The children of the rows actually removed (the condition is checked again on the
        // current row by the DELETE), before the cascade, which then finds none.
        Some((child, key)) => {
            format!("kids AS (DELETE FROM {child} WHERE {key} = ANY(ARRAY(SELECT id FROM gone)) RETURNING 1)")
        }
        None => "kids AS (SELECT 1 WHERE false)".to_owned(),
    };
    let sql = format!(
        "WITH doomed AS MATERIALIZED (
             SELECT id FROM {table} WHERE id > $1 AND {condition} ORDER BY id LIMIT $3),
         gone AS (DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM doomed)) AND {condition} RETURNING id),
         {children}
         SELECT (SELECT count(*) FROM gone) AS rows, (SELECT count(*) FROM kids) AS children,
                (SELECT id FROM doomed ORDER BY id DESC LIMIT 1) AS last"
    );
    let (mut rows, mut kids) = (0u64, 0u64);
    let mut after = Uuid::nil();
    loop {
        let step: KeysetRow = diesel::sql_query(&sql)
            .bind::<SqlUuid, _>(after)
            .bind::<Timestamptz, _>(cutoff)
            .bind::<BigInt, _>(batch)
            .get_result(conn)
            .await?;
        rows += count(step.rows);
        kids += count(step.children);
        match step.last {
            Some(last) => after = last,
            None => return Ok((rows, kids)),
        }
    }
}

/// Finished webhook deliveries completed before `cutoff`, with their attempts. Pending ones
/// always stay.
pub async fn delete_webhook_deliveries(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<(u64, u64)> {
    delete_keyset(
        conn,
        "webhook_deliveries",
        "status IN ('succeeded', 'failed') AND COALESCE(completed_at, created_at) < $2",
        Some(("webhook_attempts", "delivery_id")),
        cutoff,
        batch,
    )
    .await
}

/// Sent emails sent before `cutoff` and failed ones created before it, with their attempts.
/// Pending ones always stay.
pub async fn delete_emails(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<(u64, u64)> {
    delete_keyset(
        conn,
        "email_messages",
        "status IN ('sent', 'failed') AND COALESCE(sent_at, created_at) < $2",
        Some(("email_attempts", "email_id")),
        cutoff,
        batch,
    )
    .await
}

/// Resolved alert incidents resolved before `cutoff`.
pub async fn delete_incidents(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>, batch: i64) -> anyhow::Result<u64> {
    let (rows, _) = delete_keyset(
        conn,
        "alert_incidents",
        "state = 'resolved' AND resolved_at < $2",
        None,
        cutoff,
        batch,
    )
    .await?;
    Ok(rows)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Per monitor, through its `(monitor_id, …)` indexes: checks made before `check_cutoff` and
/// daily uptime rows of days before `daily_cutoff`, `batch` rows per statement; returns (checks,
/// daily rows) removed.
pub async fn delete_monitor_history(
    conn: &mut AsyncPgConnection,
    check_cutoff: DateTime<Utc>,
    daily_cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<(u64, u64)> {
    let monitors: Vec<IdRow> = diesel::sql_query("SELECT id FROM monitors ORDER BY id")
        .load(conn)
        .await?;
    let (mut checks, mut daily) = (0u64, 0u64);
    for monitor in monitors {
        loop {
            let removed = diesel::sql_query(
                "DELETE FROM monitor_checks WHERE id = ANY(ARRAY(
                     SELECT id FROM monitor_checks WHERE monitor_id = $1 AND checked_at < $2
                     ORDER BY checked_at LIMIT $3))",
            )
            .bind::<SqlUuid, _>(monitor.id)
            .bind::<Timestamptz, _>(check_cutoff)
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await?;
            checks += removed as u64;
            if (removed as i64) < batch {
                break;
            }
        }
        loop {
            let removed = diesel::sql_query(
                "DELETE FROM monitor_daily WHERE monitor_id = $1 AND day = ANY(ARRAY(
                     SELECT day FROM monitor_daily WHERE monitor_id = $1 AND day < ($2 AT TIME ZONE 'UTC')::date
                     ORDER BY day LIMIT $3))",
            )
            .bind::<SqlUuid, _>(monitor.id)
            .bind::<Timestamptz, _>(daily_cutoff)
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await?;
            daily += removed as u64;
            if (removed as i64) < batch {
                break;
            }
        }
    }
    Ok((checks, daily))
}

/// Monitor incidents resolved before `cutoff` (open ones always stay).
pub async fn delete_monitor_incidents(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<u64> {
    let (rows, _) = delete_keyset(conn, "monitor_incidents", "resolved_at < $2", None, cutoff, batch).await?;
    Ok(rows)
}

/// The scheduler's job runs due before `cutoff` (a small table: a row per job and tick).
pub async fn delete_job_runs(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>, batch: i64) -> anyhow::Result<u64> {
    let mut total = 0u64;
    loop {
        let removed = diesel::sql_query(
            "DELETE FROM job_runs WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM job_runs WHERE tick_at < $1 LIMIT $2))",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(batch)
        .execute(conn)
        .await?;
        total += removed as u64;
        if (removed as i64) < batch {
            return Ok(total);
        }
    }
}

/// Password resets used or expired before `cutoff` (a small table: tokens live an hour).
pub async fn delete_password_resets(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<u64> {
    let mut total = 0u64;
    loop {
        let removed = diesel::sql_query(
            "DELETE FROM password_resets WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM password_resets WHERE used_at < $1 OR expires_at < $1 LIMIT $2))",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(batch)
        .execute(conn)
        .await?;
        total += removed as u64;
        if (removed as i64) < batch {
            return Ok(total);
        }
    }
}
