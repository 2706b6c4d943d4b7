//! Monitor state changes on the live stream: after the recording transaction committed, each
//! change goes to the stored-events topic (`crate::stream`) as one message of kind
//! [`crate::stream::KIND_MONITOR`] on its project's partition ([`crate::stream::partition_for`],
//! keyed by the project id, like the events the persist worker announces), whose payload is the
//! change's JSON (`super::StateChange`: `monitor_id, name, state, previous, at, error_class,
//! error`). Every api replica's relay turns it into `{"type": "monitor", "data": …}` for the
//! project's stream clients.
//!
//! Only committed changes are announced. A process that dies between the commit and the send
//! loses that announcement (not the change: the monitor's state, its incident and its notices
//! are stored); a stream client can always read the state back from the api. docs/monitors.md
//! says so. Used by the scheduler's check loop and the api's "check now".

use rdkafka::message::{Header, OwnedHeaders};

use super::record::StateChange;
use crate::config::KafkaConfig;
use crate::kafka::producer::{AckProducer, Outgoing};
use crate::kafka::{admin, Topics};
use crate::stream;

/// Publishes state changes. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    producer: AckProducer,
    topic: String,
    partitions: i32,
}

impl Announcer {
    /// An announcer on `producer` for `topic` of `partitions` partitions.
    pub fn new(producer: AckProducer, topic: String, partitions: i32) -> Self {
        Self {
            producer,
            topic,
            partitions,
        }
    }

    /// An announcer on `producer` for the installation's stored-events topic (its partition
    /// count read from the broker).
    pub async fn for_installation(kafka: &KafkaConfig, producer: AckProducer) -> crate::Result<Self> {
        let topic = Topics::new(&kafka.topic_prefix).events_stored;
        let partitions = admin::partition_count(kafka, &topic).await?;
        Ok(Self::new(producer, topic, partitions))
    }

    /// Sends `change` and waits for Kafka's acknowledgement (bounded by the produce timeout).
    /// A failure is logged and counted by the caller's return value only: the change is stored.
    pub async fn announce(&self, change: &StateChange) -> bool {
        let Ok(payload) = serde_json::to_vec(change) else {
            return false;
        };
        let key = change.project_id.to_string();
        let message = Outgoing {
            topic: &self.topic,
            key: key.as_bytes(),
            payload: &payload,
            headers: Some(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: stream::KIND_HEADER,
                value: Some(stream::KIND_MONITOR.as_bytes()),
            })),
            partition: Some(stream::partition_for(change.project_id, self.partitions)),
        };
        match self.producer.send_all([message]).await.pop() {
            Some(Ok(_)) => true,
            Some(Err(error)) => {
                tracing::warn!(topic = %self.topic, monitor_id = %change.monitor_id, project_id = %change.project_id, %error, "Monitor state change not announced to live streams");
                false
            }
            None => false,
        }
    }
}
