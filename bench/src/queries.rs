//! The read side's benchmark: a month of events seeded straight into PostgreSQL, then the read
//! routes timed over HTTP.
//!
//! - [`seed`]: `events` rows (and their `event_ids`) from the load generator's own
//!   [`EventGen`], spread evenly over `days` ending at `end`, in daily partitions as the
//!   scheduler keeps them, by binary COPY in chunks; sessions last 30 minutes per user. The
//!   rollups are then built by `pulse-api admin rebuild-rollups` (scripts/bench-queries.sh),
//!   which writes what the scheduler's compaction leaves: one row per minute and dimensions and
//!   one per hour and dimensions.
//! - [`time_queries`]: each named query sent `rounds` times one after the other (after two
//!   unmeasured warm-ups), latency percentiles per query.
//! - [`time_export`]: one streamed export read to the end: rows, bytes and rate.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::baseline::{copy_rows, Row};
use crate::payload::EventGen;
use crate::persisted::connect;
use crate::report::{self, micros_histogram, Percentiles};

/// What [`seed`] stored.
#[derive(Debug, Serialize)]
pub struct Seeded {
    pub events: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub seconds: f64,
    pub rows_per_s: f64,
}

/// Stores `events` rows of `project` over the `days` before `end`.
pub async fn seed(
    url: &str,
    project: Uuid,
    events: u64,
    days: i64,
    end: DateTime<Utc>,
    chunk: usize,
) -> Result<Seeded> {
    ensure!(events > 0 && days > 0, "--events and --days must be positive");
    let client = connect(url).await?;
    let start = end - ChronoDuration::days(days);
    // Daily partitions, as pulse-scheduler would have created them over the month.
    let mut day = start.date_naive();
    while day <= end.date_naive() {
        let name = format!("events_p{}", day.format("%Y%m%d"));
        let statement = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES FROM ('{day} 00:00:00+00') TO ('{} 00:00:00+00')",
            day.succ_opt().context("a day after")?
        );
        client
            .batch_execute(&statement)
            .await
            .with_context(|| statement.clone())?;
        day = day.succ_opt().context("a day after")?;
    }
    let span_ms = (end - start).num_milliseconds();
    let mut generator = EventGen::new(0x5EED_2026);
    let began = Instant::now();
    let mut stored = 0u64;
    while stored < events {
        let n = (events - stored).min(chunk as u64);
        let rows: Vec<Row> = (stored..stored + n)
            .map(|i| {
                let mut event = generator.event();
                // Evenly spread, in time order, as they would have arrived.
                event.timestamp =
                    start + ChronoDuration::milliseconds((i as i128 * span_ms as i128 / events as i128) as i64);
                let window = event.timestamp.timestamp() / 1_800;
                event.session_id = format!("sess_{}_{window}", event.user_id);
                Row {
                    id: Uuid::now_v7(),
                    received_at: event.timestamp,
                    event,
                    metadata: serde_json::json!({}),
                }
            })
            .collect();
        client.batch_execute("BEGIN").await?;
        copy_rows(&client, project, &rows).await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let times: Vec<DateTime<Utc>> = rows.iter().map(|row| row.event.timestamp).collect();
        client
            .execute(
                "INSERT INTO event_ids (id, project_id, \"timestamp\") SELECT id, $1, t FROM unnest($2::uuid[], $3::timestamptz[]) AS u (id, t)",
                &[&project, &ids, &times],
            )
            .await
            .context("event_ids")?;
        client.batch_execute("COMMIT").await?;
        stored += n;
        eprintln!(
            "pulse-bench: seeded {stored} of {events} ({:.0} rows/s)",
            report::rate(stored, began.elapsed())
        );
    }
    client.batch_execute("ANALYZE events").await?;
    let elapsed = began.elapsed();
    Ok(Seeded {
        events,
        start,
        end,
        seconds: elapsed.as_secs_f64(),
        rows_per_s: report::rate(events, elapsed),
    })
}

