//! The error type of the shared plumbing.
//!
//! Error policy for all of Pulse: library code (this crate, the workers' inner loops) returns
//! typed errors with `thiserror`; each binary crate has one error enum of its own, and the api
//! maps its enum to HTTP in exactly one place (`api/src/error.rs`). `anyhow` is used only at the
//! top of `main` and in tests, where an error is printed and nothing decides on its kind.

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
