//! The read side of the api: who may read ([`access`]), the parameters every read route shares
//! ([`params`]), the paging cursor ([`cursor`]), the raw events ([`events`]), the counts
//! and durations per time bucket from the worker's rollups ([`rollups`]), metrics per group
//! of events, from the rollups or the raw events ([`analytics`]), the overview
//! and realtime figures from the same rollups ([`overview`]), the downloads of both
//! ([`export`]), and the named metrics' raw points, aggregates and latest values
//! ([`metrics`]; not to be confused with `crate::metrics`, the api's own Prometheus series).
//!
//! Every read route takes a project's API key with the `read` scope, or a member's access token
//! plus `project_id=`; each caller has its own token bucket (`PULSE_READ_RATE_LIMIT_PER_SEC`).

pub(crate) mod access;
pub(crate) mod analytics;
pub(crate) mod cursor;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod metrics;
pub(crate) mod overview;
pub(crate) mod params;
pub(crate) mod rollups;

pub use access::QueryState;
pub use analytics::analytics;
pub use events::{get_event, list_events, StoredEvent};
pub use export::{export_aggregated, export_events};
pub use metrics::{aggregate as metric_aggregate, latest as metric_latest, list_points as list_metric_points};
pub use overview::{overview, realtime};
pub use rollups::aggregated;
