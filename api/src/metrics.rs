//! The api's Prometheus metrics, registered in the default registry on first use (rendered by
//! `/metrics` from `pulse_shared::ops`). Route labels are matched route patterns, never raw
//! paths, so a scan of random URLs cannot blow up the series count.

use std::sync::LazyLock;

use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
};
use pulse_shared::metrics::{registered, BATCH_SIZE_BUCKETS, LATENCY_BUCKETS};

use crate::ingest::validate;

pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_http_requests_total",
        "HTTP requests answered, by route pattern, method and status",
        &["route", "method", "status"]
    ))
});

pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(register_histogram_vec!(
        "pulse_http_request_duration_seconds",
        "Time to answer an HTTP request, by route pattern",
        &["route"],
        LATENCY_BUCKETS.to_vec()
    ))
});

pub static EVENTS_ACCEPTED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_events_accepted_total",
        "Events acknowledged by Kafka and answered as accepted"
    ))
});

pub static EVENTS_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_events_rejected_total",
        "Events refused, by error code",
        &["code"]
    ))
});

pub static METRIC_POINTS_ACCEPTED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_metric_points_accepted_total",
        "Named-metric points acknowledged by Kafka and answered as accepted"
    ))
});

pub static METRIC_POINTS_REJECTED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_metric_points_rejected_total",
        "Named-metric points of a batch refused as invalid"
    ))
});

pub static EVENTS_PRODUCED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_events_produced_total",
        "Kafka messages acknowledged by the broker"
    ))
});

pub static PRODUCE_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_produce_failures_total",
        "Kafka messages not acknowledged, by kind (timed_out, unavailable, rejected)",
        &["kind"]
    ))
});

pub static PRODUCE_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_produce_duration_seconds",
        "Time from the first send of a request's events to the last acknowledgement",
        LATENCY_BUCKETS.to_vec()
    ))
});

pub static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_ingest_batch_size",
        "Events per ingest request, as sent",
        BATCH_SIZE_BUCKETS.to_vec()
    ))
});

/// Touches every metric, and the known label values of the labelled counters, so that every
/// family shows in `/metrics` from the start and `rate()` sees the first increment.
/// Live-stream connections open on this replica (WebSocket and SSE).
pub static STREAM_CLIENTS: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(register_int_gauge!(
        "pulse_stream_clients",
        "Live-stream connections open on this replica"
    ))
});

/// Stream clients the server closed, by reason (`too_slow`).
pub static STREAM_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_stream_clients_dropped_total",
        "Live-stream clients closed by the server, by reason",
        &["reason"]
    ))
});

/// Stored events the relay decoded for this replica's clients.
pub static STREAM_RELAYED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_stream_events_relayed_total",
        "Stored events decoded by the live-stream relay for this replica's clients"
    ))
});

/// Messages written to stream clients (events and notices).
pub static STREAM_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_stream_messages_sent_total",
        "Messages handed to live-stream connections"
    ))
});

pub fn init() {
    for code in [
        validate::INVALID_EVENT,
        validate::EVENT_TOO_LARGE,
        validate::EVENT_REJECTED,
        "INVALID_JSON",
    ] {
        EVENTS_REJECTED.with_label_values(&[code]);
    }
    for kind in ["timed_out", "unavailable", "rejected"] {
        PRODUCE_FAILURES.with_label_values(&[kind]);
    }
    LazyLock::force(&STREAM_CLIENTS);
    STREAM_DROPPED.with_label_values(&["too_slow"]);
    LazyLock::force(&STREAM_RELAYED);
    LazyLock::force(&STREAM_SENT);
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
    LazyLock::force(&EVENTS_ACCEPTED);
    LazyLock::force(&EVENTS_REJECTED);
    LazyLock::force(&EVENTS_PRODUCED);
    LazyLock::force(&METRIC_POINTS_ACCEPTED);
    LazyLock::force(&METRIC_POINTS_REJECTED);
    LazyLock::force(&PRODUCE_FAILURES);
    LazyLock::force(&PRODUCE_DURATION);
    LazyLock::force(&BATCH_SIZE);
}
