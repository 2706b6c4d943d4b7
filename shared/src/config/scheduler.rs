//! The scheduler: `PULSE_SCHEDULER_ADDR`, the purge job's `PULSE_PURGE_*` and the rollup
//! compaction's `PULSE_ROLLUP_COMPACT_*` (`pulse-scheduler`).

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
    /// How often the rollup compaction looks for deltas when it found none.
    pub rollup_compact_interval: Duration,
    /// Delta rows folded per compaction transaction.
    pub rollup_compact_batch: i64,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: socket_addr("PULSE_SCHEDULER_ADDR", "127.0.0.1:9102")?,
            purge_interval: Duration::from_secs(positive("PULSE_PURGE_INTERVAL_SECS", 5)?),
            purge_batch_size: positive("PULSE_PURGE_BATCH_SIZE", 5_000)?,
            rollup_compact_interval: Duration::from_secs(positive("PULSE_ROLLUP_COMPACT_INTERVAL_SECS", 5)?),
            rollup_compact_batch: positive("PULSE_ROLLUP_COMPACT_BATCH", 20_000)?,
        })
    }
}
