//! Uptime monitors: `PULSE_MONITOR_*`, read by `pulse-scheduler` (which runs the checks) and by
//! `pulse-api` (which validates monitor URLs and runs `POST …/monitors/{id}/check`).

use std::time::Duration;

use ipnet::IpNet;

use super::webhook::allow_nets;
use super::{millis, positive, raw, ConfigError};

/// Settings of uptime checks.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Checks in flight at once per scheduler replica.
    pub max_concurrency: usize,
    /// Consecutive failed checks of one target (host and port) that open its circuit breaker.
    pub breaker_failures: i32,
    /// How long an open breaker keeps its target's monitors from being checked before one
    /// probe is let through (half-open).
    pub breaker_open: Duration,
    /// Networks monitor URLs may resolve into although they are not public (loopback, private).
    pub allow_nets: Vec<IpNet>,
    /// How often a replica looks for due checks.
    pub poll_interval: Duration,
    /// Most due monitors one replica claims per look.
    pub claim_batch: i64,
}

impl MonitorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            max_concurrency: positive("PULSE_MONITOR_MAX_CONCURRENCY", 200)?,
            breaker_failures: positive("PULSE_MONITOR_BREAKER_FAILURES", 5)?,
            breaker_open: Duration::from_secs(positive("PULSE_MONITOR_BREAKER_OPEN_SECS", 60)?),
            allow_nets: allow_nets(raw("PULSE_MONITOR_ALLOW_NETS").as_deref().unwrap_or("")).map_err(|reason| {
                ConfigError {
                    variable: "PULSE_MONITOR_ALLOW_NETS",
                    reason,
                }
            })?,
            poll_interval: millis("PULSE_MONITOR_POLL_MS", 250)?,
            claim_batch: positive("PULSE_MONITOR_CLAIM_BATCH", 500)?,
        })
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 200,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(60),
            allow_nets: Vec::new(),
            poll_interval: Duration::from_millis(250),
            claim_batch: 500,
        }
    }
}
