//! The consumer groups: `PULSE_WORKER_*`, shutdown (`pulse-worker`).

use std::net::SocketAddr;
use std::time::Duration;

use super::{millis, positive, raw, socket_addr, ConfigError};

/// Settings of the worker's consumer groups (`pulse-worker persist|metrics`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub addr: SocketAddr,
    pub group: String,
    /// Consumer group of the metrics role (`pulse-worker metrics`).
    pub metrics_group: String,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub retry_max: Duration,
    pub shutdown_timeout: Duration,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: socket_addr("PULSE_WORKER_ADDR", "127.0.0.1:9101")?,
            group: raw("PULSE_WORKER_GROUP").unwrap_or_else(|| "pulse-persist".into()),
            metrics_group: raw("PULSE_WORKER_METRICS_GROUP").unwrap_or_else(|| "pulse-metrics".into()),
            batch_size: positive("PULSE_WORKER_BATCH_SIZE", 2_000)?,
            batch_wait: millis("PULSE_WORKER_BATCH_WAIT_MS", 50)?,
            retry_max: millis("PULSE_WORKER_RETRY_MAX_MS", 30_000)?,
            shutdown_timeout: Duration::from_secs(positive("PULSE_SHUTDOWN_TIMEOUT_SECS", 30)?),
        })
    }
}
