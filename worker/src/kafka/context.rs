//! The consumer's librdkafka callbacks: rebalances, commits and statistics.
//!
//! They run on the thread that polls the consumer, i.e. inside the consumer loop's `recv`, so
//! they stay short. On revocation the stored offsets are committed synchronously before the
//! partitions go, so the next owner starts right after the last committed batch. A batch still
//! in flight for a revoked partition is not waited for: its offsets can no longer be stored,
//! the next owner reads those messages again (for persist, the `event_ids` check stores them once).

use std::collections::HashSet;
use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::metrics;

/// Callbacks of a group's consumer.
#[derive(Default)]
pub struct GroupContext {
    /// `(topic, partition)` label pairs of `pulse_consumer_lag` currently exported.
    lag_series: Mutex<HashSet<(String, i32)>>,
}

/// `topic[partition, …]` lists for logs.
pub fn describe(list: &TopicPartitionList) -> String {
    let mut parts: Vec<(String, i32)> = list
        .elements()
        .iter()
        .map(|element| (element.topic().to_owned(), element.partition()))
        .collect();
    parts.sort();
    let mut text = String::new();
    let mut current: Option<&str> = None;
    for (topic, partition) in &parts {
        if current != Some(topic.as_str()) {
            if current.is_some() {
                text.push_str("] ");
            }
            text.push_str(topic);
            text.push('[');
            current = Some(topic);
        } else {
            text.push(',');
        }
        text.push_str(&partition.to_string());
    }
    if current.is_some() {
        text.push(']');
    }
    text
}

fn is_no_offset(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset)
}

impl ClientContext for GroupContext {
    /// Exports `consumer_lag` of every partition that has one (assigned and with a committed
    /// or fetched position) and drops the series of partitions that no longer do.
    fn stats(&self, statistics: Statistics) {
        let mut current = HashSet::new();
        for (topic, stats) in &statistics.topics {
            for (&partition, partition_stats) in &stats.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if partition < 0 || partition_stats.consumer_lag < 0 {
                    continue;
                }
                metrics::CONSUMER_LAG
                    .with_label_values(&[topic.as_str(), &partition.to_string()])
                    .set(partition_stats.consumer_lag);
                current.insert((topic.clone(), partition));
            }
        }
        let Ok(mut exported) = self.lag_series.lock() else {
            return;
        };
        for (topic, partition) in exported.difference(&current) {
            let _ = metrics::CONSUMER_LAG.remove_label_values(&[topic.as_str(), &partition.to_string()]);
        }
        *exported = current;
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = %describe(partitions), "Partitions revoked; committing stored offsets");
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => tracing::info!("Committed stored offsets before revocation"),
                    Err(error) if is_no_offset(&error) => tracing::debug!("No new offsets to commit"),
                    Err(error) => tracing::warn!(%error, "Commit on revocation failed"),
                }
            }
            Rebalance::Assign(partitions) if partitions.count() == 0 => {
                tracing::warn!("Assigned no partitions (more consumers in the group than partitions?)");
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = %describe(partitions), "Partitions assigned");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "Rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                for element in offsets.elements() {
                    tracing::debug!(
                        topic = element.topic(),
                        partition = element.partition(),
                        offset = ?element.offset(),
                        "Committed offset"
                    );
                }
            }
            Err(error) if is_no_offset(&error) => {}
            Err(error) => tracing::warn!(%error, partitions = %describe(offsets), "Offset commit failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Offset;

    use super::*;

    #[test]
    fn describes_partition_lists_compactly() {
        let mut list = TopicPartitionList::new();
        assert_eq!(describe(&list), "");
        list.add_partition("t", 3);
        list.add_partition("t", 0);
        list.add_partition_offset("u", 1, Offset::Offset(5)).expect("offset");
        assert_eq!(describe(&list), "t[0,3] u[1]");
    }

    #[test]
    fn stats_export_lag_and_forget_partitions_that_left() {
        let context = GroupContext::default();
        let mut statistics = Statistics::default();
        let mut topic = rdkafka::statistics::Topic::default();
        for (partition, lag) in [(-1, 9), (0, 42), (1, -1)] {
            topic.partitions.insert(
                partition,
                rdkafka::statistics::Partition {
                    partition,
                    consumer_lag: lag,
                    ..Default::default()
                },
            );
        }
        statistics.topics.insert("ctx-test.events".into(), topic);
        context.stats(statistics.clone());
        let lag = |p: &str| metrics::CONSUMER_LAG.get_metric_with_label_values(&["ctx-test.events", p]);
        assert_eq!(lag("0").expect("series").get(), 42);

        statistics.topics.clear();
        context.stats(statistics);
        let rendered = pulse_shared::metrics::render();
        assert!(!rendered.contains("ctx-test.events"), "{rendered}");
    }
}
