//! The worker's one error type.
//!
//! Policy (the whole of Pulse's is in `shared/src/error.rs`): the persist loop never returns an
//! error for a database or dead-letter failure — those are retried in place with back-off and
//! only logged. What reaches [`Error`] is what the process cannot work around: start-up that
//! failed for good (bad configuration, migrations, the health server's port), a Kafka client
//! that could not be created, or a persist task that panicked. `main` prints it and exits 1.

use std::time::Duration;

/// Everything that can stop the worker, or fail one attempt inside it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Shared(#[from] pulse_shared::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database did not answer within {0:?}")]
    DatabaseTimeout(Duration),
    #[error("start-up: {0}")]
    Startup(#[from] pulse_shared::backoff::GaveUp),
    #[error("health server: {0}")]
    Io(#[from] std::io::Error),
    #[error("webhook client: {0}")]
    Setup(String),
    #[error("persist task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
