//! The daily digest: `PULSE_DIGEST_HOUR_UTC`, read by `pulse-scheduler` (its `digest` job).

use super::{parsed, ConfigError};

/// Settings of the daily digest.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// The hour (UTC, 0 to 23) at which each subscriber gets the digest of the day before.
    pub hour_utc: u32,
}

impl DigestConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let hour_utc = parsed("PULSE_DIGEST_HOUR_UTC", 7u32, "an hour from 0 to 23")?;
        if hour_utc > 23 {
            return Err(ConfigError {
                variable: "PULSE_DIGEST_HOUR_UTC",
                reason: format!("{hour_utc} is not an hour from 0 to 23"),
            });
        }
        Ok(Self { hour_utc })
    }
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self { hour_utc: 7 }
    }
}
