//! PostgreSQL: `PULSE_DATABASE_*` and `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` (every binary).

use std::time::Duration;

use super::{millis, positive, required, ConfigError};

/// PostgreSQL connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    /// Connections in this process's pool.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection before the caller gets an error.
    pub pool_timeout: Duration,
    /// `statement_timeout` set on every connection.
    pub statement_timeout: Duration,
    /// Daily `events` partitions made sure to exist ahead of today.
    pub partitions_ahead_days: i32,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let url = required("PULSE_DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                variable: "PULSE_DATABASE_URL",
                reason: "must start with postgres:// or postgresql://".into(),
            });
        }
        Ok(Self {
            url,
            pool_size: positive("PULSE_DATABASE_POOL_SIZE", 16)?,
            pool_timeout: millis("PULSE_DATABASE_POOL_TIMEOUT_MS", 5_000)?,
            statement_timeout: millis("PULSE_DATABASE_STATEMENT_TIMEOUT_MS", 30_000)?,
            partitions_ahead_days: positive("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", 7)?,
        })
    }
}
