//! Reads the stored-events topic (every partition, from its end, no consumer group, nothing
//! committed) and hands each message's events to the hub. One relay per api replica, so every
//! replica's clients see every stored event of their project whichever worker stored it.
//!
//! A message of a project without a client on this replica is skipped undecoded: with no
//! client connected the relay costs one fetch of the topic's bytes. librdkafka reconnects to a
//! restarted broker by itself; only a consumer that failed for good is rebuilt, and it goes on
//! from the offsets the relay had reached.

use std::sync::Arc;
use std::time::Duration;

use pulse_shared::config::KafkaConfig;
use pulse_shared::envelope::EventEnvelope;
use pulse_shared::kafka::{admin, client};
use pulse_shared::metric::MetricEnvelope;
use pulse_shared::stream;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::hub::StreamHub;
use super::item::Item;
use crate::metrics;

/// Pause before the relay starts over after a failure to build or assign its consumer.
const RESTART_PAUSE: Duration = Duration::from_secs(2);
/// Longest wait for the topic's metadata and ends, each request.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait at start for the stored-events topic to be readable.
const POSITION_PATIENCE: Duration = Duration::from_secs(30);

/// The relay of one replica, positioned and ready to run.
pub struct Relay {
    kafka: KafkaConfig,
    topic: String,
    consumer: StreamConsumer,
    /// Next offset to read, per partition: where a rebuilt consumer goes on from.
    next: Vec<i64>,
}

impl Relay {
    /// Builds the consumer and places it at the current end of every partition. Called
    /// before the api listens, so every event stored after a client could connect is relayed
    /// (an `Offset::End` resolved lazily at the first fetch could land after the first events).
    /// A topic created a moment ago may have no leader yet: asked again for up to
    /// [`POSITION_PATIENCE`].
    pub async fn start(kafka: &KafkaConfig, topic: &str) -> pulse_shared::Result<Self> {
        let deadline = tokio::time::Instant::now() + POSITION_PATIENCE;
        loop {
            match Self::position(kafka, topic).await {
                Ok(relay) => return Ok(relay),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%topic, %error, "Stored-events topic not readable yet; asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn position(kafka: &KafkaConfig, topic: &str) -> pulse_shared::Result<Self> {
        let partitions = admin::partition_count(kafka, topic).await?;
        let consumer: StreamConsumer = client::reader(kafka).create()?;
        let (consumer, next) = {
            let name = topic.to_owned();
            tokio::task::spawn_blocking(move || {
                let mut ends = Vec::new();
                for partition in 0..partitions {
                    ends.push(consumer.fetch_watermarks(&name, partition, METADATA_TIMEOUT)?.1);
                }
                Ok::<_, rdkafka::error::KafkaError>((consumer, ends))
            })
            .await
            .map_err(|error| pulse_shared::Error::Topic {
                topic: topic.to_owned(),
                reason: error.to_string(),
            })??
        };
        let relay = Self {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            consumer,
            next,
        };
        relay.assign()?;
        Ok(relay)
    }

    fn assign(&self) -> pulse_shared::Result<()> {
        let mut assignment = TopicPartitionList::new();
        for (partition, next) in self.next.iter().enumerate() {
            let partition = i32::try_from(partition).unwrap_or(i32::MAX);
            assignment.add_partition_offset(&self.topic, partition, Offset::Offset(*next))?;
        }
        self.consumer.assign(&assignment)?;
        Ok(())
    }

    /// Runs until `stop`; a consumer that fails is rebuilt and goes on from where it was.
    pub async fn run(mut self, hub: Arc<StreamHub>, stop: CancellationToken) {
        tracing::info!(topic = %self.topic, "Live-stream relay reading stored events");
        loop {
            self.relay(&hub, &stop).await;
            if stop.is_cancelled() {
                return;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RESTART_PAUSE) => {}
            }
            match client::reader(&self.kafka).create::<StreamConsumer>() {
                Ok(consumer) => {
                    self.consumer = consumer;
                    if let Err(error) = self.assign() {
                        tracing::warn!(topic = %self.topic, %error, "Live-stream relay cannot assign its partitions; retrying");
                    }
                }
                Err(error) => {
                    tracing::warn!(topic = %self.topic, %error, "Live-stream relay cannot rebuild its consumer; retrying")
                }
            }
        }
    }

    /// Reads and dispatches until `stop` or a fatal consumer error.
    async fn relay(&mut self, hub: &StreamHub, stop: &CancellationToken) {
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = self.consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    if self.consumer.client().fatal_error().is_some() {
                        tracing::warn!(%error, "Live-stream relay: consumer failed; rebuilding it");
                        return;
                    }
                    tracing::debug!(%error, "Live-stream relay: Kafka error (librdkafka retries)");
                    continue;
                }
            };
            if let Some(next) = usize::try_from(message.partition())
                .ok()
                .and_then(|partition| self.next.get_mut(partition))
            {
                *next = message.offset() + 1;
            }
            let Some(project) = message
                .key()
                .and_then(|key| std::str::from_utf8(key).ok())
                .and_then(|key| key.parse::<Uuid>().ok())
            else {
                continue;
            };
            if !hub.watches(&project) {
                continue;
            }
            let items = items_of(
                message.offset(),
                kind_of(&message),
                message.payload().unwrap_or_default(),
            );
            metrics::STREAM_RELAYED.inc_by(items.len() as u64);
            hub.dispatch(project, &items);
        }
    }
}

/// The kind a stored-events message declares (`pulse_shared::stream::KIND_HEADER`; none: events).
pub fn kind_of<M: Message>(message: &M) -> &'static str {
    let declared = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == stream::KIND_HEADER)
            .and_then(|header| header.value)
    });
    match declared {
        Some(value) if value == stream::KIND_METRIC.as_bytes() => stream::KIND_METRIC,
        Some(value) if value == stream::KIND_MONITOR.as_bytes() => stream::KIND_MONITOR,
        _ => stream::KIND_EVENT,
    }
}

/// The items of one stored-events message of `kind` (an undecodable line is skipped and logged).
pub fn items_of(offset: i64, kind: &str, payload: &[u8]) -> Vec<Arc<Item>> {
    if kind == stream::KIND_MONITOR {
        // One state change per message.
        return match Item::monitor(offset, payload) {
            Some(item) => vec![Arc::new(item)],
            None => {
                tracing::warn!(
                    offset,
                    "Undecodable monitor state change in the stored-events topic; skipped"
                );
                Vec::new()
            }
        };
    }
    let lines = payload.split(|byte| *byte == b'\n').filter(|line| !line.is_empty());
    if kind == stream::KIND_METRIC {
        return lines
            .filter_map(|line| match MetricEnvelope::decode(Some(line)) {
                Ok(envelope) => Some(Arc::new(Item::metric(offset, envelope))),
                Err(error) => {
                    tracing::warn!(offset, %error, "Undecodable metric line in the stored-events topic; skipped");
                    None
                }
            })
            .collect();
    }
    lines
        .filter_map(|line| match EventEnvelope::decode(Some(line)) {
            Ok(envelope) => Some(Arc::new(Item::event(offset, envelope))),
            Err(error) => {
                tracing::warn!(offset, %error, "Undecodable line in the stored-events topic; skipped");
                None
            }
        })
        .collect()
}
