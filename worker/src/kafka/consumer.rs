//! A group's consumer: creation and subscription, storing offsets after a batch settled, the
//! synchronous commit and the clean close at shutdown.
//!
//! Offsets: the client runs with `enable.auto.commit=true` and `enable.auto.offset.store=false`
//! (shared `kafka::client::consumer`). Nothing is stored by librdkafka on delivery; the loop
//! calls [`store_offsets`] once a batch is in PostgreSQL, and librdkafka commits what was
//! stored every `auto.commit.interval.ms`, on revocation and on close.
//!
//! [`store_offsets`] takes the *next* offset to read (last processed + 1) and hands it to
//! `rd_kafka_offsets_store`, which stores `.offset` as is. (rdkafka's `store_offset` and
//! `store_offset_from_message` wrap `rd_kafka_offset_store`, which adds 1 itself — mixing the
//! two conventions would skip or repeat a message per batch; the restart test proves ours.)

use std::sync::Arc;
use std::time::Duration;

use pulse_shared::config::KafkaConfig;
use pulse_shared::kafka::client;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::context::GroupContext;
use crate::error::Result;

/// The consumer every group uses, with Pulse's callbacks.
pub type GroupConsumer = StreamConsumer<GroupContext>;

/// Creates the consumer in `group` and subscribes it to `topic`.
pub fn subscribe(config: &KafkaConfig, group: &str, topic: &str) -> Result<Arc<GroupConsumer>> {
    let consumer: GroupConsumer = client::consumer(config, group).create_with_context(GroupContext::default())?;
    consumer.subscribe(&[topic])?;
    Ok(Arc::new(consumer))
}

/// Stores `(partition, next offset)` pairs for the next commit. A partition that was revoked
/// meanwhile cannot be stored (its next owner reads those messages again and the database
/// keeps them once), which is logged and otherwise harmless.
pub fn store_offsets(consumer: &GroupConsumer, topic: &str, offsets: &[(i32, i64)]) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for &(partition, next) in offsets {
        if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(next)) {
            tracing::error!(topic, partition, offset = next, %error, "Cannot build offset list");
            return;
        }
    }
    match consumer.store_offsets(&list) {
        Ok(()) => {
            for element in list.elements() {
                if let Err(error) = element.error() {
                    tracing::info!(
                        topic,
                        partition = element.partition(),
                        offset = ?element.offset(),
                        %error,
                        "Offset not stored (partition no longer assigned)"
                    );
                }
            }
        }
        Err(error) => tracing::info!(topic, %error, "Offsets not stored (partitions no longer assigned)"),
    }
}

/// Commits every stored offset and waits for the broker's answer.
pub async fn commit_sync(consumer: Arc<GroupConsumer>, timeout: Duration) {
    let commit = tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
    match tokio::time::timeout(timeout, commit).await {
        Ok(Ok(Ok(()))) => tracing::info!("Committed stored offsets"),
        Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {
            tracing::info!("No new offsets to commit")
        }
        Ok(Ok(Err(error))) => tracing::warn!(%error, "Final offset commit failed"),
        Ok(Err(error)) => tracing::warn!(%error, "Final offset commit task failed"),
        Err(_) => tracing::warn!(?timeout, "Final offset commit timed out"),
    }
}

/// Leaves the group: drops the last handle of the consumer, which closes it (revocation
/// callback, final auto-commit, LeaveGroup). Blocking, so it runs off the async threads.
pub async fn close(consumer: Arc<GroupConsumer>, timeout: Duration) {
    let close = tokio::task::spawn_blocking(move || match Arc::try_unwrap(consumer) {
        Ok(consumer) => drop(consumer),
        Err(_) => tracing::warn!("Consumer still shared at close; it closes when its last handle drops"),
    });
    match tokio::time::timeout(timeout, close).await {
        Ok(Ok(())) => tracing::info!("Consumer closed; left the group"),
        Ok(Err(error)) => tracing::warn!(%error, "Consumer close task failed"),
        Err(_) => tracing::warn!(?timeout, "Consumer close timed out"),
    }
}
