//! Logging: `PULSE_LOG`, `PULSE_LOG_FORMAT` (every binary).

use super::{raw, ConfigError};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive.
    pub filter: String,
}

impl LogConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let format = match raw("PULSE_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PULSE_LOG_FORMAT",
                    reason: format!("{other:?} is not text or json"),
                })
            }
        };
        let filter = raw("PULSE_LOG").unwrap_or_else(|| "info".into());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&filter) {
            return Err(ConfigError {
                variable: "PULSE_LOG",
                reason: format!("{filter:?} is not a valid filter ({error})"),
            });
        }
        Ok(Self { format, filter })
    }
}
