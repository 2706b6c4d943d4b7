//! Start-up steps that wait for their dependency instead of failing: migrations (PostgreSQL
//! may still be starting) and topic creation (so may the broker). Each is retried with
//! back-off until it succeeds or shutdown is requested.

use std::future::Future;
use std::time::Duration;

use pulse_shared::config::KafkaConfig;
use pulse_shared::db;
use pulse_shared::kafka::{admin, Topics};
use tokio_util::sync::CancellationToken;

use crate::backoff::{self, Backoff};
use crate::error::{Error, Result};

/// Longest wait between two start-up attempts.
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// Bound of one topic-creation attempt (an unreachable broker otherwise hangs the admin call).
const TOPICS_ATTEMPT: Duration = Duration::from_secs(15);
/// Daily `events` partitions the migration makes sure exist ahead of today.
pub const PARTITIONS_AHEAD_DAYS: i32 = 7;

/// Runs `attempt` until it succeeds; `Ok(None)` if shutdown came first.
async fn retry<T, F, Fut>(what: &'static str, stop: &CancellationToken, mut attempt: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(STARTUP_RETRY_MAX);
    loop {
        match attempt().await {
            Ok(value) => return Ok(Some(value)),
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(step = what, attempt = backoff.failures(), retry_in_ms = delay.as_millis() as u64, %error, "Start-up step failed; retrying");
                if !backoff::sleep_unless_stopped(delay, stop).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Applies pending migrations; `false` if shutdown came first.
pub async fn migrate(url: &str, stop: &CancellationToken) -> Result<bool> {
    let applied = retry("migrate", stop, || async {
        db::migrate(url, PARTITIONS_AHEAD_DAYS).await.map_err(Error::from)
    })
    .await?;
    if let Some(versions) = &applied {
        tracing::info!(applied = ?versions, "Database migrated");
    }
    Ok(applied.is_some())
}

/// Creates the events and dead-letter topics if missing; `false` if shutdown came first.
pub async fn ensure_topics(config: &KafkaConfig, topics: &Topics, stop: &CancellationToken) -> Result<bool> {
    let done = retry("ensure_topics", stop, || async {
        match tokio::time::timeout(TOPICS_ATTEMPT, admin::ensure_topics(config, &topics.all())).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::KafkaTimeout(TOPICS_ATTEMPT)),
        }
    })
    .await?;
    if done.is_some() {
        tracing::info!(events = %topics.events, dlq = %topics.events_dlq, "Topics ready");
    }
    Ok(done.is_some())
}
