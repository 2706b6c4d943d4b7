//! The load generator: `concurrency` tasks, each with its own keep-alive HTTP/1.1 connection
//! (`http.rs`), send pre-built requests back to back (closed loop) or on a fixed schedule
//! (`--rate`, open loop), until a duration or an event budget runs out.
//!
//! Latency is measured per request from the moment it was due to the end of the response body:
//! in a closed loop that is when it was sent; under `--rate` it is its scheduled time, so a
//! stalled server is charged for the requests it kept waiting (no coordinated omission).
//! Each task keeps its own histogram and error counts; they are merged once at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::http::{self, Connection, Failure, Target};
use crate::payload::Body;
use crate::persisted::Marker;
use crate::report::{self, LoadReport, Percentiles};

/// What to send and for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub base_url: String,
    pub api_key: String,
    pub concurrency: usize,
    pub batch_size: usize,
    pub duration: Option<Duration>,
    pub events: Option<u64>,
    /// Target events per second (open loop); `None` sends as fast as answers come back.
    pub rate: Option<f64>,
    pub request_timeout: Duration,
    /// Every n-th request carries a marker event whose storage is timed.
    pub marker_every: u64,
}

impl LoadPlan {
    fn path(&self) -> &'static str {
        if self.batch_size == 1 {
            "/v1/events"
        } else {
            "/v1/events/batch"
        }
    }

    /// Requests the event budget allows, if there is one.
    fn max_requests(&self) -> Option<u64> {
        self.events.map(|events| events.div_ceil(self.batch_size as u64))
    }
}

/// What the load phase hands to the storage wait.
pub struct LoadOutcome {
    pub report: LoadReport,
    /// Offset (from the run's start) of the first accepted answer.
    pub first_accept: Option<Duration>,
    /// Offset at which the last request finished.
    pub finished_at: Duration,
}

/// Counters all tasks share.
struct Shared {
    next_request: AtomicU64,
    accepted: AtomicU64,
    /// Nanoseconds from the start to the first accepted answer (`u64::MAX`: none yet).
    first_accept_ns: AtomicU64,
    /// The first transport error was printed.
    io_error_shown: AtomicBool,
}

/// What each task hands back.
struct TaskResult {
    latency: Histogram<u64>,
    requests: u64,
    errors: BTreeMap<String, u64>,
}

/// The answer of `POST /v1/events/batch`; only the accepted count matters here.
#[derive(Deserialize)]
struct BatchAnswer {
    accepted: Option<u64>,
}

/// Runs the plan. `markers`, when given, receives the id and acceptance time of each marker.
pub async fn run(
    plan: &LoadPlan,
    bodies: Arc<Vec<Body>>,
    start: Instant,
    markers: Option<UnboundedSender<Marker>>,
) -> Result<LoadOutcome> {
    anyhow::ensure!(!bodies.is_empty(), "no request bodies");
    let target = Target::parse(&plan.base_url)?;
    let auth = format!("Bearer {}", plan.api_key);
    anyhow::ensure!(!auth.contains(['\r', '\n']), "the API key cannot contain line breaks");
    let prebuilt: Arc<Vec<Bytes>> = Arc::new(
        bodies
            .iter()
            .map(|body| http::post_request(&target, plan.path(), &auth, &body.bytes))
            .collect(),
    );
    let shared = Arc::new(Shared {
        next_request: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        first_accept_ns: AtomicU64::new(u64::MAX),
        io_error_shown: AtomicBool::new(false),
    });
    let url = format!("{}{}", plan.base_url.trim_end_matches('/'), plan.path());
    let deadline = plan.duration.map(|duration| start + duration);
    let interval = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.batch_size as f64 / rate.max(1e-3)));

    let (stop_sampler, stop) = oneshot::channel();
    let sampler = tokio::spawn(per_second(shared.clone(), stop));
    let mut tasks = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        let task = Task {
            connection: Connection::new(&target),
            target: target.clone(),
            path: plan.path(),
            auth: auth.clone(),
            request_timeout: plan.request_timeout,
            requests: prebuilt.clone(),
            bodies: bodies.clone(),
            shared: shared.clone(),
            markers: markers.clone(),
            marker_every: plan.marker_every.max(1),
            max_requests: plan.max_requests(),
            deadline,
            interval,
            start,
        };
        tasks.push(tokio::spawn(task.run()));
    }
    drop(markers);

    let mut latency = report::micros_histogram();
    let mut requests = 0;
    let mut errors = BTreeMap::new();
    for task in tasks {
        let result = task.await.context("a load task panicked")?;
        latency.add(&result.latency).context("merging histograms")?;
        requests += result.requests;
        for (status, count) in result.errors {
            *errors.entry(status).or_insert(0) += count;
        }
    }
    let finished_at = start.elapsed();
    let _ = stop_sampler.send(());
    let accepted_per_second = sampler.await.unwrap_or_default();
    let accepted = shared.accepted.load(Ordering::Relaxed);
    let first_ns = shared.first_accept_ns.load(Ordering::Relaxed);
    let first_accept = (first_ns != u64::MAX).then(|| Duration::from_nanos(first_ns));

    let report = LoadReport {
        url,
        concurrency: plan.concurrency,
        batch_size: plan.batch_size,
        target_rate_events_per_s: plan.rate,
        duration_s: finished_at.as_secs_f64(),
        requests,
        requests_per_s: report::rate(requests, finished_at),
        accepted_events: accepted,
        accepted_events_per_s: report::rate(accepted, finished_at),
        latency: Percentiles::of(&latency),
        errors,
        accepted_per_second,
        persisted: None,
    };
    Ok(LoadOutcome {
        report,
        first_accept,
        finished_at,
    })
}

