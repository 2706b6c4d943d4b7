//! The yardstick: how fast PostgreSQL on this machine stores the same rows when nothing else is
//! in the way. In a scratch database (`pulse_bench_baseline`, dropped afterwards) migrated with
//! the real schema (partitioned `events` with both indexes, `event_ids`), rows from the same
//! generator as the load are stored three ways, each from an empty table after a CHECKPOINT:
//!
//! 1. `copy`: one binary `COPY events FROM STDIN` of all rows, one transaction. The limit.
//! 2. `copy_tx_<batch>`: binary COPY, one transaction per `batch` rows (the worker's commit size).
//! 3. `worker_insert_<batch>`: exactly what the persist worker does per batch, by calling its
//!    code (`pulse_worker::persist::store::write`, one statement = one transaction): ids into
//!    `event_ids` with `ON CONFLICT DO NOTHING`, then the rows whose id was new into `events`,
//!    all from binary arrays via `unnest`.
//!
//! Rows (and the worker's column arrays) are built before the clock starts, so only storing is
//! timed. Durability settings are the server's own (this tool changes none).

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::pin_mut;
use pulse_shared::envelope::EventEnvelope;
use pulse_shared::event::Event;
use pulse_worker::persist::store::{self, Columns};
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

/// One row as stored.
pub struct Row {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub event: SampleEvent,
    pub metadata: Value,
}

impl Row {
    /// The row as the api would have put it on Kafka.
    fn envelope(&self, project_id: Uuid) -> EventEnvelope {
        let e = &self.event;
        let event = Event {
            id: self.id,
            timestamp: e.timestamp,
            event_type: e.event_type.to_owned(),
            source: Some(e.source.to_owned()),
            user_id: Some(e.user_id.clone()),
            session_id: Some(e.session_id.clone()),
            duration_ms: e.duration_ms,
            priority: e.priority,
            status: e.status.map(str::to_owned),
            tags: e.tags.clone(),
            data: e.data.clone(),
            metadata: self.metadata.clone(),
        };
        EventEnvelope::new(project_id, self.received_at, event)
    }
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
    pulse_shared::db::migrate_url(url, 7)
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
    let batches: Vec<Columns> = data
        .chunks(batch.max(1))
        .map(|chunk| Columns::from_events(chunk.iter().map(|row| row.envelope(project_id)).collect()))
        .collect();
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting with diesel-async (the worker's driver)")?;
    let began = Instant::now();
    let mut inserted = 0;
    for columns in &batches {
        inserted += store::write(&mut conn, columns)
            .await
            .context("the worker's insert")?
            .inserted;
    }
    let elapsed_phase = phase(
        &format!("worker_insert_{batch_label}"),
        &format!(
            "the worker's statement (event_ids + events via unnest ON CONFLICT), one transaction per {batch_label} rows"
        ),
        rows,
        began,
    );
    anyhow::ensure!(
        inserted as u64 == rows,
        "the worker's insert stored {inserted} of {rows} rows"
    );
    phases.push(elapsed_phase);

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

pub async fn copy_rows(client: &Client, project_id: Uuid, rows: &[Row]) -> Result<()> {
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
        Type::INT4,
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
