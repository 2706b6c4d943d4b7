//! The read side of the api: `PULSE_READ_RATE_LIMIT_PER_SEC` and the bounds that keep any one
//! query from scanning the world (`PULSE_QUERY_*`) (`pulse-api`).

use super::{positive, ConfigError};

/// Settings of the query routes.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Read requests per second per API key (or per member, with an access token) and replica.
    pub read_rate_per_sec: u32,
    /// Longest range a query over raw rows may cover, in days.
    pub max_raw_days: u32,
    /// Most buckets one answer may hold.
    pub max_buckets: u32,
}

impl QueryConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            read_rate_per_sec: positive("PULSE_READ_RATE_LIMIT_PER_SEC", 100)?,
            max_raw_days: positive("PULSE_QUERY_MAX_RAW_DAYS", 7)?,
            max_buckets: positive("PULSE_QUERY_MAX_BUCKETS", 10_000)?,
        })
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            read_rate_per_sec: 100,
            max_raw_days: 7,
            max_buckets: 10_000,
        }
    }
}
