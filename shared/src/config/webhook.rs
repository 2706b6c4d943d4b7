//! Signed webhooks: `PULSE_WEBHOOK_*`, read whole by `pulse-api` (which uses the SSRF
//! allow-list, the secret grace period and the default `max_attempts`) and by
//! `pulse-worker notify` (which uses all of them), so a bad value stops either at start.

use std::time::Duration;

use ipnet::IpNet;

use super::{millis, positive, raw, ConfigError};

/// The default retry schedule: seconds before each retry (Svix's schedule, from immediately to
/// 10 h apart, about 27 h in all).
pub const DEFAULT_RETRY_SCHEDULE: &str = "0,5,300,1800,7200,18000,36000,36000";
/// Longest single wait of a retry schedule (one week).
pub const MAX_RETRY_DELAY_SECS: u64 = 7 * 24 * 3600;

/// Settings of webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Wait before each retry: `retry_schedule[0]` before the second attempt, and so on; the
    /// last one repeats when an endpoint allows more attempts.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// Networks a destination may resolve into although they are not public (tests: loopback).
    pub allow_nets: Vec<IpNet>,
    pub connect_timeout: Duration,
    /// Longest whole attempt, connect to the end of the response body.
    pub timeout: Duration,
    /// Most events in one `event.created` delivery.
    pub batch_max_events: usize,
    /// How often the outbox is expanded into deliveries: events of this window travel together.
    pub batch_delay: Duration,
    /// Attempts in flight to one endpoint from one worker process.
    pub endpoint_concurrency: usize,
    /// Attempts in flight from one worker process in all.
    pub concurrency: usize,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_grace: Duration,
}

impl WebhookConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let timeout = Duration::from_secs(positive("PULSE_WEBHOOK_TIMEOUT_SECS", 15)?);
        let connect_timeout = Duration::from_secs(positive("PULSE_WEBHOOK_CONNECT_TIMEOUT_SECS", 5)?);
        if connect_timeout > timeout {
            return Err(ConfigError {
                variable: "PULSE_WEBHOOK_CONNECT_TIMEOUT_SECS",
                reason: "must not be longer than PULSE_WEBHOOK_TIMEOUT_SECS".into(),
            });
        }
        Ok(Self {
            retry_schedule: retry_schedule(
                raw("PULSE_WEBHOOK_RETRY_SCHEDULE")
                    .as_deref()
                    .unwrap_or(DEFAULT_RETRY_SCHEDULE),
            )
            .map_err(|reason| ConfigError {
                variable: "PULSE_WEBHOOK_RETRY_SCHEDULE",
                reason,
            })?,
            disable_after: Duration::from_secs(positive("PULSE_WEBHOOK_DISABLE_AFTER_SECS", 432_000)?),
            allow_nets: allow_nets(raw("PULSE_WEBHOOK_ALLOW_NETS").as_deref().unwrap_or("")).map_err(|reason| {
                ConfigError {
                    variable: "PULSE_WEBHOOK_ALLOW_NETS",
                    reason,
                }
            })?,
            connect_timeout,
            timeout,
            batch_max_events: positive("PULSE_WEBHOOK_BATCH_MAX_EVENTS", 500)?,
            batch_delay: millis("PULSE_WEBHOOK_BATCH_DELAY_MS", 500)?,
            endpoint_concurrency: positive("PULSE_WEBHOOK_ENDPOINT_CONCURRENCY", 4)?,
            concurrency: positive("PULSE_WEBHOOK_CONCURRENCY", 64)?,
            secret_grace: Duration::from_secs(positive("PULSE_WEBHOOK_SECRET_GRACE_SECS", 86_400)?),
        })
    }

    /// Total attempts the schedule gives (the first included): the default `max_attempts`.
    pub fn default_max_attempts(&self) -> u32 {
        u32::try_from(self.retry_schedule.len() + 1).unwrap_or(u32::MAX)
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            retry_schedule: retry_schedule(DEFAULT_RETRY_SCHEDULE).unwrap_or_default(),
            disable_after: Duration::from_secs(432_000),
            allow_nets: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            batch_max_events: 500,
            batch_delay: Duration::from_millis(500),
            endpoint_concurrency: 4,
            concurrency: 64,
            secret_grace: Duration::from_secs(86_400),
        }
    }
}

/// `0,5,300`: comma-separated whole seconds, at least one, each at most a week.
pub fn retry_schedule(value: &str) -> Result<Vec<Duration>, String> {
    let mut schedule = Vec::new();
    for item in value.split(',').map(str::trim) {
        let secs: u64 = item
            .parse()
            .map_err(|_| format!("{item:?} is not a whole number of seconds (expected e.g. 0,5,300)"))?;
        if secs > MAX_RETRY_DELAY_SECS {
            return Err(format!("{secs} s is longer than a week"));
        }
        schedule.push(Duration::from_secs(secs));
    }
    if schedule.len() > 49 {
        return Err("at most 49 retries".into());
    }
    Ok(schedule)
}

/// `127.0.0.0/8,::1/128`: comma-separated networks (empty: none).
pub fn allow_nets(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a network (expected e.g. 10.0.0.0/8 or ::1/128)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_networks_parse_or_name_the_bad_item() {
        assert_eq!(retry_schedule(DEFAULT_RETRY_SCHEDULE).expect("default").len(), 8);
        assert_eq!(
            retry_schedule(" 0, 1 ").expect("spaces"),
            vec![Duration::ZERO, Duration::from_secs(1)]
        );
        assert!(retry_schedule("1,x").expect_err("x").contains("\"x\""));
        assert!(retry_schedule("").is_err());
        assert!(retry_schedule("700000").is_err());
        assert_eq!(allow_nets("").expect("empty"), vec![]);
        let nets = allow_nets("127.0.0.0/8, ::1").expect("nets");
        assert!(nets[0].contains(&"127.0.0.9".parse::<std::net::IpAddr>().expect("ip")));
        assert!(nets[1].contains(&"::1".parse::<std::net::IpAddr>().expect("ip")));
        assert!(allow_nets("10.0.0.0/33").is_err());
    }
}
