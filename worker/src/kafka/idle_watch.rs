//! The idle-consumer watch: a consumer left with no partitions while its group has partitions
//! that no member consumes re-joins the group.
//!
//! Kafka never does this to a consumer, but a broker can: Tansu 0.6 keeps a SIGKILLed member
//! in the group for good and hands the newcomer an empty assignment, so the worker would sit
//! idle while events pile up (docs/operations.md). Every [`CHECK_EVERY`] the watch looks at
//! this consumer's assignment; when it is empty it asks the broker for the group's members and
//! their assignments (`DescribeGroups`, decoded by [`assigned_partitions`]) and the topic's
//! partition count. Two checks in a row that find this consumer idle, the group `Stable` and
//! partitions nobody owns trigger an unsubscribe and subscribe (a fresh JoinGroup), logged
//! once and counted in `pulse_kafka_client_recoveries_total{client="consumer"}`. An idle
//! consumer in a group with more members than partitions is normal and left alone.
//!
//! The watch holds only a weak handle, so it never keeps the consumer from closing at shutdown.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use pulse_shared::metrics::KAFKA_CLIENT_RECOVERIES;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use super::consumer::GroupConsumer;

/// Time between two checks; above the session timeout (10 s), so a rebalance that is merely
/// slow has settled by the second one.
pub const CHECK_EVERY: Duration = Duration::from_secs(15);
/// Bound of each metadata or group request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This consumer has partitions.
    Busy,
    /// No partitions here, and every partition has an owner (or the group is rebalancing).
    IdleByDesign,
    /// No partitions here while these partitions have no owner in a stable group.
    Starved(Vec<i32>),
}

/// Partitions of `0..partitions` that no member owns.
pub fn unowned(partitions: i32, owned: &BTreeSet<i32>) -> Vec<i32> {
    (0..partitions).filter(|partition| !owned.contains(partition)).collect()
}

/// The partitions of `topic` in one member's assignment, as the classic consumer protocol
/// encodes it (`ConsumerProtocolAssignment`, versions 0 to 3: int16 version, then an array of
/// topic name and int32 partitions; user data after it is ignored). `None` if malformed.
pub fn assigned_partitions(assignment: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut reader = Reader(assignment);
    let _version = reader.i16()?;
    let topics = reader.i32()?;
    let mut found = Vec::new();
    for _ in 0..topics.max(0) {
        let name_len = usize::try_from(reader.i16()?).ok()?;
        let name = reader.take(name_len)?;
        let count = reader.i32()?;
        for _ in 0..count.max(0) {
            let partition = reader.i32()?;
            if name == topic.as_bytes() {
                found.push(partition);
            }
        }
    }
    Some(found)
}

/// Big-endian reads over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// One check against the broker (blocking: run it off the async threads).
pub fn check(consumer: &GroupConsumer, group: &str, topic: &str) -> Result<Verdict, rdkafka::error::KafkaError> {
    if consumer.assignment()?.count() > 0 {
        return Ok(Verdict::Busy);
    }
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as i32);
    let groups = consumer.fetch_group_list(Some(group), REQUEST_TIMEOUT)?;
    let Some(description) = groups.groups().iter().find(|g| g.name() == group) else {
        return Ok(Verdict::IdleByDesign);
    };
    if description.state() != "Stable" {
        return Ok(Verdict::IdleByDesign);
    }
    let owned: BTreeSet<i32> = description
        .members()
        .iter()
        .filter_map(|member| member.assignment())
        .filter_map(|bytes| assigned_partitions(bytes, topic))
        .flatten()
        .collect();
    match unowned(partitions, &owned) {
        free if free.is_empty() => Ok(Verdict::IdleByDesign),
        free => Ok(Verdict::Starved(free)),
    }
}

/// Runs the watch until `stop`. `consumer` is weak: once the pipeline closed it, the watch ends.
pub async fn run(consumer: Weak<GroupConsumer>, group: String, topic: String, stop: CancellationToken) {
    KAFKA_CLIENT_RECOVERIES.with_label_values(&["consumer"]);
    let mut starved_before = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let Some(strong) = consumer.upgrade() else { return };
        let (group, topic) = (group.clone(), topic.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let verdict = check(&strong, &group, &topic);
            if let Ok(Verdict::Starved(_)) = &verdict {
                if starved_before {
                    rejoin(&strong, &topic);
                }
            }
            verdict
        })
        .await;
        match checked {
            Ok(Ok(Verdict::Starved(free))) => {
                if starved_before {
                    tracing::warn!(unowned = ?free, "Consumer had no partitions while the group left some unconsumed; re-joined the group");
                    KAFKA_CLIENT_RECOVERIES.with_label_values(&["consumer"]).inc();
                    starved_before = false;
                } else {
                    starved_before = true;
                }
            }
            Ok(Ok(_)) => starved_before = false,
            Ok(Err(error)) => tracing::debug!(%error, "Idle check failed; trying again later"),
            Err(error) => tracing::warn!(%error, "Idle check task failed"),
        }
    }
}

/// A fresh JoinGroup: leave by unsubscribing, then subscribe again.
fn rejoin(consumer: &Arc<GroupConsumer>, topic: &str) {
    consumer.unsubscribe();
    if let Err(error) = consumer.subscribe(&[topic]) {
        tracing::error!(%error, topic, "Re-subscribing after an idle assignment failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ConsumerProtocolAssignment` as Kafka clients write it.
    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                out.extend(partition.to_be_bytes());
            }
        }
        out.extend((user_data.len() as i32).to_be_bytes());
        out.extend(user_data);
        out
    }

    #[test]
    fn reads_the_partitions_of_one_topic_from_an_assignment() {
        let bytes = encode(3, &[("other", &[0, 1]), ("pulse.events", &[3, 1])], b"user");
        assert_eq!(assigned_partitions(&bytes, "pulse.events"), Some(vec![3, 1]));
        assert_eq!(assigned_partitions(&bytes, "missing"), Some(vec![]));
        assert_eq!(assigned_partitions(&encode(0, &[], b""), "pulse.events"), Some(vec![]));
    }

    #[test]
    fn a_truncated_assignment_is_malformed_not_a_panic() {
        let bytes = encode(1, &[("pulse.events", &[0, 1, 2])], b"");
        for cut in 0..bytes.len() - 8 {
            assert_eq!(assigned_partitions(&bytes[..cut], "pulse.events"), None, "cut at {cut}");
        }
    }

    #[test]
    fn lists_partitions_nobody_owns() {
        assert_eq!(unowned(4, &BTreeSet::from([0, 2])), vec![1, 3]);
        assert!(unowned(2, &BTreeSet::from([0, 1])).is_empty());
        assert!(unowned(0, &BTreeSet::new()).is_empty());
    }
}
