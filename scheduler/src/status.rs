//! `GET /jobs`, served beside `/metrics` on `PULSE_SCHEDULER_ADDR`: per job its schedule, its
//! next run and its last run. For cron jobs the last run is the latest `job_runs` row, whichever
//! replica ran it; the interval loops run in every replica, so theirs is this replica's last
//! round (`"scope": "replica"`).
//!
//! ```json
//! {"jobs": [{"job": "partitions", "kind": "cron", "scope": "cluster", "schedule": "0 0 * * * *",
//!            "next_run": "2026-12-02T03:00:00Z",
//!            "last_run": {"tick_at": "…", "replica": "…", "started_at": "…", "finished_at": "…",
//!                         "duration_ms": 41, "outcome": "ok", "error": null,
//!                         "summary": "…", "attempts": 1}}, …]}
//! ```

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::{Duration as ChronoDuration, Utc};
use pulse_shared::db::DbPool;
use serde_json::{json, Value};

use crate::jobs::{self, Job, LoopJob};
use crate::runs;

/// What the handler reads.
pub struct Status {
    pub pool: DbPool,
    pub jobs: Vec<Job>,
    pub loops: Vec<LoopJob>,
}

/// Mounts `GET /jobs` (for [`pulse_shared::ops::serve_with`]).
pub fn configure(status: Arc<Status>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(status.clone()))
            .route("/jobs", web::get().to(list));
    }
}

async fn list(status: web::Data<Status>) -> HttpResponse {
    let names: Vec<&str> = status.jobs.iter().map(|job| job.name).collect();
    let latest = match runs::latest(&status.pool, &names).await {
        Ok(latest) => latest,
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "Reading job runs failed");
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .json(json!({"error": {"code": "DATABASE_UNAVAILABLE", "message": "job runs cannot be read now"}}));
        }
    };
    let now = Utc::now();
    let mut listed: Vec<Value> = status
        .jobs
        .iter()
        .map(|job| {
            let last = latest.iter().find(|run| run.job == job.name);
            json!({
                "job": job.name,
                "kind": "cron",
                "scope": "cluster",
                "schedule": job.schedule.describe(),
                "next_run": job.schedule.next_after(now),
                "last_run": last,
            })
        })
        .collect();
    listed.extend(status.loops.iter().map(|job| {
        let last = jobs::last_loop_run(job.name);
        let next = last.as_ref().and_then(|run| {
            ChronoDuration::from_std(job.interval)
                .ok()
                .map(|gap| run.finished_at + gap)
        });
        json!({
            "job": job.name,
            "kind": "interval",
            "scope": "replica",
            "schedule": every(job.interval),
            "next_run": next,
            "last_run": last,
        })
    }));
    HttpResponse::Ok().json(json!({ "jobs": listed }))
}

/// A loop's interval as `GET /jobs` shows it: `every 5 s`, or `every 250 ms` below a second.
fn every(interval: std::time::Duration) -> String {
    if interval.as_millis() % 1000 == 0 {
        format!("every {} s", interval.as_secs())
    } else {
        format!("every {} ms", interval.as_millis())
    }
}
