//! Running the registry's cron jobs: each job's schedule drives an apalis worker on an
//! `apalis_cron::CronScheduler` stream, and every tick it fires goes through [`Runner::tick`]:
//! claim the tick in `job_runs` (once across replicas, [`crate::runs`]), run the job, retry a
//! failed run `PULSE_JOB_RETRIES` times with back-off doubling from
//! `PULSE_JOB_RETRY_BACKOFF_MS` (each failure logged), record the outcome in the row and in
//! `pulse_scheduler_job_runs_total{job, outcome}`.
//!
//! The stream computes ticks from the wall clock, whole seconds in UTC, so replicas agree on
//! them. A replica that could not poll in time (a stalled process) gets an out-of-range error
//! from the stream, which ends the apalis worker: the loop in [`spawn`] starts it again and the
//! missed tick is not run by this replica (another one may have).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::{Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, Utc};
use pulse_shared::db::DbPool;
use tokio_util::sync::CancellationToken;

use crate::jobs::{Job, Settings, JOB_RUNS};
use crate::runs::{self, Finished};

/// When a job is due: a cron expression (seconds first, UTC) or a fixed interval aligned to the
/// epoch, so every replica computes the same ticks.
#[derive(Debug, Clone)]
pub struct Schedule {
    timing: Timing,
    /// The last tick handed out, shared by the clones of one job in a replica: a tick is never
    /// handed out twice (the at-start run, a timer waking a hair early, a restarted stream).
    last: Arc<Mutex<Option<i64>>>,
}

#[derive(Debug, Clone)]
enum Timing {
    Cron(Arc<cron::Schedule>),
    /// Every `seconds`, at the instants `offset` seconds past a multiple of it since the epoch.
    Every {
        seconds: i64,
        offset: i64,
    },
}

impl Schedule {
    pub fn cron(schedule: cron::Schedule) -> Self {
        Self {
            timing: Timing::Cron(Arc::new(schedule)),
            last: Arc::default(),
        }
    }

    /// Every `interval` (whole seconds, at least one), `offset` past each multiple of it since
    /// the epoch (e.g. an hour at a quarter past).
    pub fn every(interval: Duration, offset: Duration) -> Self {
        let seconds = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset.as_secs()).unwrap_or(0).rem_euclid(seconds);
        Self {
            timing: Timing::Every { seconds, offset },
            last: Arc::default(),
        }
    }

    /// The schedule as configured: the cron expression, or `every N s`.
    pub fn describe(&self) -> String {
        match &self.timing {
            Timing::Cron(cron) => cron.source().to_owned(),
            Timing::Every { seconds, .. } => format!("every {seconds} s"),
        }
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.timing {
            Timing::Cron(cron) => cron.after(&after).next(),
            Timing::Every { seconds, offset } => {
                let now = after.timestamp();
                let next = now - (now - offset).rem_euclid(*seconds) + seconds;
                DateTime::from_timestamp(next, 0)
            }
        }
    }

    /// Marks `tick` as handed out; `false` if it (or a later one) already was.
    fn take(&self, tick: i64) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        if last.is_some_and(|last| last >= tick) {
            return false;
        }
        *last = Some(tick);
        true
    }
}

impl apalis_cron::Schedule<Utc> for Schedule {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let now = Utc::now();
        let last = self.last.lock().ok().and_then(|last| *last);
        let after = match last.and_then(|last| DateTime::from_timestamp(last, 0)) {
            Some(last) if last > now => last,
            _ => now,
        };
        let next = self.next_after(after)?;
        Some(Tick::new(u64::try_from(next.timestamp()).ok()?))
    }
}

/// How one tick went in this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Error(String),
    /// Another run had claimed the tick.
    Skipped,
}

/// What every tick needs.
pub struct Runner {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub stop: CancellationToken,
}

impl Runner {
    fn replica(&self) -> &str {
        &self.settings.scheduler.replica
    }

