//! Alert rules: `PULSE_ALERT_*`, read by `pulse-worker notify` (which evaluates them) and by
//! `pulse-api` (which gives new projects their default rule).

use std::time::Duration;

use super::{millis, positive, ConfigError};

/// Settings of alert evaluation.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// How often each enabled rule is evaluated.
    pub eval_interval: Duration,
    /// Rules one worker claims per round.
    pub eval_batch: i64,
    /// The default rule of a new project: more error events than this per 5 minutes.
    pub default_error_threshold: u32,
}

impl AlertConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            eval_interval: millis("PULSE_ALERT_EVAL_INTERVAL_MS", 2000)?,
            eval_batch: positive("PULSE_ALERT_EVAL_BATCH", 200)?,
            default_error_threshold: positive("PULSE_ALERT_ERROR_THRESHOLD", 10)?,
        })
    }
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            eval_interval: Duration::from_millis(2000),
            eval_batch: 200,
            default_error_threshold: 10,
        }
    }
}
