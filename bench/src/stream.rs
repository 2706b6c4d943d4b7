//! `pulse-bench stream`: live-stream clients for the benchmarks. N Server-Sent-Events
//! connections to `/v1/stream/sse` (each with the same filter), read until SIGTERM/SIGINT or
//! `--seconds`; every event's delay from acceptance (`received_at`, the api's clock, which is
//! this machine's) to its receipt here goes into one histogram. With `--idle` nothing is
//! measured but memory: the api's resident set (`/proc/PID/status`) before the connections,
//! with all of them open and idle, and the difference per connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::report::{micros_histogram, record, Percentiles};

/// What the clients saw.
#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub clients: usize,
    pub connected: usize,
    pub filter: String,
    pub seconds: f64,
    pub events_received: u64,
    pub events_per_s: f64,
    pub dropped_notices: u64,
    /// From the api's `received_at` to the client's receipt.
    pub delay: Percentiles,
}

/// Api memory with idle connections.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub clients: usize,
    pub connected: usize,
    pub api_rss_before_kb: u64,
    pub api_rss_connected_kb: u64,
    pub per_connection_kb: f64,
}

struct Shared {
    histogram: Mutex<hdrhistogram::Histogram<u64>>,
    received: std::sync::atomic::AtomicU64,
    dropped: std::sync::atomic::AtomicU64,
    connected: std::sync::atomic::AtomicUsize,
}

/// Opens the connections and reads them until a signal or `seconds`.
pub async fn run(url: &str, key: &str, clients: usize, filter: &str, seconds: f64) -> Result<StreamReport> {
    let shared = Arc::new(Shared {
        histogram: Mutex::new(micros_histogram()),
        received: 0.into(),
        dropped: 0.into(),
        connected: 0.into(),
    });
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let target = format!("{}/v1/stream/sse{}", url.trim_end_matches('/'), query(filter));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (http, target, key, shared) = (http.clone(), target.clone(), key.to_owned(), shared.clone());
        tasks.push(tokio::spawn(async move {
            read_one(&http, &target, &key, &shared, true).await
        }));
    }
    let started = Instant::now();
    wait_for_stop(seconds).await;
    let elapsed = started.elapsed();
    for task in &tasks {
        task.abort();
    }
    let received = shared.received.load(std::sync::atomic::Ordering::Relaxed);
    let histogram = shared.histogram.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    Ok(StreamReport {
        clients,
        connected: shared.connected.load(std::sync::atomic::Ordering::Relaxed),
        filter: filter.to_owned(),
        seconds: elapsed.as_secs_f64(),
        events_received: received,
        events_per_s: received as f64 / elapsed.as_secs_f64().max(1e-9),
        dropped_notices: shared.dropped.load(std::sync::atomic::Ordering::Relaxed),
        delay: Percentiles::of(&histogram),
    })
}

/// Opens `clients` idle connections and reports the api's memory per connection.
pub async fn idle(url: &str, key: &str, clients: usize, api_pid: u32, settle: Duration) -> Result<IdleReport> {
    let before = rss_kb(api_pid)?;
    let shared = Arc::new(Shared {
        histogram: Mutex::new(micros_histogram()),
        received: 0.into(),
        dropped: 0.into(),
        connected: 0.into(),
    });
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    // A filter no event matches: idle connections, heartbeats only.
    let target = format!(
        "{}/v1/stream/sse?event_type=pulse-bench-idle-{}",
        url.trim_end_matches('/'),
        uuid::Uuid::new_v4()
    );
    let mut tasks = Vec::with_capacity(clients);
    for index in 0..clients {
        let (http, target, key, shared) = (http.clone(), target.clone(), key.to_owned(), shared.clone());
        tasks.push(tokio::spawn(async move {
            read_one(&http, &target, &key, &shared, false).await
        }));
        if index % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.connected.load(std::sync::atomic::Ordering::Relaxed) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(settle).await;
    let connected = shared.connected.load(std::sync::atomic::Ordering::Relaxed);
    let after = rss_kb(api_pid)?;
    for task in &tasks {
        task.abort();
    }
    Ok(IdleReport {
        clients,
        connected,
        api_rss_before_kb: before,
        api_rss_connected_kb: after,
        per_connection_kb: after.saturating_sub(before) as f64 / connected.max(1) as f64,
    })
}

fn query(filter: &str) -> String {
    if filter.is_empty() {
        String::new()
    } else {
        format!("?{}", filter.trim_start_matches('?'))
    }
}

async fn wait_for_stop(seconds: f64) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// One connection: counts and times each event (when `measure`).
async fn read_one(http: &reqwest::Client, target: &str, key: &str, shared: &Shared, measure: bool) -> Result<()> {
    let response = http.get(target).bearer_auth(key).send().await.context("connecting")?;
    anyhow::ensure!(response.status().is_success(), "stream answered {}", response.status());
    shared.connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut delays: Vec<std::time::Duration> = Vec::new();
    while let Some(chunk) = body.next().await {
        buffer.extend_from_slice(&chunk?);
        // Frames end with a blank line; scan once per chunk, drain once per chunk.
        let mut start = 0;
        while let Some(end) = buffer[start..].windows(2).position(|pair| pair == b"\n\n") {
            let frame = &buffer[start..start + end + 2];
            start += end + 2;
            if frame.starts_with(b"event: dropped") {
                shared.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if !measure || !frame.starts_with(b"event: event") {
                continue;
            }
            shared.received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(received_at) = received_at(frame) {
                delays.push((Utc::now() - received_at).to_std().unwrap_or_default());
            }
        }
        buffer.drain(..start);
        // Recorded straight into the shared histogram (O(1) each): merging histograms walks
        // every bucket and made the clients themselves the bottleneck.
        if !delays.is_empty() {
            if let Ok(mut histogram) = shared.histogram.lock() {
                for delay in delays.drain(..) {
                    record(&mut histogram, delay);
                }
            }
        }
    }
    Ok(())
}

/// `"received_at":"…"` of one SSE frame, found without parsing the whole event.
fn received_at(frame: &[u8]) -> Option<DateTime<Utc>> {
    const KEY: &[u8] = b"\"received_at\":\"";
    let at = frame.windows(KEY.len()).position(|window| window == KEY)? + KEY.len();
    let rest = &frame[at..];
    let end = rest.iter().position(|byte| *byte == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}
