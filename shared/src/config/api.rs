//! The HTTP api: `PULSE_API_*`, body and batch limits, the key cache, shutdown (`pulse-api`).

use std::net::SocketAddr;
use std::time::Duration;

use super::{positive, socket_addr, ConfigError};

/// Settings of the HTTP api (`pulse-api`).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub addr: SocketAddr,
    pub workers: usize,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    /// How long a checked API key is trusted without asking the database.
    pub api_key_cache_ttl: Duration,
    pub shutdown_timeout: Duration,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            addr: socket_addr("PULSE_API_ADDR", "127.0.0.1:8080")?,
            workers: positive("PULSE_API_WORKERS", cpus)?,
            max_batch_events: positive("PULSE_MAX_BATCH_EVENTS", 1_000)?,
            max_body_bytes: positive("PULSE_MAX_BODY_BYTES", 5 * 1024 * 1024)?,
            api_key_cache_ttl: Duration::from_secs(positive("PULSE_API_KEY_CACHE_TTL_SECS", 30)?),
            shutdown_timeout: Duration::from_secs(positive("PULSE_SHUTDOWN_TIMEOUT_SECS", 30)?),
        })
    }
}
