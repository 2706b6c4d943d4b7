//! Partition maintenance: every hour (and at start) make sure the daily `events` partitions
//! exist `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` ahead. The SQL function is idempotent and
//! serialized by an advisory lock, so several replicas running it at once is harmless.

use std::time::Duration;

use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;

use super::RUNS;

const INTERVAL: Duration = Duration::from_secs(3600);
const RETRY: Duration = Duration::from_secs(30);

/// Runs until `stop` is cancelled.
pub async fn run(pool: DbPool, days_ahead: i32, stop: CancellationToken) {
    loop {
        let wait = match db::ensure_event_partitions(&pool, days_ahead).await {
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