/// Records the events accepted in each whole second of the run until told to stop.
async fn per_second(shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) -> Vec<u64> {
    let mut seconds = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut before = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = shared.accepted.load(Ordering::Relaxed);
                seconds.push(now - before);
                before = now;
            }
            _ = &mut stop => return seconds,
        }
    }
}

struct Task {
    connection: Connection,
    target: Target,
    path: &'static str,
    auth: String,
    request_timeout: Duration,
    /// The complete request of each body, pre-built.
    requests: Arc<Vec<Bytes>>,
    bodies: Arc<Vec<Body>>,
    shared: Arc<Shared>,
    markers: Option<UnboundedSender<Marker>>,
    marker_every: u64,
    max_requests: Option<u64>,
    deadline: Option<Instant>,
    interval: Option<Duration>,
    start: Instant,
}

impl Task {
    async fn run(mut self) -> TaskResult {
        let mut result = TaskResult {
            latency: report::micros_histogram(),
            requests: 0,
            errors: BTreeMap::new(),
        };
        loop {
            let seq = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
            if self.max_requests.is_some_and(|max| seq >= max) {
                break;
            }
            let due = match self.interval {
                Some(interval) => {
                    let due = self.start + interval.saturating_mul(u32::try_from(seq).unwrap_or(u32::MAX));
                    if self.deadline.is_some_and(|deadline| due >= deadline) {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    due
                }
                None => {
                    let now = Instant::now();
                    if self.deadline.is_some_and(|deadline| now >= deadline) {
                        break;
                    }
                    now
                }
            };
            let index = (seq % self.bodies.len() as u64) as usize;
            let body = &self.bodies[index];
            let marker = (self.markers.is_some() && seq % self.marker_every == 0).then(Uuid::now_v7);
            let marked;
            let request = match marker {
                Some(id) => {
                    marked = http::post_request(&self.target, self.path, &self.auth, &body.with_marker(id));
                    &marked
                }
                None => &self.requests[index],
            };
            result.requests += 1;
            let answer = match self.connection.send(request, self.request_timeout).await {
                Ok(answer) => answer,
                Err(failure) => {
                    let kind = match failure {
                        Failure::Timeout => "timeout",
                        Failure::Io(message) => {
                            if !self.shared.io_error_shown.swap(true, Ordering::Relaxed) {
                                eprintln!("pulse-bench: first transport error: {message}");
                            }
                            "io"
                        }
                    };
                    *result.errors.entry(kind.into()).or_insert(0) += 1;
                    // A refused connection fails at once; do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let answered = Instant::now();
            report::record(&mut result.latency, answered - due);
            if !(200..300).contains(&answer.status) {
                *result.errors.entry(answer.status.to_string()).or_insert(0) += 1;
                continue;
            }
            let accepted = if body.events == 1 {
                1
            } else {
                serde_json::from_slice::<BatchAnswer>(&answer.body)
                    .ok()
                    .and_then(|answer| answer.accepted)
                    .unwrap_or(body.events)
            };
            self.shared.accepted.fetch_add(accepted, Ordering::Relaxed);
            let offset = answered - self.start;
            let offset_ns = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX - 1);
            self.shared.first_accept_ns.fetch_min(offset_ns, Ordering::Relaxed);
            if let (Some(id), Some(markers)) = (marker, &self.markers) {
                let _ = markers.send(Marker {
                    id,
                    accepted_at: offset,
                });
            }
        }
        result
    }
}
