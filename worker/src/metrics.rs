//! The worker's Prometheus metrics, registered in the default registry on first use and
//! rendered by `/metrics` (shared `ops`). [`init`] touches every one of them at start so that
//! all series exist, at zero, before the first batch.

use std::sync::LazyLock;

use prometheus::{
    register_histogram, register_int_counter, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
    Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};
use pulse_shared::metrics::{registered, BATCH_SIZE_BUCKETS, LATENCY_BUCKETS};

/// Messages read from the events topic (decodable or not).
pub static EVENTS_CONSUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_events_consumed_total",
        "Messages read from the events topic"
    ))
});

/// Events written to the database for the first time.
pub static EVENTS_PERSISTED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_events_persisted_total",
        "Events stored in the database for the first time"
    ))
});

/// Events not written because their id was already stored or repeated within the batch.
pub static EVENTS_DUPLICATE: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_events_duplicate_total",
        "Events skipped because their id was already stored (redelivery or producer retry)"
    ))
});

/// Messages sent to the dead-letter topic, by reason (`empty`, `malformed`, `unknown_version`,
/// `unstorable`).
pub static EVENTS_DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_events_dead_lettered_total",
        "Undecodable messages sent to the dead-letter topic",
        &["reason"]
    ))
});

/// Messages per persisted batch.
pub static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_persist_batch_size",
        "Messages per persisted batch",
        BATCH_SIZE_BUCKETS.to_vec()
    ))
});

/// Time from the start of a batch's persistence to its commit, retries included.
pub static BATCH_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_persist_batch_duration_seconds",
        "Time to persist one batch (dead letters and database transaction, retries included)",
        LATENCY_BUCKETS.to_vec()
    ))
});

/// Failed database attempts that were retried (or abandoned at shutdown).
pub static DB_RETRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_db_retries_total",
        "Failed database writes of a batch, each retried"
    ))
});

/// Consumer lag per assigned partition, from librdkafka statistics (`consumer_lag`: high
/// watermark minus committed offset).
pub static CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(register_int_gauge_vec!(
        "pulse_consumer_lag",
        "Messages between the committed offset and the end of the partition",
        &["topic", "partition"]
    ))
});

/// Messages read from the metrics topic (decodable or not).
pub static METRIC_POINTS_CONSUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_metric_points_consumed_total",
        "Messages read from the metrics topic"
    ))
});

/// Named-metric points written to the database for the first time.
pub static METRIC_POINTS_PERSISTED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_metric_points_persisted_total",
        "Metric points stored in the database for the first time"
    ))
});

/// Points not written because their id was already stored or repeated within the batch.
pub static METRIC_POINTS_DUPLICATE: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_metric_points_duplicate_total",
        "Metric points skipped because their id was already stored (redelivery or producer retry)"
    ))
});

/// Messages of the metrics topic sent to its dead-letter topic, by reason.
pub static METRIC_POINTS_DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_metric_points_dead_lettered_total",
        "Undecodable metric messages sent to the dead-letter topic",
        &["reason"]
    ))
});

/// Registers every metric now so each series is rendered from the first scrape.
/// Stored events announced on the stored-events topic for the api's live streams.
pub static STREAM_PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_stream_published_total",
        "Stored events and metric points announced on the stored-events topic (live streams)"
    ))
});

/// Stored-events messages Kafka did not acknowledge within the produce timeout.
pub static STREAM_PUBLISH_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_stream_publish_failures_total",
        "Stored-events messages not acknowledged by Kafka (their events are stored but missed by live streams)"
    ))
});

/// Webhook attempts by outcome: `success` or the error class.
pub static WEBHOOK_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_webhook_attempts_total",
        "Webhook attempts by outcome (success, timeout, connect, tls, dns, ssrf_refused, http_status)",
        &["outcome"]
    ))
});

