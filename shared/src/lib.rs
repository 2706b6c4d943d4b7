//! Plumbing shared by `pulse-api`, `pulse-worker` and `pulse-scheduler`: configuration, the
//! error type, database pool and migrations, schema, the event and its storage rules, the named-metric point, the Kafka envelope and clients,
//! logging, metrics, operational endpoints, webhook signing and its SSRF guard, signal handling and whole numbers in JSON. One module per concern.

pub mod backoff;
pub mod config;
pub mod db;
pub mod digest;
pub mod email;
pub mod envelope;
pub mod error;
pub mod event;
pub mod kafka;
pub mod keys;
pub mod metric;
pub mod metrics;
pub mod monitor;
pub mod ops;
pub mod rollup;
pub mod schema;
pub mod shutdown;
pub mod startup;
pub mod stored_event;
pub mod stream;
pub mod telemetry;
pub mod webhook;
pub mod whole;

pub use error::{Error, Result};
