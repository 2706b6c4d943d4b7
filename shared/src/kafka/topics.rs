//! Topic names, all derived from `PULSE_TOPIC_PREFIX`, and the retention of the ones that are
//! not kept for ever.

use std::time::Duration;

/// How long the stored-events topic keeps its messages. It only feeds live streams and their
/// resumption (`PULSE_STREAM_RESUME_SECS`, at most this), so an hour is plenty and bounds its
/// disk use to an hour of ingest.
pub const STORED_RETENTION: Duration = Duration::from_secs(3600);

/// The topics of one Pulse installation.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Accepted events, keyed by project id.
    pub events: String,
    /// Messages the persist worker could not decode, with the reason in a header.
    pub events_dlq: String,
    /// Events the persist worker stored, published after each commit for the api's live
    /// streams (`crate::stream`); each project on one partition.
    pub events_stored: String,
    /// Accepted named-metric points, keyed by project id.
    pub metrics: String,
    /// Messages the metrics worker could not decode, with the reason in a header.
    pub metrics_dlq: String,
}

/// A topic to create at start, with its retention when it is not the broker's default.
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub retention: Option<Duration>,
}

impl<'a> TopicSpec<'a> {
    /// A topic with the broker's default retention.
    pub fn plain(name: &'a str) -> Self {
        Self { name, retention: None }
    }
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}events"),
            events_dlq: format!("{prefix}events.dlq"),
            events_stored: format!("{prefix}events.stored"),
            metrics: format!("{prefix}metrics"),
            metrics_dlq: format!("{prefix}metrics.dlq"),
        }
    }

    /// Every topic, for creation at start.
    pub fn all(&self) -> Vec<TopicSpec<'_>> {
        vec![
            TopicSpec::plain(&self.events),
            TopicSpec::plain(&self.events_dlq),
            TopicSpec::plain(&self.metrics),
            TopicSpec::plain(&self.metrics_dlq),
            TopicSpec {
                name: &self.events_stored,
                retention: Some(STORED_RETENTION),
            },
        ]
    }

    /// Every topic's name.
    pub fn names(&self) -> Vec<&str> {
        self.all().into_iter().map(|spec| spec.name).collect()
    }
}
