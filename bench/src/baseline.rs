//! The yardstick: how fast PostgreSQL on this machine stores the same rows when nothing else is
//! in the way. In a scratch database (`pulse_bench_baseline`, dropped afterwards) migrated with
//! the real schema (partitioned `events` with both indexes, `event_ids`), rows from the same
//! generator as the load are stored three ways, each from an empty table after a CHECKPOINT:
//!
//! 1. `copy`: one binary `COPY events FROM STDIN` of all rows, one transaction. The limit.
//! 2. `copy_tx_<batch>`: binary COPY, one transaction per `batch` rows (the worker's commit size).
//! 3. `insert_unnest_<batch>`: what the persist worker does per batch, one transaction each:
//!    ids into `event_ids` with `ON CONFLICT DO NOTHING`, then the rows whose id was new into
//!    `events`, both from arrays via `unnest` (see [`INSERT_SQL`]).
//!
//! Rows are generated before the clock starts, so only storing is timed. Durability settings
//! are the server's own (this tool changes none).

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::pin_mut;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::payload::{EventGen, SampleEvent};
use crate::persisted::{connect, redact};
use crate::report::{self, BaselinePhase, BaselineReport};

/// The scratch database's name.
pub const SCRATCH_DB: &str = "pulse_bench_baseline";

const COLUMNS: &str =
    "id, project_id, \"timestamp\", received_at, event_type, source, user_id, session_id, duration_ms, priority, status, tags, data, metadata";

