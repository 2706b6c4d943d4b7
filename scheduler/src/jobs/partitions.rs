//! The `partitions` cron job (`PULSE_PARTITIONS_CRON`, every hour, and at start): daily
//! partitions of `events` and `metric_points` kept created `PULSE_EVENT_PARTITIONS_AHEAD_DAYS`
//! ahead, and the default partitions drained into them.
//!
//! `pulse_ensure_event_partitions` (the SQL function every binary also calls at start) creates
//! each missing day from today to today + ahead, but skips a day whose rows already sit in the
//! default partition (an event dated beyond the partitions ahead when it arrived): PostgreSQL
//! refuses a partition, created or attached, while the default partition holds rows of its
//! range. Such a day gets its partition here, one transaction per day:
//!
//! 1. the advisory lock of the SQL function (`pulse partitions`), so it never races it;
//! 2. `CREATE TABLE <parent>_pYYYYMMDD (LIKE <parent>)`, a plain table, not attached yet;
//! 3. the day's rows moved out of the default partition `PULSE_PARTITION_DRAIN_BATCH` at a time
//!    (`DELETE … RETURNING` into the new table, one bounded statement each), then the default
//!    locked against writes (`EXCLUSIVE`: reads go on) and what arrived meanwhile moved too;
//! 4. `ATTACH PARTITION` (it scans the default once, under its lock, and builds the indexes).
//!
//! The transaction keeps every row visible in `events` throughout: readers see the rows in the
//! default partition until the commit and in the new one after it (moving them in separate
//! transactions would hide the moved rows until the attach). `lock_timeout` bounds the wait for
//! the locks, so the job never queues every reader behind itself; a failure rolls the day back
//! whole and the framework retries. Afterwards the default partition holds no row of a day that
//! has its own partition (PostgreSQL guarantees it; this job makes the days in the window have
//! one). Days before today stay where they are: no partition exists for them to drain into, and
//! retention deletes their rows in batches.

use anyhow::Context;
use chrono::{Duration as Days, NaiveDate};
use diesel::sql_types::{BigInt, Bool, Date, Integer, Text};
use diesel::QueryableByName;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::db::{self, DbPool};

use super::Settings;

/// The advisory lock of `pulse_ensure_event_partitions` ('pulse partitions').
const PARTITION_LOCK: i64 = 7070766172747331;

/// The partitioned tables, each with its default partition `<parent>_default`.
const PARENTS: [&str; 2] = ["events", "metric_points"];

/// Longest wait for a lock of the drain.
const LOCK_TIMEOUT: &str = "5s";

/// Runs the job: partitions ahead, then the days the default partition was holding back.
pub async fn run(pool: &DbPool, settings: &Settings) -> anyhow::Result<String> {
    let days_ahead = settings.database.partitions_ahead_days;
    let batch = settings.scheduler.partition_drain_batch;
    let created = db::ensure_event_partitions(pool, days_ahead)
        .await
        .context("pulse_ensure_event_partitions")?;
    let (mut drained, mut moved) = (0, 0);
    for parent in PARENTS {
        for day in missing_days(pool, parent, days_ahead).await? {
            let rows = partition_from_default(pool, parent, day, batch)
                .await
                .with_context(|| format!("partition {parent} for {day} from its default partition"))?;
            tracing::info!(table = parent, %day, rows, "Partition made from the default partition's rows");
            drained += 1;
            moved += rows;
        }
    }
    Ok(format!(
        "{created} partitions created {days_ahead} days ahead; {drained} made from the default partition ({moved} rows moved)"
    ))
}

#[derive(QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
}

/// Days from today to `days_ahead` ahead that have no partition of `parent`.
async fn missing_days(pool: &DbPool, parent: &str, days_ahead: i32) -> anyhow::Result<Vec<NaiveDate>> {
    let mut conn = db::connection(pool).await?;
    let days: Vec<Day> = diesel::sql_query(
        "SELECT d::date AS day
         FROM generate_series((now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + $1, interval '1 day') AS d
         WHERE to_regclass($2 || '_p' || to_char(d, 'YYYYMMDD')) IS NULL
         ORDER BY 1",
    )
    .bind::<Integer, _>(days_ahead)
    .bind::<Text, _>(parent)
    .load(&mut conn)
    .await?;
    Ok(days.into_iter().map(|row| row.day).collect())
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

#[derive(QueryableByName)]
struct Columns {
    #[diesel(sql_type = Text)]
    columns: String,
}

/// Creates `parent`'s partition of `day` from the rows of the default partition (steps 1–4 of
/// the module header) in one transaction; returns how many rows moved.
async fn partition_from_default(
    pool: &DbPool,
    parent: &'static str,
    day: NaiveDate,
    batch: i64,
) -> anyhow::Result<i64> {
    let mut conn = db::connection(pool).await?;
    let moved = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            async move { partition_from_default_in(conn, parent, day, batch).await }.scope_boxed()
        })
        .await?;
    Ok(moved)
}

async fn partition_from_default_in(
    conn: &mut AsyncPgConnection,
    parent: &'static str,
    day: NaiveDate,
    batch: i64,
) -> Result<i64, diesel::result::Error> {
    diesel::sql_query(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(conn)
        .await?;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(PARTITION_LOCK)
        .execute(conn)
        .await?;
    let name = format!("{parent}_p{}", day.format("%Y%m%d"));
    let Exists { exists } = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS exists")
        .bind::<Text, _>(&name)
        .get_result(conn)
        .await?;
    if exists {
        return Ok(0);
    }
    let Columns { columns } = diesel::sql_query(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS columns
         FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
    )
    .bind::<Text, _>(parent)
    .get_result(conn)
    .await?;
    // Day bounds as UTC instants, the same literals the SQL function uses.
    let from = format!("{day} 00:00:00+00");
    let to = format!("{} 00:00:00+00", day + Days::days(1));
    diesel::sql_query(format!(
        "CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    ))
    .execute(conn)
    .await?;
    let default = format!("{parent}_default");
    let move_batch = format!(
        "WITH moved AS (
             DELETE FROM ONLY {default} WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM ONLY {default}
                 WHERE \"timestamp\" >= '{from}' AND \"timestamp\" < '{to}' LIMIT {batch}))
             RETURNING {columns})
         INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
    );
    let mut moved = 0i64;
    loop {
        let rows = diesel::sql_query(&move_batch).execute(conn).await?;
        moved += rows as i64;
        if rows == 0 {
            break;
        }
    }
    // Rows written for the day while the batches ran: none can come in after this lock.
    diesel::sql_query(format!("LOCK TABLE ONLY {default} IN EXCLUSIVE MODE"))
        .execute(conn)
        .await?;
    loop {
        let rows = diesel::sql_query(&move_batch).execute(conn).await?;
        moved += rows as i64;
        if rows == 0 {
            break;
        }
    }
    diesel::sql_query(format!(
        "ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}')"
    ))
    .execute(conn)
    .await?;
    Ok(moved)
}
