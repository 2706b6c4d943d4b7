//! `pulse-bench metrics`: named-metric ingest rate and `latest` latency.
//!
//! 1. `points` points (one metric name, `series` label sets, values and timestamps from a fixed
//!    seed) sent as `POST /v1/metrics/batch` bodies of `batch_size` by `concurrency`
//!    connections: the rate at which the api answered 202 (Kafka acknowledged).
//! 2. With `--database-url` and `--project-id`: the time until every accepted point is in
//!    `metric_points` (the metrics worker's end-to-end rate).
//! 3. `latest_rounds` sequential `GET /v1/metrics/{name}/latest` (after two unmeasured
//!    warm-ups), and as many with `group_by=labels.host`: latency percentiles.
//!
//! Prints a human summary on stderr and one JSON line on stdout. The `latest` requests are back
//! to back: start the api with a read limit above their rate
//! (`PULSE_READ_RATE_LIMIT_PER_SEC=100000`), or they are answered 429.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::persisted::connect;
use crate::report::{self, micros_histogram, Percentiles};

/// The metric every point is recorded under.
pub const NAME: &str = "bench.latency";

/// What one run measures.
#[derive(Debug, Serialize)]
pub struct MetricsReport {
    pub points: u64,
    pub batch_size: usize,
    pub concurrency: usize,
    pub series: usize,
    pub accepted: u64,
    pub ingest_seconds: f64,
    /// Points per second answered 202 (Kafka acknowledged).
    pub accepted_per_s: f64,
    pub request: Percentiles,
    /// Seconds from the first request until every accepted point was stored (with a database).
    pub stored_seconds: Option<f64>,
    pub stored_per_s: Option<f64>,
    pub latest: Percentiles,
    pub latest_group_by: Percentiles,
}

/// Settings of a run.
pub struct Plan {
    pub url: String,
    pub api_key: String,
    pub points: u64,
    pub batch_size: usize,
    pub concurrency: usize,
    pub series: usize,
    pub latest_rounds: u64,
    pub storage: Option<(String, Uuid)>,
}

fn bodies(points: u64, batch_size: usize, series: usize) -> Vec<String> {
    let mut seed: u64 = 0x5eed_2026;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let now = Utc::now();
    let mut out = Vec::new();
    let mut made = 0u64;
    while made < points {
        let n = (points - made).min(batch_size as u64);
        let batch: Vec<_> = (0..n)
            .map(|_| {
                let at = now - ChronoDuration::milliseconds((next() % 3_600_000) as i64);
                json!({
                    "name": NAME,
                    "value": (next() % 100_000) as f64 / 100.0,
                    "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "labels": {"host": format!("host-{}", next() % series as u64), "region": "eu"},
                })
            })
            .collect();
        out.push(json!({"metrics": batch}).to_string());
        made += n;
    }
    out
}

async fn time_gets(client: &reqwest::Client, url: &str, key: &str, rounds: u64) -> Result<Percentiles> {
    let mut histogram = micros_histogram();
    for round in 0..rounds + 2 {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(key).send().await?;
        ensure!(
            response.status().is_success(),
            "GET {url}: {} (a 429: raise the api's PULSE_READ_RATE_LIMIT_PER_SEC for the benchmark)",
            response.status()
        );
        response.bytes().await?;
        if round >= 2 {
            report::record(&mut histogram, started.elapsed());
        }
    }
    Ok(Percentiles::of(&histogram))
}

/// Runs the plan.
pub async fn run(plan: Plan) -> Result<MetricsReport> {
    ensure!(
        plan.points > 0 && plan.batch_size > 0 && plan.concurrency > 0 && plan.series > 0,
        "all counts must be positive"
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let bodies = Arc::new(bodies(plan.points, plan.batch_size, plan.series));
    let storage = match &plan.storage {
        Some((url, project)) => {
            let db = connect(url).await?;
            let before: i64 = db
                .query_one("SELECT count(*) FROM metric_points WHERE project_id = $1", &[project])
                .await?
                .get(0);
            Some((db, *project, before))
        }
        None => None,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..plan.concurrency {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        let url = format!("{}/v1/metrics/batch", plan.url);
        let key = plan.api_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = micros_histogram();
            let mut accepted = 0u64;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else { break };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let answer: serde_json::Value = response.json().await?;
                report::record(&mut histogram, sent.elapsed());
                ensure!(status.as_u16() == 202, "POST /v1/metrics/batch: {status} {answer}");
                accepted += answer["accepted"].as_u64().unwrap_or(0);
            }
            anyhow::Ok((accepted, histogram))
        }));
    }
    let mut request = micros_histogram();
    let mut accepted = 0;
    for task in tasks {
        let (count, histogram) = task.await.context("sender task")??;
        accepted += count;
        request.add(&histogram).context("histogram")?;
    }
    let ingest = started.elapsed();
    eprintln!(
        "pulse-bench: {accepted} points accepted in {:.2} s ({:.0}/s)",
        ingest.as_secs_f64(),
        report::rate(accepted, ingest)
    );

    let mut stored_seconds = None;
    if let Some((db, project, before)) = &storage {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let count: i64 = db
                .query_one("SELECT count(*) FROM metric_points WHERE project_id = $1", &[project])
                .await?
                .get(0);
            if (count - before) as u64 >= accepted {
                stored_seconds = Some(started.elapsed().as_secs_f64());
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "only {} of {accepted} points stored after 600 s",
                count - before
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let latest_url = format!("{}/v1/metrics/{NAME}/latest", plan.url);
    let latest = time_gets(&client, &latest_url, &plan.api_key, plan.latest_rounds).await?;
    let grouped = time_gets(
        &client,
        &format!("{latest_url}?group_by=labels.host"),
        &plan.api_key,
        plan.latest_rounds,
    )
    .await?;
    Ok(MetricsReport {
        points: plan.points,
        batch_size: plan.batch_size,
        concurrency: plan.concurrency,
        series: plan.series,
        accepted,
        ingest_seconds: ingest.as_secs_f64(),
        accepted_per_s: report::rate(accepted, ingest),
        request: Percentiles::of(&request),
        stored_seconds,
        stored_per_s: stored_seconds.map(|s| accepted as f64 / s),
        latest,
        latest_group_by: grouped,
    })
}
