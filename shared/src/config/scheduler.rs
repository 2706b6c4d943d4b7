//! The scheduler: `PULSE_SCHEDULER_ADDR`, the purge job's `PULSE_PURGE_*` (`pulse-scheduler`).

use std::net::SocketAddr;
use std::time::Duration;

use super::{positive, socket_addr, ConfigError};

/// Settings of the scheduler (`pulse-scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub addr: SocketAddr,
    /// How often the purge of deleted projects looks for work when idle.
    pub purge_interval: Duration,
    /// Events deleted per purge transaction.
    pub purge_batch_size: i64,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: socket_addr("PULSE_SCHEDULER_ADDR", "127.0.0.1:9102")?,
            purge_interval: Duration::from_secs(positive("PULSE_PURGE_INTERVAL_SECS", 5)?),
            purge_batch_size: positive("PULSE_PURGE_BATCH_SIZE", 5_000)?,
        })
    }
}