/// One timed query.
#[derive(Debug, Serialize)]
pub struct QueryTiming {
    pub name: String,
    pub path: String,
    pub rounds: u64,
    /// Bytes of the last answer.
    pub answer_bytes: usize,
    pub latency_ms: Percentiles,
}

/// The queries of issue 10's benchmark, over the month that ends at `end`.
pub fn named_queries(end: DateTime<Utc>) -> Vec<(&'static str, String)> {
    let at = |time: DateTime<Utc>| time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (month, week, day) = (
        at(end - ChronoDuration::days(30)),
        at(end - ChronoDuration::days(7)),
        at(end - ChronoDuration::days(1)),
    );
    let end = at(end);
    vec![
        (
            "aggregated 1h buckets, 30 days",
            format!("/v1/events/aggregated?interval=1h&start={month}&end={end}"),
        ),
        (
            "aggregated 1d buckets, 30 days, status=failed",
            format!("/v1/events/aggregated?interval=1d&start={month}&end={end}&status=failed"),
        ),
        (
            "analytics by event_type, 7 days (count, unique_users, p95_duration)",
            format!(
                "/v1/events/analytics?group_by=event_type&metrics=count,unique_users,p95_duration&start={week}&end={end}"
            ),
        ),
        (
            "analytics by data.browser (raw events), 1 day",
            format!("/v1/events/analytics?group_by=data.browser&metrics=count,unique_users&start={day}&end={end}"),
        ),
        ("overview, 7 days", format!("/v1/analytics/overview?start={week}&end={end}")),
        (
            "GET /v1/events first page, event_type=purchase, last 24 h",
            format!("/v1/events?event_type=purchase&start={day}&end={end}"),
        ),
    ]
}

/// Times each query `rounds` times, one request at a time.
pub async fn time_queries(base: &str, api_key: &str, end: DateTime<Utc>, rounds: u64) -> Result<Vec<QueryTiming>> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let mut timings = Vec::new();
    for (name, path) in named_queries(end) {
        let mut histogram = micros_histogram();
        let mut answer_bytes = 0;
        for round in 0..rounds + 2 {
            let began = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .bearer_auth(api_key)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = response.status();
            let body = response.bytes().await?;
            let elapsed = began.elapsed();
            ensure!(
                status.is_success(),
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
            answer_bytes = body.len();
            if round >= 2 {
                report::record(&mut histogram, elapsed);
            }
        }
        let latency_ms = Percentiles::of(&histogram);
        eprintln!(
            "pulse-bench: {name}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            latency_ms.p50_ms, latency_ms.p95_ms, latency_ms.p99_ms
        );
        timings.push(QueryTiming {
            name: name.to_owned(),
            path,
            rounds,
            answer_bytes,
            latency_ms,
        });
    }
    Ok(timings)
}

/// One export read to its end.
#[derive(Debug, Serialize)]
pub struct ExportTiming {
    pub path: String,
    /// Data rows (lines after the header).
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub megabytes_per_s: f64,
}

/// Reads `GET /v1/export/events?format=csv` over the `days` before `end` to its end.
pub async fn time_export(base: &str, api_key: &str, end: DateTime<Utc>, days: i64) -> Result<ExportTiming> {
    let at = |time: DateTime<Utc>| time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let path = format!(
        "/v1/export/events?format=csv&start={}&end={}",
        at(end - ChronoDuration::days(days)),
        at(end)
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1_800)).build()?;
    let began = Instant::now();
    let mut response = client
        .get(format!("{base}{path}"))
        .bearer_auth(api_key)
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    ensure!(response.status().is_success(), "GET {path}: {}", response.status());
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
    }
    let elapsed = began.elapsed();
    // Quoted fields may hold newlines; the generator's rows have none, so lines = rows + header.
    let rows = lines.saturating_sub(1);
    Ok(ExportTiming {
        path,
        rows,
        bytes,
        seconds: elapsed.as_secs_f64(),
        rows_per_s: report::rate(rows, elapsed),
        megabytes_per_s: bytes as f64 / 1e6 / elapsed.as_secs_f64(),
    })
}
