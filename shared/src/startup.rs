//! The start-up steps every binary runs before it serves, each waiting for its dependency
//! rather than failing at the first refusal: migrations (PostgreSQL may still be starting) and
//! topic creation (so may the broker). Both retry through [`crate::backoff::retry_startup`],
//! the one retry policy of Pulse (100 ms doubling to 5 s); the caller chooses whether to give
//! up after a while (the api: 60 s, so a misconfigured deployment fails visibly) or to wait
//! until shutdown (the worker and the scheduler).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff::{retry_startup, GaveUp, StartupPolicy};
use crate::config::{DatabaseConfig, KafkaConfig};
use crate::db;
use crate::kafka::{admin, Topics};

/// Bound of one migration attempt.
const MIGRATE_ATTEMPT: Duration = Duration::from_secs(120);
/// Bound of one topic-creation attempt (an unreachable broker otherwise hangs the admin call).
const TOPICS_ATTEMPT: Duration = Duration::from_secs(10);

/// Applies pending migrations and ensures the partitions ahead. `Ok(None)` if shutdown came
/// first, else the versions applied.
pub async fn migrate(
    database: &DatabaseConfig,
    stop: &CancellationToken,
    give_up_after: Option<Duration>,
) -> Result<Option<Vec<String>>, GaveUp> {
    let policy = StartupPolicy {
        attempt_timeout: MIGRATE_ATTEMPT,
        give_up_after,
    };
    let applied = retry_startup("PostgreSQL", stop, policy, || db::migrate(database)).await?;
    if let Some(versions) = &applied {
        tracing::info!(applied = ?versions, "Database migrated");
    }
    Ok(applied)
}

/// Creates every topic of `topics` that is missing. `Ok(false)` if shutdown came first.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &Topics,
    stop: &CancellationToken,
    give_up_after: Option<Duration>,
) -> Result<bool, GaveUp> {
    let policy = StartupPolicy {
        attempt_timeout: TOPICS_ATTEMPT,
        give_up_after,
    };
    let specs = topics.all();
    let names = topics.names();
    let done = retry_startup("Kafka", stop, policy, || admin::ensure_topics(kafka, &specs)).await?;
    if done.is_some() {
        tracing::info!(brokers = %kafka.brokers, topics = ?names, "Topics ready");
    }
    Ok(done.is_some())
}