/// Time of one webhook attempt, connect to the end of the response.
pub static WEBHOOK_ATTEMPT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    registered(register_histogram!(
        "pulse_webhook_attempt_duration_seconds",
        "Time of one webhook attempt",
        LATENCY_BUCKETS.to_vec()
    ))
});

/// Webhook deliveries finished, by result (`succeeded`, `failed` after the last attempt).
pub static WEBHOOK_DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_webhook_deliveries_total",
        "Webhook deliveries finished, by result",
        &["result"]
    ))
});

/// Webhook attempts in flight in this process.
pub static WEBHOOK_IN_FLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(register_int_gauge!(
        "pulse_webhook_in_flight",
        "Webhook attempts in flight in this process"
    ))
});

/// Endpoints this process disabled (410 Gone, or failing for too long).
pub static WEBHOOK_ENDPOINTS_DISABLED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_webhook_endpoints_disabled_total",
        "Webhook endpoints disabled by this process"
    ))
});

/// Outbox messages expanded into deliveries.
pub static WEBHOOK_MESSAGES_EXPANDED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_webhook_messages_expanded_total",
        "Webhook outbox messages expanded into deliveries"
    ))
});

/// Deliveries made from the outbox.
pub static WEBHOOK_DELIVERIES_CREATED: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_webhook_deliveries_created_total",
        "Webhook deliveries made from the outbox"
    ))
});

/// Email attempts by outcome (`success`, `failure`).
pub static EMAIL_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_email_attempts_total",
        "SMTP attempts by outcome (success, failure)",
        &["outcome"]
    ))
});

/// Email messages finished, by result (`sent`, `failed`).
pub static EMAIL_MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_email_messages_total",
        "Email messages finished, by result (sent, failed)",
        &["result"]
    ))
});

/// Alert rules evaluated.
pub static ALERT_EVALUATIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(register_int_counter!(
        "pulse_alert_evaluations_total",
        "Alert rule evaluations"
    ))
});

/// Alert incidents changed by this process, by change (`fired`, `reminded`, `resolved`).
pub static ALERT_INCIDENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(register_int_counter_vec!(
        "pulse_alert_incidents_total",
        "Alert incidents opened, re-notified and resolved by this process",
        &["change"]
    ))
});

pub fn init() {
    LazyLock::force(&EVENTS_CONSUMED);
    LazyLock::force(&EVENTS_PERSISTED);
    LazyLock::force(&EVENTS_DUPLICATE);
    for reason in crate::persist::decode::REASONS {
        EVENTS_DEAD_LETTERED.with_label_values(&[reason]);
    }
    LazyLock::force(&METRIC_POINTS_CONSUMED);
    LazyLock::force(&METRIC_POINTS_PERSISTED);
    LazyLock::force(&METRIC_POINTS_DUPLICATE);
    for reason in crate::persist::decode::REASONS {
        METRIC_POINTS_DEAD_LETTERED.with_label_values(&[reason]);
    }
    LazyLock::force(&BATCH_SIZE);
    LazyLock::force(&BATCH_DURATION);
    LazyLock::force(&DB_RETRIES);
    LazyLock::force(&CONSUMER_LAG);
    LazyLock::force(&STREAM_PUBLISHED);
    LazyLock::force(&STREAM_PUBLISH_FAILURES);
    WEBHOOK_ATTEMPTS.with_label_values(&["success"]);
    for class in crate::notify::send::ErrorClass::ALL {
        WEBHOOK_ATTEMPTS.with_label_values(&[class.as_str()]);
    }
    LazyLock::force(&WEBHOOK_ATTEMPT_DURATION);
    for result in ["succeeded", "failed"] {
        WEBHOOK_DELIVERIES.with_label_values(&[result]);
    }
    LazyLock::force(&WEBHOOK_IN_FLIGHT);
    LazyLock::force(&WEBHOOK_ENDPOINTS_DISABLED);
    LazyLock::force(&WEBHOOK_MESSAGES_EXPANDED);
    LazyLock::force(&WEBHOOK_DELIVERIES_CREATED);
}
