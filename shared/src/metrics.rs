//! Prometheus plumbing: every crate registers its metrics in the default registry (which also
//! carries the process collector: resident memory, CPU, open fds) and `/metrics` renders it.

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, Encoder, IntCounterVec, TextEncoder};

/// Latency buckets in seconds, from 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Size buckets for batches (events per batch).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

/// Unwraps a metric registration. Registration fails only on a duplicate name in the default
/// registry, a programming error that the first test touching the metric catches; every crate
/// registers through this one helper.
#[allow(clippy::expect_used)]
pub fn registered<T>(result: prometheus::Result<T>) -> T {
    result.expect("metric registers once in the default registry")
}

/// Kafka clients replaced because the broker left them unusable, by `client` (`producer`: a
/// fatal error such as lost idempotence or fencing; `consumer`: an empty assignment while the
/// group left partitions unconsumed). Any broker can do this; each one is also logged once.
pub static KAFKA_CLIENT_RECOVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_kafka_client_recoveries_total",
        "Kafka clients rebuilt (producer after a fatal error) or re-joined (consumer left idle)",
        &["client"]
    ))
});

/// The default registry in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let families = prometheus::gather();
    if TextEncoder::new().encode(&families, &mut buffer).is_err() {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}
