//! The scheduler (`pulse-scheduler`): `PULSE_SCHEDULER_ADDR` and `PULSE_SCHEDULER_REPLICA`, the
//! job framework's `PULSE_JOB_RETRIES` and `PULSE_JOB_RETRY_BACKOFF_MS`, the cron of each cron
//! job (`PULSE_PARTITIONS_CRON`) and the partition drain's `PULSE_PARTITION_DRAIN_BATCH`, the
//! purge job's `PULSE_PURGE_*` and the rollup compaction's `PULSE_ROLLUP_COMPACT_*`.
//!
//! Cron expressions have six fields, seconds first (`sec min hour day-of-month month
//! day-of-week`, an optional seventh for the year), in UTC: `0 0 * * * *` is every hour on the
//! hour, `*/1 * * * * *` every second.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use super::{millis, parsed, positive, raw, socket_addr, ConfigError};

/// Settings of the scheduler (`pulse-scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub addr: SocketAddr,
    /// This replica's name in `job_runs.replica` (default: host name and process id).
    pub replica: String,
    /// Further attempts of a failed job run within its tick.
    pub job_retries: u32,
    /// Pause before the first retry of a failed run; doubled before each next one.
    pub job_retry_backoff: Duration,
    /// When the `partitions` job runs (partitions ahead, default partition drained).
    pub partitions_cron: cron::Schedule,
    /// Rows moved out of the default partition per statement.
    pub partition_drain_batch: i64,
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
            replica: raw("PULSE_SCHEDULER_REPLICA").unwrap_or_else(default_replica),
            job_retries: parsed("PULSE_JOB_RETRIES", 3, "a number")?,
            job_retry_backoff: millis("PULSE_JOB_RETRY_BACKOFF_MS", 1_000)?,
            partitions_cron: cron_schedule("PULSE_PARTITIONS_CRON", "0 0 * * * *")?,
            partition_drain_batch: positive("PULSE_PARTITION_DRAIN_BATCH", 10_000)?,
            purge_interval: Duration::from_secs(positive("PULSE_PURGE_INTERVAL_SECS", 5)?),
            purge_batch_size: positive("PULSE_PURGE_BATCH_SIZE", 5_000)?,
            rollup_compact_interval: Duration::from_secs(positive("PULSE_ROLLUP_COMPACT_INTERVAL_SECS", 5)?),
            rollup_compact_batch: positive("PULSE_ROLLUP_COMPACT_BATCH", 20_000)?,
        })
    }
}

/// Reads a cron expression (six or seven fields, seconds first).
pub fn cron_schedule(variable: &'static str, default: &str) -> Result<cron::Schedule, ConfigError> {
    let value = raw(variable).unwrap_or_else(|| default.to_owned());
    cron::Schedule::from_str(&value).map_err(|error| ConfigError {
        variable,
        reason: format!(
            "{value:?} is not a cron expression (sec min hour day month weekday, e.g. \"0 0 * * * *\"): {error}"
        ),
    })
}

/// `HOST-PID`: unique among replicas on one host and across hosts.
fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "scheduler".to_owned());
    format!("{host}-{}", std::process::id())
}