    /// The pause before retry `attempt` (1-based): the configured back-off, doubled each time.
    fn backoff(&self, attempt: u32) -> Duration {
        self.settings
            .scheduler
            .job_retry_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(10))
    }

    /// Waits `pause` unless the scheduler stops first (`false` then).
    async fn pause(&self, pause: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(pause) => true,
        }
    }

    /// Claims `tick_at` of `job`, runs it with its retries and records the outcome.
    pub async fn tick(&self, job: &Job, tick_at: DateTime<Utc>) -> Outcome {
        let outcome = self.claim_and_run(job, tick_at).await;
        let label = match &outcome {
            Outcome::Ok(summary) => {
                tracing::info!(job = job.name, %tick_at, summary, "Job run finished");
                "ok"
            }
            Outcome::Error(error) => {
                tracing::error!(job = job.name, %tick_at, error, "Job run failed");
                "error"
            }
            Outcome::Skipped => {
                tracing::debug!(job = job.name, %tick_at, "Job tick claimed by another run; skipped");
                "skipped"
            }
        };
        JOB_RUNS.with_label_values(&[job.name, label]).inc();
        outcome
    }

    async fn claim_and_run(&self, job: &Job, tick_at: DateTime<Utc>) -> Outcome {
        let retries = self.settings.scheduler.job_retries;
        let mut attempt = 0;
        let claimed = loop {
            match runs::claim(&self.pool, job.name, tick_at, self.replica()).await {
                Ok(claimed) => break claimed,
                Err(error) if attempt < retries => {
                    attempt += 1;
                    tracing::warn!(job = job.name, %tick_at, attempt, error = format!("{error:#}"), "Job claim failed; retrying");
                    if !self.pause(self.backoff(attempt)).await {
                        return Outcome::Error(format!("claim failed, then stopped: {error:#}"));
                    }
                }
                Err(error) => return Outcome::Error(format!("claim failed: {error:#}")),
            }
        };
        if !claimed {
            return Outcome::Skipped;
        }
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match (job.run)(&self.pool, &self.settings).await {
                Ok(summary) => break Outcome::Ok(summary),
                Err(error) if attempts <= retries => {
                    let pause = self.backoff(attempts);
                    tracing::warn!(
                        job = job.name,
                        %tick_at,
                        attempt = attempts,
                        retry_in_ms = pause.as_millis() as u64,
                        error = format!("{error:#}"),
                        "Job run failed; retrying"
                    );
                    if !self.pause(pause).await {
                        break Outcome::Error(format!("{error:#} (stopped before retrying)"));
                    }
                }
                Err(error) => break Outcome::Error(format!("{error:#}")),
            }
        };
        let finished = match &outcome {
            Outcome::Ok(summary) => Finished {
                outcome: "ok",
                error: None,
                summary: Some(summary),
                attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            },
            Outcome::Error(error) => Finished {
                outcome: "error",
                error: Some(error),
                summary: None,
                attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            },
            Outcome::Skipped => return outcome,
        };
        // The run happened; recording it is worth a few tries too.
        for attempt in 0..=retries {
            match runs::finish(&self.pool, job.name, tick_at, &finished).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(job = job.name, %tick_at, error = format!("{error:#}"), "Recording a job run failed");
                    if attempt == retries || !self.pause(self.backoff(attempt + 1)).await {
                        break;
                    }
                }
            }
        }
        outcome
    }

    /// `pulse-scheduler run-once`: the tick of this second.
    pub async fn run_now(&self, job: &Job) -> Outcome {
        let now = now_second();
        job.schedule.take(now.timestamp());
        self.tick(job, now).await
    }
}

/// Now, truncated to the second (the resolution of ticks).
pub fn now_second() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

#[derive(Clone)]
struct TickContext {
    runner: Arc<Runner>,
    job: Job,
}

async fn on_tick(tick: Tick<Utc>, context: Data<TickContext>) {
    let Some(tick_at) = i64::try_from(tick.get_timestamp())
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
    else {
        return;
    };
    if context.job.schedule.take(tick_at.timestamp()) {
        context.runner.tick(&context.job, tick_at).await;
    }
}

/// Runs `job` on its schedule (and once now if it runs at start) until the runner stops.
pub fn spawn(runner: Arc<Runner>, job: Job) -> tokio::task::JoinHandle<()> {
    for outcome in ["ok", "error", "skipped"] {
        JOB_RUNS.with_label_values(&[job.name, outcome]);
    }
    tokio::spawn(async move {
        tracing::info!(job = job.name, schedule = job.schedule.describe(), "Job scheduled");
        if job.at_start && !runner.stop.is_cancelled() {
            runner.run_now(&job).await;
        }
        while !runner.stop.is_cancelled() {
            let stop = runner.stop.clone();
            let worker = WorkerBuilder::new(format!("pulse-scheduler-{}", job.name))
                .backend(CronScheduler::new(job.schedule.clone()))
                .data(TickContext {
                    runner: runner.clone(),
                    job: job.clone(),
                })
                .build(on_tick);
            let result = worker
                .run_until(async move {
                    stop.cancelled().await;
                    Ok::<(), std::io::Error>(())
                })
                .await;
            match result {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(job = job.name, %error, "Cron stream ended; starting it again");
                    if !runner.pause(Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_ticks_at_its_offset_past_each_multiple() {
        let hourly = Schedule::every(Duration::from_secs(3600), Duration::from_secs(900));
        let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc);
        assert_eq!(
            hourly.next_after(at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-02T10:15:00Z"))
        );
        assert_eq!(
            hourly.next_after(at("2026-12-02T10:15:00Z")),
            Some(at("2026-12-02T11:15:00Z"))
        );
        assert_eq!(
            hourly.next_after(at("2026-12-02T10:59:59Z")),
            Some(at("2026-12-02T11:15:00Z"))
        );
        let every_second = Schedule::every(Duration::from_secs(1), Duration::from_secs(900));
        assert_eq!(
            every_second.next_after(at("2026-12-02T10:00:00Z")),
            Some(at("2026-12-02T10:00:01Z"))
        );
        assert_eq!(hourly.describe(), "every 3600 s");
    }
}