/// The persist worker's statement for one batch: ids first (idempotency), then only the rows
/// whose id was new. Tags travel as one JSON array per row because PostgreSQL has no array of
/// arrays of different lengths.
pub const INSERT_SQL: &str = r#"
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::int8[], $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::jsonb[])
        AS t(id, ts, received_at, event_type, source, user_id, session_id, duration_ms, priority, status, tags, data, metadata)
), new_ids AS (
    INSERT INTO event_ids (id, project_id, "timestamp")
    SELECT id, $14, ts FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO events (id, project_id, "timestamp", received_at, event_type, source, user_id, session_id,
                    duration_ms, priority, status, tags, data, metadata)
SELECT i.id, $14, i.ts, i.received_at, i.event_type, i.source, i.user_id, i.session_id, i.duration_ms,
       i.priority, i.status, ARRAY(SELECT jsonb_array_elements_text(i.tags)), i.data, i.metadata
FROM input i JOIN new_ids n ON n.id = i.id
"#;

/// One row as stored.
struct Row {
    id: Uuid,
    received_at: DateTime<Utc>,
    event: SampleEvent,
    metadata: Value,
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").context("the database URL has no scheme")? + 3;
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Creates the scratch database, runs the phases, and drops it whatever happened.
pub async fn run(admin_url: &str, rows: u64, batch: usize) -> Result<BaselineReport> {
    let admin = connect(admin_url).await?;
    // One statement per call: a multi-statement string runs as one transaction, which DROP
    // DATABASE refuses.
    for statement in [
        format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"),
        format!("CREATE DATABASE {SCRATCH_DB}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .with_context(|| format!("{statement} via {}", redact(admin_url)))?;
    }
    let scratch_url = with_database(admin_url, SCRATCH_DB)?;
    let outcome = phases(&scratch_url, rows, batch).await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping {SCRATCH_DB}"));
    let report = outcome?;
    dropped?;
    Ok(report)
}

async fn phases(url: &str, rows: u64, batch: usize) -> Result<BaselineReport> {
    pulse_shared::db::migrate(url, 7)
        .await
        .context("migrating the scratch database")?;
    let client = connect(url).await?;
    let project_id = Uuid::new_v4();
    eprintln!("pulse-bench: generating {rows} rows");
    let mut generator = EventGen::new(0xC0FFEE);
    let received_at = Utc::now();
    let data: Vec<Row> = (0..rows)
        .map(|_| Row {
            id: Uuid::now_v7(),
            received_at,
            event: generator.event(),
            metadata: serde_json::json!({}),
        })
        .collect();
    let mean_row_json_bytes = data
        .iter()
        .take(1000)
        .map(|row| row.event.to_json().to_string().len() as u64)
        .sum::<u64>()
        / data.len().clamp(1, 1000) as u64;

    let mut phases = Vec::new();
    let batch_label = batch;

    reset(&client).await?;
    let began = Instant::now();
    copy_rows(&client, project_id, &data).await?;
    phases.push(phase(
        "copy",
        "binary COPY into events, one transaction (the limit)",
        rows,
        began,
    ));

    reset(&client).await?;
    let began = Instant::now();
    for chunk in data.chunks(batch.max(1)) {
        client.batch_execute("BEGIN").await?;
        copy_rows(&client, project_id, chunk).await?;
        client.batch_execute("COMMIT").await?;
    }
    phases.push(phase(
        &format!("copy_tx_{batch_label}"),
        &format!("binary COPY into events, one transaction per {batch_label} rows"),
        rows,
        began,
    ));

    reset(&client).await?;
    let statement = client
        .prepare(INSERT_SQL)
        .await
        .context("preparing the worker's insert")?;
    let began = Instant::now();
    for chunk in data.chunks(batch.max(1)) {
        insert_unnest(&client, &statement, project_id, chunk).await?;
    }
    let stored = count(&client).await?;
    anyhow::ensure!(stored == rows, "the unnest insert stored {stored} of {rows} rows");
    phases.push(phase(
        &format!("insert_unnest_{batch_label}"),
        &format!(
            "event_ids + events via unnest ON CONFLICT, one transaction per {batch_label} rows (the worker's way)"
        ),
        rows,
        began,
    ));

    Ok(BaselineReport {
        rows,
        mean_row_json_bytes,
        phases,
    })
}

fn phase(name: &str, description: &str, rows: u64, began: Instant) -> BaselinePhase {
    let elapsed = began.elapsed();
    let result = BaselinePhase {
        name: name.to_owned(),
        description: description.to_owned(),
        rows,
        seconds: elapsed.as_secs_f64(),
        rows_per_s: report::rate(rows, elapsed),
    };
    eprintln!("pulse-bench: {name}: {:.0} rows/s", result.rows_per_s);
    result
}

/// Empties the tables and checkpoints, so each phase starts from the same state.
async fn reset(client: &Client) -> Result<()> {
    client
        .batch_execute("TRUNCATE events, event_ids")
        .await
        .context("truncating")?;
    // CHECKPOINT needs superuser (or pg_checkpoint); without it the phases are just noisier.
    if let Err(error) = client.batch_execute("CHECKPOINT").await {
        eprintln!("pulse-bench: CHECKPOINT refused ({error}); continuing");
    }
    Ok(())
}

async fn count(client: &Client) -> Result<u64> {
    let row = client.query_one("SELECT count(*) FROM events", &[]).await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

async fn copy_rows(client: &Client, project_id: Uuid, rows: &[Row]) -> Result<()> {
    let sink = client
        .copy_in(&format!("COPY events ({COLUMNS}) FROM STDIN BINARY"))
        .await
        .context("starting COPY")?;
    let types = [
        Type::UUID,
        Type::UUID,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT_ARRAY,
        Type::JSONB,
        Type::JSONB,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in rows {
        let e = &row.event;
        let values: [&(dyn ToSql + Sync); 14] = [
            &row.id,
            &project_id,
            &e.timestamp,
            &row.received_at,
            &e.event_type,
            &e.source,
            &e.user_id,
            &e.session_id,
            &e.duration_ms,
            &e.priority,
            &e.status,
            &e.tags,
            &e.data,
            &row.metadata,
        ];
        writer.as_mut().write(&values).await.context("writing a COPY row")?;
    }
    writer.finish().await.context("finishing COPY")?;
    Ok(())
}

async fn insert_unnest(
    client: &Client,
    statement: &tokio_postgres::Statement,
    project_id: Uuid,
    rows: &[Row],
) -> Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let timestamps: Vec<DateTime<Utc>> = rows.iter().map(|r| r.event.timestamp).collect();
    let received: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.event.event_type).collect();
    let sources: Vec<Option<&str>> = rows.iter().map(|r| Some(r.event.source)).collect();
    let users: Vec<Option<&str>> = rows.iter().map(|r| Some(r.event.user_id.as_str())).collect();
    let sessions: Vec<Option<&str>> = rows.iter().map(|r| Some(r.event.session_id.as_str())).collect();
    let durations: Vec<Option<i64>> = rows.iter().map(|r| r.event.duration_ms).collect();
    let priorities: Vec<Option<&str>> = rows.iter().map(|r| r.event.priority).collect();
    let statuses: Vec<Option<&str>> = rows.iter().map(|r| r.event.status).collect();
    let tags: Vec<Value> = rows.iter().map(|r| Value::from(r.event.tags.clone())).collect();
    let data: Vec<&Value> = rows.iter().map(|r| &r.event.data).collect();
    let metadata: Vec<&Value> = rows.iter().map(|r| &r.metadata).collect();
    client.batch_execute("BEGIN").await?;
    client
        .execute(
            statement,
            &[
                &ids,
                &timestamps,
                &received,
                &types,
                &sources,
                &users,
                &sessions,
                &durations,
                &priorities,
                &statuses,
                &tags,
                &data,
                &metadata,
                &project_id,
            ],
        )
        .await
        .context("the worker's insert")?;
    client.batch_execute("COMMIT").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_swaps_only_the_name() {
        let swap = |url| with_database(url, "scratch").expect("valid url");
        assert_eq!(
            swap("postgres://u@127.0.0.1:5432/pulse"),
            "postgres://u@127.0.0.1:5432/scratch"
        );
        assert_eq!(
            swap("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/scratch?sslmode=disable"
        );
        assert_eq!(swap("postgresql://u:p@h:1"), "postgresql://u:p@h:1/scratch");
        assert!(with_database("nope", "x").is_err());
    }
}
