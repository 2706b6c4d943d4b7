//! Ingest: `POST /v1/events` and `POST /v1/events/batch` (and the named-metric points of
//! `POST /v1/metrics` and `/v1/metrics/batch`, [`metrics`]), everything a request passes through
//! on its way to Kafka, one module a step:
//! - [`limit`]: the per-key rate limit, applied by a middleware before the handler;
//! - [`body`]: content type and encoding, the size limit, gzip;
//! - [`validate`]: the event rules and the batch wrapper, each rejection by its index;
//! - [`handler`]: the handlers and their shared state: authenticate, produce, wait for every
//!   acknowledgement, answer.
//!
//! The wire API is documented in docs/ingest.md.

pub(crate) mod body;
pub(crate) mod handler;
pub(crate) mod limit;
pub mod metrics;
pub mod validate;

pub use handler::{batch, single, IngestState};
