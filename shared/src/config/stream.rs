//! The live stream: `PULSE_STREAM_*` (`pulse-api` serves the streams; `pulse-worker` reads
//! only `PULSE_STREAM_PUBLISH`).

use std::time::Duration;

use super::{positive, raw, ConfigError};
use crate::kafka::topics::STORED_RETENTION;

/// Settings of the live stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// SSE heartbeat comments and WebSocket pings, this often.
    pub heartbeat: Duration,
    /// How far back a reconnect with `Last-Event-ID` resumes without gaps.
    pub resume_window: Duration,
    /// Messages queued for one client before it is dropped as too slow.
    pub client_buffer: usize,
    /// Open stream connections per api replica; past it a new one gets 503.
    pub max_clients: usize,
    /// Whether the persist worker publishes what it stored to the stored-events topic (off:
    /// no live stream, and its cost saved).
    pub publish: bool,
}

impl StreamConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let resume_secs: u64 = positive("PULSE_STREAM_RESUME_SECS", 300)?;
        if resume_secs > STORED_RETENTION.as_secs() {
            return Err(ConfigError {
                variable: "PULSE_STREAM_RESUME_SECS",
                reason: format!(
                    "{resume_secs} is longer than the stored-events topic keeps its messages ({} s)",
                    STORED_RETENTION.as_secs()
                ),
            });
        }
        Ok(Self {
            heartbeat: Duration::from_secs(positive("PULSE_STREAM_HEARTBEAT_SECS", 15)?),
            resume_window: Duration::from_secs(resume_secs),
            client_buffer: positive("PULSE_STREAM_CLIENT_BUFFER", 1_000)?,
            max_clients: positive("PULSE_STREAM_MAX_CLIENTS", 10_000)?,
            publish: flag("PULSE_STREAM_PUBLISH", true)?,
        })
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            resume_window: Duration::from_secs(300),
            client_buffer: 1_000,
            max_clients: 10_000,
            publish: true,
        }
    }
}

fn flag(variable: &'static str, default: bool) -> Result<bool, ConfigError> {
    match raw(variable).map(|value| value.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError {
            variable,
            reason: format!("{other:?} is not a boolean (true or false)"),
        }),
    }
}
