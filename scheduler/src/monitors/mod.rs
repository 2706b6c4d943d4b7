//! The uptime-check loop: every `PULSE_MONITOR_POLL_MS` a replica claims due checks ([`claim`],
//! once across replicas), at most as many as its `PULSE_MONITOR_MAX_CONCURRENCY` semaphore has
//! free slots (and `PULSE_MONITOR_CLAIM_BATCH` per round), and runs them concurrently: each
//! loads its monitor, probes it (`pulse_shared::monitor::probe`, holding no database
//! connection), records the result in one transaction (`pulse_shared::monitor::record`) and
//! then announces a state change on the live stream (`pulse_shared::monitor::announce`).
//!
//! A round that filled every free slot is followed at once by the next (a backlog drains back to
//! back); otherwise the loop waits for the poll interval or a freed slot. On SIGTERM it claims
//! nothing more and waits for the checks in flight (each bounded by its timeout) to be recorded.
//!
//! Metrics: `pulse_monitor_checks_total{outcome}` (`ok`, an error class, or `deferred` for a
//! check held back by its target's open breaker), `pulse_monitor_check_lateness_seconds` (from
//! when a check was due to when it started) and `pulse_monitor_checks_in_flight`. Its last round
//! is in `GET /jobs` as the loop `monitors`.

pub mod claim;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prometheus::{
    register_histogram, register_int_counter_vec, register_int_gauge, Histogram, IntCounterVec, IntGauge,
};
use pulse_shared::config::KafkaConfig;
use pulse_shared::db::{self, DbPool};
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::metrics::registered;
use pulse_shared::monitor::record::{self, Context, MonitorRow};
use pulse_shared::monitor::{Announcer, Checker, MonitorError};
use pulse_shared::schema::monitors;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::jobs::record_loop;

/// The loop's name in `GET /jobs`.
pub const LOOP_NAME: &str = "monitors";
/// Pause after a claim that failed (database down).
const ERROR_BACKOFF: Duration = Duration::from_secs(2);
/// Longest wait at shutdown for the checks in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(70);
/// Pause between attempts to find the stored-events topic for announcements.
const ANNOUNCER_RETRY: Duration = Duration::from_secs(30);

pub static CHECKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_monitor_checks_total",
        "Uptime checks by outcome (ok, an error class, deferred: held back by an open breaker)",
        &["outcome"]
    ))
});

pub static LATENESS: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_monitor_check_lateness_seconds",
        "Seconds from when an uptime check was due to when it started",
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
    ))
});

pub static IN_FLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(register_int_gauge!(
        "pulse_monitor_checks_in_flight",
        "Uptime checks running in this replica"
    ))
});

/// Announcements of state changes, found lazily: the stored-events topic may not exist yet
/// when the scheduler starts (the api and workers create it), and checks must not wait for it.
pub struct Announcements {
    kafka: KafkaConfig,
    producer: AckProducer,
    state: Mutex<(Option<Announcer>, Option<tokio::time::Instant>)>,
}

impl Announcements {
    pub fn new(kafka: KafkaConfig, producer: AckProducer) -> Self {
        Self {
            kafka,
            producer,
            state: Mutex::new((None, None)),
        }
    }

    async fn announcer(&self) -> Option<Announcer> {
        let mut state = self.state.lock().await;
        if let Some(announcer) = &state.0 {
            return Some(announcer.clone());
        }
        if state.1.is_some_and(|next| tokio::time::Instant::now() < next) {
            return None;
        }
        match Announcer::for_installation(&self.kafka, self.producer.clone()).await {
            Ok(announcer) => {
                state.0 = Some(announcer.clone());
                Some(announcer)
            }
            Err(error) => {
                tracing::warn!(%error, "Stored-events topic not found; monitor state changes are not announced for now");
                state.1 = Some(tokio::time::Instant::now() + ANNOUNCER_RETRY);
                None
            }
        }
    }

    /// Flushes what is still queued (shutdown).
    pub async fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout).await {
            tracing::warn!(%error, "Kafka producer not flushed at shutdown");
        }
    }
}

