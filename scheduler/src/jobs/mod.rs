//! The scheduler's jobs, one file each, and what they share: the run counter
//! `pulse_scheduler_runs_total{job, outcome}`.
//!
//! - [`partitions`]: daily `events` partitions kept created `PULSE_EVENT_PARTITIONS_AHEAD_DAYS`
//!   ahead, every hour;
//! - [`purge`]: deleted projects and organizations removed in bounded batches;
//! - [`rollups`]: the workers' rollup deltas folded into one row per minute and into the
//!   hourly rollups.
//!
//! All are safe with several replicas: partition creation is idempotent under an advisory
//! lock, each purge step claims its project with `FOR UPDATE SKIP LOCKED`, and compaction
//! rounds take turns through an advisory lock.

pub mod partitions;
pub mod purge;
pub mod rollups;

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, IntCounterVec};
use pulse_shared::metrics::registered;

/// Job runs by job and outcome (`ok`, `error`).
pub static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_scheduler_runs_total",
        "Scheduled job runs by job and outcome",
        &["job", "outcome"]
    ))
});
