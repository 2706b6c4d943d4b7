//! Announces what a batch stored: after its transaction committed, the envelopes of the events
//! (or, for the metrics group, the named-metric points) that were new go to the stored-events topic (`pulse_shared::stream`), which every api
//! replica reads for its live streams. Never an event that could still be lost: only committed
//! rows, and only the ones this commit inserted (a redelivered batch announces nothing).
//!
//! The send runs in its own task: the batch's offsets do not wait for it, so the stream costs
//! the persist loop a copy of each payload and nothing else on its critical path. Kafka
//! trouble is retried by the producer up to its timeout, then counted
//! (`pulse_stream_publish_failures_total`) and logged; storage is the source of truth and a
//! stream client can always read back with `GET /v1/events`. A worker killed between commit
//! and send loses that announcement (not the events): docs/stream.md says so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use pulse_shared::kafka::producer::{AckProducer, Outgoing};
use pulse_shared::stream;
use rdkafka::message::{Header, OwnedHeaders};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::store::Columns;
use crate::metrics;

/// Publishes stored events; shared by the persist tasks (clones share the sends in flight).
#[derive(Clone)]
pub struct StoredPublisher {
    producer: AckProducer,
    topic: String,
    partitions: i32,
    sends: TaskTracker,
}

impl StoredPublisher {
    pub fn new(producer: AckProducer, topic: String, partitions: i32) -> Self {
        Self {
            producer,
            topic,
            partitions,
            sends: TaskTracker::new(),
        }
    }

    /// Sends the payloads of the `new` events of `columns` (taken from `payloads`), one
    /// message per project (or more past the size bound), in the background.
    pub fn publish(&self, columns: &Columns, new: &HashSet<Uuid>, mut payloads: HashMap<Uuid, Vec<u8>>) {
        let rows = columns
            .ids
            .iter()
            .zip(&columns.project_ids)
            .filter(|(id, _)| new.contains(id))
            .filter_map(|(id, project)| Some((*project, payloads.remove(id)?)))
            .collect();
        self.publish_rows(stream::KIND_EVENT, rows);
    }

    /// Sends `(project, envelope payload)` rows of `kind` (`pulse_shared::stream::KIND_*`), one
    /// message per project (or more past the size bound), in the background.
    pub fn publish_rows(&self, kind: &'static str, rows: Vec<(Uuid, Vec<u8>)>) {
        if rows.is_empty() {
            return;
        }
        let mut by_project: BTreeMap<Uuid, Vec<Vec<u8>>> = BTreeMap::new();
        for (project, payload) in rows {
            by_project.entry(project).or_default().push(payload);
        }
        let messages: Vec<(Uuid, usize, Vec<u8>)> = by_project
            .into_iter()
            .flat_map(|(project, payloads)| {
                let count = payloads.len();
                let joined = stream::join(payloads.iter().map(Vec::as_slice));
                let parts = joined.len().max(1);
                // Counts per message are for the metric only: spread evenly is close enough.
                joined.into_iter().map(move |message| (project, count / parts, message))
            })
            .collect();
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let partitions = self.partitions;
        self.sends.spawn(async move {
            let keys: Vec<String> = messages.iter().map(|(project, _, _)| project.to_string()).collect();
            // Collected first: a lazy iterator of borrowing closures makes this future lose `Send`.
            let mut outgoing = Vec::with_capacity(messages.len());
            for ((project, _, payload), key) in messages.iter().zip(&keys) {
                outgoing.push(Outgoing {
                    topic: &topic,
                    key: key.as_bytes(),
                    payload,
                    headers: Some(OwnedHeaders::new_with_capacity(1).insert(Header {
                        key: stream::KIND_HEADER,
                        value: Some(kind.as_bytes()),
                    })),
                    partition: Some(stream::partition_for(*project, partitions)),
                });
            }
            let results = producer.send_all(outgoing).await;
            for ((project, rows, _), result) in messages.iter().zip(results) {
                match result {
                    Ok(_) => metrics::STREAM_PUBLISHED.inc_by(*rows as u64),
                    Err(error) => {
                        metrics::STREAM_PUBLISH_FAILURES.inc();
                        tracing::warn!(%topic, kind, project_id = %project, rows, %error, "Stored rows not announced to live streams");
                    }
                }
            }
        });
    }

    /// Waits (at most `timeout`) for the sends in flight: at shutdown, after the last batch.
    pub async fn finish(&self, timeout: Duration) {
        self.sends.close();
        if tokio::time::timeout(timeout, self.sends.wait()).await.is_err() {
            tracing::warn!(
                in_flight = self.sends.len(),
                "Shutdown before every stored-events announcement was sent"
            );
        }
    }
}