/// Runs the loop until `stop`, then waits for the checks in flight.
pub async fn run(pool: DbPool, checker: Checker, announcements: Arc<Announcements>, stop: CancellationToken) {
    let config = checker.config().clone();
    let slots = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
    let tasks = TaskTracker::new();
    tracing::info!(
        max_concurrency = config.max_concurrency,
        poll_ms = config.poll_interval.as_millis() as u64,
        "Uptime-check loop started"
    );
    while !stop.is_cancelled() {
        let started_at = Utc::now();
        let free = slots
            .available_permits()
            .min(usize::try_from(config.claim_batch).unwrap_or(usize::MAX));
        let mut full = false;
        if free > 0 {
            match claim::claim(&pool, i64::try_from(free).unwrap_or(i64::MAX), config.breaker_open).await {
                Ok(round) => {
                    let claimed = round.checks.len() + round.deferred;
                    full = claimed >= free;
                    if round.deferred > 0 {
                        CHECKS
                            .with_label_values(&["deferred"])
                            .inc_by(u64::try_from(round.deferred).unwrap_or(0));
                    }
                    record_loop(
                        LOOP_NAME,
                        started_at,
                        Ok(format!(
                            "claimed {} checks, {} held back by open breakers",
                            round.checks.len(),
                            round.deferred
                        )),
                    );
                    for check in round.checks {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen: only this loop takes permits, and it counted them.
                            break;
                        };
                        let pool = pool.clone();
                        let checker = checker.clone();
                        let announcements = announcements.clone();
                        tasks.spawn(async move {
                            IN_FLIGHT.inc();
                            run_check(&pool, &checker, &announcements, check).await;
                            IN_FLIGHT.dec();
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Claiming due uptime checks failed; retrying");
                    record_loop(LOOP_NAME, started_at, Err(error.to_string()));
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(ERROR_BACKOFF) => {}
                    }
                    continue;
                }
            }
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(config.poll_interval) => {}
        }
    }
    tasks.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait()).await.is_err() {
        tracing::warn!(
            in_flight = tasks.len(),
            "Shutdown before every uptime check in flight was recorded"
        );
    }
    announcements.flush(Duration::from_secs(5)).await;
    tracing::info!("Uptime-check loop stopped");
}

/// One claimed check: load, probe, record, announce.
async fn run_check(pool: &DbPool, checker: &Checker, announcements: &Announcements, check: claim::Claimed) {
    let monitor = match load(pool, check.id).await {
        Ok(Some(monitor)) => monitor,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(monitor_id = %check.id, %error, "Claimed uptime check not run: its monitor could not be read");
            return;
        }
    };
    let outcome = checker.probe(&monitor.request()).await;
    let late = (outcome.checked_at - check.scheduled_at).num_milliseconds().max(0);
    LATENESS.observe(late as f64 / 1000.0);
    let label = outcome.error_class.map_or("ok", |class| class.as_str());
    CHECKS.with_label_values(&[label]).inc();
    let recorded = match db::connection(pool).await {
        Ok(mut conn) => {
            record::record(
                &mut conn,
                checker,
                check.id,
                &outcome,
                Context {
                    scheduled_at: Some(check.scheduled_at),
                    manual: false,
                },
            )
            .await
        }
        Err(error) => Err(MonitorError::from(error)),
    };
    match recorded {
        Ok(recorded) => {
            if let Some(change) = recorded.change {
                tracing::info!(
                    monitor_id = %change.monitor_id,
                    project_id = %change.project_id,
                    state = change.state.as_str(),
                    previous = change.previous.as_str(),
                    error_class = change.error_class.as_deref(),
                    "Monitor state changed"
                );
                if let Some(announcer) = announcements.announcer().await {
                    announcer.announce(&change).await;
                }
            }
        }
        // Deleted while it was checked.
        Err(MonitorError::NotFound(_)) => {}
        Err(error) => {
            tracing::warn!(monitor_id = %check.id, %error, "Uptime check not recorded");
        }
    }
}

async fn load(pool: &DbPool, id: uuid::Uuid) -> Result<Option<MonitorRow>, MonitorError> {
    let mut conn = db::connection(pool).await?;
    Ok(monitors::table
        .find(id)
        .select(MonitorRow::as_select())
        .first(&mut conn)
        .await
        .optional()?)
}
