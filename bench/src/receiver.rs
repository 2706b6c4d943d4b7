//! `pulse-bench webhook-receiver`: the benchmark's webhook receiver. An HTTP server that
//! answers every POST 200 and counts requests and events; each `event.created` event's delay
//! from acceptance (`received_at`, the api's clock, which is this machine's) to its receipt here
//! goes into one histogram. `GET /stats` answers the report as JSON, `POST /reset` starts over.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::report::{micros_histogram, record, Percentiles};

/// What the receiver saw since the last reset.
#[derive(Debug, Serialize)]
pub struct ReceiverReport {
    pub requests: u64,
    pub events: u64,
    /// From the first to the last request.
    pub seconds: f64,
    pub requests_per_s: f64,
    pub events_per_s: f64,
    /// From the api's `received_at` to the receipt here, per event.
    pub delay: Percentiles,
}

struct State {
    histogram: hdrhistogram::Histogram<u64>,
    requests: u64,
    events: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl State {
    fn new() -> Self {
        Self {
            histogram: micros_histogram(),
            requests: 0,
            events: 0,
            first: None,
            last: None,
        }
    }

    fn report(&self) -> ReceiverReport {
        let seconds = match (self.first, self.last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        let rate = |count: u64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        ReceiverReport {
            requests: self.requests,
            events: self.events,
            seconds,
            requests_per_s: rate(self.requests),
            events_per_s: rate(self.events),
            delay: Percentiles::of(&self.histogram),
        }
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

/// Serves until SIGTERM or SIGINT.
pub async fn run(addr: &str) -> Result<()> {
    let state = Arc::new(Mutex::new(State::new()));
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route("/stats", web::get().to(stats))
            .route("/reset", web::post().to(reset))
            .default_service(web::to(receive))
    })
    .workers(2)
    .bind(addr)
    .with_context(|| format!("binding {addr}"))?
    .run()
    .await
    .context("receiver")
}

async fn receive(_request: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let now = Utc::now();
    let stamps = received_ats(&body);
    let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = Instant::now();
    state.first.get_or_insert(at);
    state.last = Some(at);
    state.requests += 1;
    for received_at in stamps {
        state.events += 1;
        let delay = (now - received_at).to_std().unwrap_or_default();
        record(&mut state.histogram, delay);
    }
    HttpResponse::Ok().finish()
}

/// Every `"received_at":"…"` of a body, found by scanning rather than parsing it (the
/// receiver shares the machine with what it measures).
fn received_ats(body: &[u8]) -> Vec<DateTime<Utc>> {
    const KEY: &[u8] = b"\"received_at\":\"";
    let mut stamps = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.windows(KEY.len()).position(|window| window == KEY) {
        rest = &rest[start + KEY.len()..];
        let Some(end) = rest.iter().position(|byte| *byte == b'"') else {
            break;
        };
        if let Some(at) = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|text| text.parse().ok())
        {
            stamps.push(at);
        }
        rest = &rest[end..];
    }
    stamps
}

async fn stats(state: Shared) -> HttpResponse {
    let report = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).report();
    HttpResponse::Ok().json(report)
}

async fn reset(state: Shared) -> HttpResponse {
    *state.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = State::new();
    HttpResponse::NoContent().finish()
}
