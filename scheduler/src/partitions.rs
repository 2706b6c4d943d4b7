//! Partition maintenance: every hour (and at start) make sure the daily `events` partitions
//! exist `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` ahead. The SQL function is idempotent and
//! serialized by an advisory lock, so several replicas running it at once is harmless.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{register_int_counter_vec, IntCounterVec};
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(3600);
const RETRY: Duration = Duration::from_secs(30);

static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "pulse_scheduler_runs_total",
        "Scheduled job runs by job and outcome",
        &["job", "outcome"]
    )
    .expect("metric registers once")
});

/// Runs until `stop` is cancelled.
pub async fn run(pool: &DbPool, days_ahead: i32, stop: CancellationToken) {
    loop {
        let wait = match db::ensure_event_partitions(pool, days_ahead).await {
            Ok(created) => {
                RUNS.with_label_values(&["event_partitions", "ok"]).inc();
                tracing::info!(created, days_ahead, "Event partitions ensured");
                INTERVAL
            }
            Err(error) => {
                RUNS.with_label_values(&["event_partitions", "error"]).inc();
                tracing::warn!(%error, "Event partition maintenance failed; retrying");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
