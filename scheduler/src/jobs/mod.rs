//! The scheduler's jobs, one file each, the registry of the cron jobs ([`registry`]) and what
//! every job shares: [`Settings`], the run counter
//! `pulse_scheduler_job_runs_total{job, outcome}` and the last runs of the interval loops.
//!
//! Cron jobs (run by [`crate::cron`] through apalis, once per tick across replicas through the
//! `job_runs` claim of [`crate::runs`]):
//! - [`partitions`]: daily `events` and `metric_points` partitions kept created
//!   `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` ahead and the default partitions drained into them,
//!   on `PULSE_PARTITIONS_CRON` (every hour) and at start.
//! - [`retention`]: what is past its retention removed (whole daily partitions nobody keeps
//!   dropped, the rest in bounded batches), every `PULSE_RETENTION_INTERVAL_SECS` (hourly, at
//!   :15) or on `PULSE_RETENTION_CRON` when set.
//! - [`digest`]: yesterday's digest mailed to every subscribed member, daily at
//!   `PULSE_DIGEST_HOUR_UTC`:00 and at start (once per member and day by the email outbox's key).
//!
//! Interval loops (in every replica, each guarding itself):
//! - [`purge`]: deleted projects and organizations removed in bounded batches, every
//!   `PULSE_PURGE_INTERVAL_SECS` when idle, back to back while there is work; each step claims
//!   its project with `FOR UPDATE SKIP LOCKED`;
//! - [`rollups`]: the workers' rollup deltas folded into one row per minute and into the
//!   hourly rollups, every `PULSE_ROLLUP_COMPACT_INTERVAL_SECS`; rounds take turns through an
//!   advisory lock;
//! - the uptime checks (`crate::monitors`, registered by `main`): due monitors claimed by
//!   `next_check_at` with `FOR UPDATE SKIP LOCKED` every `PULSE_MONITOR_POLL_MS`.
//!
//! Why those stay loops: they are not "a run per due time" but a queue drained as it fills
//! (every 5 s, back to back through a backlog). A tick claim per 5 s would write 17,000
//! `job_runs` rows a day per job for rounds that mostly find nothing, and back-to-back rounds
//! have no due time to claim. Their own guards already make a concurrent second replica
//! harmless (it finds the work claimed or the lock taken). They report the same way: counted
//! in `pulse_scheduler_job_runs_total{job, outcome}` (no `skipped`: a replica that finds the
//! lock taken simply did no round) and shown in `GET /jobs` with this replica's last round.
//!
//! Adding a cron job: write `async fn run(pool: &DbPool, settings: &Settings) ->
//! anyhow::Result<String>` in a file of its own (the `String` is a one-line summary, logged and
//! kept in `job_runs.summary`) and add one [`Job`] entry to [`registry`].

pub mod digest;
pub mod partitions;
pub mod purge;
pub mod retention;
pub mod rollups;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{register_int_counter_vec, IntCounterVec};
use pulse_shared::config::{
    DatabaseConfig, DigestConfig, EmailConfig, MonitorConfig, RetentionConfig, SchedulerConfig, RETENTION_OFFSET,
};
use pulse_shared::db::DbPool;
use pulse_shared::metrics::registered;

use crate::cron::Schedule;

/// Everything a job may read: the configuration of the scheduler process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseConfig,
    pub scheduler: SchedulerConfig,
    pub retention: RetentionConfig,
    pub monitor: MonitorConfig,
    pub digest: DigestConfig,
    pub email: EmailConfig,
}

/// What a job's function returns: a one-line summary of what it did, or why it failed.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// A job's function, e.g. `|pool, settings| Box::pin(partitions::run(pool, settings))`.
pub type JobFn = for<'a> fn(&'a DbPool, &'a Settings) -> JobFuture<'a>;

/// A cron job of the registry.
#[derive(Clone)]
pub struct Job {
    /// Its name in `job_runs`, the metrics, `GET /jobs` and `pulse-scheduler run-once NAME`.
    pub name: &'static str,
    /// When it is due.
    pub schedule: Schedule,
    /// Also run once when a replica starts (claimed like any tick: at most once per second).
    pub at_start: bool,
    pub run: JobFn,
}

/// Every cron job, in the order `GET /jobs` lists them.
pub fn registry(settings: &Settings) -> Vec<Job> {
    vec![
        Job {
            name: "partitions",
            schedule: Schedule::cron(settings.scheduler.partitions_cron.clone()),
            at_start: true,
            run: |pool, settings| Box::pin(partitions::run(pool, settings)),
        },
        Job {
            name: "retention",
            schedule: match &settings.retention.cron {
                Some(cron) => Schedule::cron(cron.clone()),
                None => Schedule::every(settings.retention.interval, RETENTION_OFFSET),
            },
            at_start: false,
            run: |pool, settings| Box::pin(retention::run(pool, &settings.retention)),
        },
        Job {
            name: "digest",
            schedule: Schedule::cron(digest::schedule(settings.digest.hour_utc)),
            at_start: true,
            run: |pool, settings| Box::pin(digest::run(pool, settings)),
        },
    ]
}

/// Job runs by job and outcome: `ok`, `error`, and `skipped` where another replica had claimed
/// the tick.
pub static JOB_RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_scheduler_job_runs_total",
        "Scheduled job runs by job and outcome (ok, error, skipped: another replica claimed the tick)",
        &["job", "outcome"]
    ))
});

/// The last round of an interval loop in this replica, for `GET /jobs`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoopRun {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub outcome: &'static str,
    pub error: Option<String>,
    pub summary: Option<String>,
}

/// An interval loop as `GET /jobs` shows it.
#[derive(Debug, Clone)]
pub struct LoopJob {
    pub name: &'static str,
    pub interval: Duration,
}

/// The interval loops of this scheduler (spawned by `main`).
pub fn loops(settings: &Settings) -> Vec<LoopJob> {
    vec![
        LoopJob {
            name: "purge",
            interval: settings.scheduler.purge_interval,
        },
        LoopJob {
            name: "rollup_compaction",
            interval: settings.scheduler.rollup_compact_interval,
        },
    ]
}

static LOOP_RUNS: LazyLock<Mutex<BTreeMap<&'static str, LoopRun>>> = LazyLock::new(Mutex::default);

/// Records a loop round that started at `started_at`: `Ok(summary)` or `Err(error)`.
pub fn record_loop(job: &'static str, started_at: DateTime<Utc>, result: Result<String, String>) {
    let finished_at = Utc::now();
    let (outcome, error, summary) = match result {
        Ok(summary) => ("ok", None, Some(summary)),
        Err(error) => ("error", Some(error), None),
    };
    let run = LoopRun {
        started_at,
        finished_at,
        duration_ms: (finished_at - started_at).num_milliseconds(),
        outcome,
        error,
        summary,
    };
    if let Ok(mut runs) = LOOP_RUNS.lock() {
        runs.insert(job, run);
    }
}

/// This replica's last round of loop `job`.
pub fn last_loop_run(job: &str) -> Option<LoopRun> {
    LOOP_RUNS.lock().ok()?.get(job).cloned()
}
