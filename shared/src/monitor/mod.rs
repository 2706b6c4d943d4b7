//! Uptime monitors: what a monitor's settings mean ([`spec`]), how one is checked and how a
//! check's result is recorded (state, breaker, incidents, notices), shared by the scheduler's
//! check loop and the api's "check now". See docs/monitors.md.
//!
//! - [`probe`]: the [`Checker`] (one HTTP client, the SSRF guard) and one check's verdict;
//! - [`record`]: a check's result written in one transaction (the check row, the day's
//!   counters, the monitor's state, its target's breaker, the incident and its notices), and
//!   [`check_now`] for the api;
//! - [`notices`]: what `monitor.down`, `monitor.up` and `monitor.cert_expiring` say, by email
//!   and webhook;
//! - [`announce`]: state changes published on the stored-events topic for live streams.

pub mod announce;
pub mod notices;
pub mod probe;
pub mod record;
pub mod spec;

pub use announce::Announcer;
pub use probe::Checker;
pub use record::{check_now, Recorded, StateChange, StoredCheck};

/// Why a check could not be run or recorded (a failed check is not an error: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// No such monitor (or it was deleted while it was being checked).
    #[error("monitor {0} does not exist")]
    NotFound(uuid::Uuid),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(String),
    /// The HTTP client could not be built.
    #[error("monitor HTTP client: {0}")]
    Client(String),
}

impl From<crate::Error> for MonitorError {
    fn from(error: crate::Error) -> Self {
        match error {
            crate::Error::Database(error) => Self::Database(error),
            other => Self::Pool(other.to_string()),
        }
    }
}
