//! Topic names, all derived from `PULSE_TOPIC_PREFIX`.

/// The topics of one Pulse installation.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Accepted events, keyed by project id.
    pub events: String,
    /// Messages the persist worker could not decode, with the reason in a header.
    pub events_dlq: String,
    /// Accepted named-metric points, keyed by project id.
    pub metrics: String,
    /// Messages the metrics worker could not decode, with the reason in a header.
    pub metrics_dlq: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}events"),
            events_dlq: format!("{prefix}events.dlq"),
            metrics: format!("{prefix}metrics"),
            metrics_dlq: format!("{prefix}metrics.dlq"),
        }
    }

    /// Every topic, for creation at start.
    pub fn all(&self) -> [&str; 4] {
        [&self.events, &self.events_dlq, &self.metrics, &self.metrics_dlq]
    }
}
