//! One batch: the messages read from the events topic since the previous batch, split into
//! decoded events and dead letters, plus the last offset seen on each partition.
//!
//! Offset invariant: a batch's offsets are stored only after all of its events are committed
//! in PostgreSQL and all of its dead letters are acknowledged by Kafka. For each partition the
//! batch stores `max(offset) + 1`: every message of that partition below it is either in this
//! batch or was committed before (a consumer only ever gets a partition from its committed
//! offset on), so nothing is skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use pulse_shared::envelope::EventEnvelope;
use uuid::Uuid;

use super::decode::Rejection;

/// Where a message sits in the events topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// An undecodable message, kept as it came (key and payload) with the reason.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub position: Position,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub rejection: Rejection,
}

/// Messages gathered for one database transaction.
#[derive(Debug, Default)]
pub struct Batch {
    events: Vec<EventEnvelope>,
    /// The payload each event came in, kept (first occurrence of an id) when the batch's new
    /// events are published to the stored-events topic after commit.
    payloads: Option<HashMap<Uuid, Vec<u8>>>,
    dead: Vec<DeadLetter>,
    /// Lowest and highest offset seen per partition.
    ranges: BTreeMap<i32, (i64, i64)>,
    messages: usize,
}

impl Batch {
    /// An empty batch; `keep_payloads` when its stored events will be published.
    pub fn with_capacity(messages: usize, keep_payloads: bool) -> Self {
        Self {
            events: Vec::with_capacity(messages),
            payloads: keep_payloads.then(|| HashMap::with_capacity(messages)),
            ..Self::default()
        }
    }

    fn saw(&mut self, position: Position) {
        self.messages += 1;
        self.ranges
            .entry(position.partition)
            .and_modify(|(first, last)| {
                *first = (*first).min(position.offset);
                *last = (*last).max(position.offset);
            })
            .or_insert((position.offset, position.offset));
    }

    pub fn push_event(&mut self, position: Position, envelope: EventEnvelope, payload: &[u8]) {
        self.saw(position);
        if let Some(payloads) = &mut self.payloads {
            payloads.entry(envelope.event.id).or_insert_with(|| payload.to_vec());
        }
        self.events.push(envelope);
    }

    /// Takes the kept payloads out (empty unless the batch keeps them).
    pub fn take_payloads(&mut self) -> HashMap<Uuid, Vec<u8>> {
        self.payloads.take().unwrap_or_default()
    }

    pub fn push_dead(&mut self, dead: DeadLetter) {
        self.saw(dead.position);
        self.dead.push(dead);
    }

    /// Messages in the batch, decodable or not.
    pub fn len(&self) -> usize {
        self.messages
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead
    }

    /// `(partition, next offset to read)` for every partition in the batch: what to store
    /// once the batch is committed (the Kafka convention: the committed offset is the next
    /// message to consume, one past the last processed).
    pub fn offsets_to_store(&self) -> Vec<(i32, i64)> {
        self.ranges
            .iter()
            .map(|(&partition, &(_, last))| (partition, last + 1))
            .collect()
    }

    /// `partition:first-last` per partition, for logs.
    pub fn describe_offsets(&self) -> String {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|(partition, (first, last))| format!("{partition}:{first}-{last}"))
            .collect();
        parts.join(" ")
    }

    /// Takes the decoded events out, duplicates of an id within the batch removed (the first
    /// occurrence wins), and returns them with how many were removed.
    pub fn take_unique_events(&mut self) -> (Vec<EventEnvelope>, usize) {
        dedup_by_id(std::mem::take(&mut self.events))
    }
}

/// Keeps the first event of each id, in order; returns the kept events and how many dropped.
pub fn dedup_by_id(events: Vec<EventEnvelope>) -> (Vec<EventEnvelope>, usize) {
    let before = events.len();
    let mut seen = HashSet::with_capacity(before);
    let unique: Vec<EventEnvelope> = events
        .into_iter()
        .filter(|envelope| seen.insert(envelope.event.id))
        .collect();
    let dropped = before - unique.len();
    (unique, dropped)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use pulse_shared::event::Event;
    use uuid::Uuid;

    use super::*;

    fn envelope(id: u128, event_type: &str) -> EventEnvelope {
        let event = Event {
            id: Uuid::from_u128(id),
            timestamp: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).single().expect("time"),
            event_type: event_type.into(),
            source: None,
            user_id: None,
            session_id: None,
            duration_ms: None,
            priority: None,
            status: None,
            tags: Vec::new(),
            data: serde_json::json!({}),
            metadata: serde_json::json!({}),
        };
        EventEnvelope::new(Uuid::from_u128(7), Utc::now(), event)
    }

    fn at(partition: i32, offset: i64) -> Position {
        Position { partition, offset }
    }

    #[test]
    fn dedup_keeps_the_first_of_each_id_in_order() {
        let events = vec![
            envelope(1, "first"),
            envelope(2, "a"),
            envelope(1, "second"),
            envelope(3, "b"),
            envelope(2, "again"),
            envelope(1, "third"),
        ];
        let (unique, dropped) = dedup_by_id(events);
        assert_eq!(dropped, 3);
        let kept: Vec<(u128, &str)> = unique
            .iter()
            .map(|e| (e.event.id.as_u128(), e.event.event_type.as_str()))
            .collect();
        assert_eq!(kept, [(1, "first"), (2, "a"), (3, "b")]);
    }

    #[test]
    fn dedup_of_nothing_is_nothing() {
        assert_eq!(dedup_by_id(Vec::new()).1, 0);
    }

    #[test]
    fn stores_one_past_the_highest_offset_of_each_partition() {
        let mut batch = Batch::with_capacity(8, true);
        assert!(batch.is_empty());
        batch.push_event(at(3, 10), envelope(1, "x"), b"one");
        batch.push_event(at(0, 5), envelope(2, "x"), b"two");
        batch.push_event(at(3, 11), envelope(1, "x"), b"one again");
        batch.push_dead(DeadLetter {
            position: at(3, 12),
            key: None,
            payload: Some(b"{".to_vec()),
            rejection: Rejection {
                reason: "malformed",
                message: "bad".into(),
            },
        });
        // After a rebalance a partition can be read again from its committed offset.
        batch.push_event(at(0, 4), envelope(4, "x"), b"four");
        assert_eq!(batch.len(), 5);
        assert_eq!(batch.dead_letters().len(), 1);
        assert_eq!(batch.offsets_to_store(), [(0, 6), (3, 13)]);
        assert_eq!(batch.describe_offsets(), "0:4-5 3:10-12");
        let payloads = batch.take_payloads();
        assert_eq!(payloads.len(), 3);
        assert_eq!(
            payloads[&Uuid::from_u128(1)],
            b"one",
            "the first payload of an id is kept"
        );
        let (events, dropped) = batch.take_unique_events();
        assert_eq!((events.len(), dropped), (3, 1));
    }

    #[test]
    fn a_batch_of_dead_letters_only_still_moves_its_partition() {
        let mut batch = Batch::default();
        batch.push_dead(DeadLetter {
            position: at(1, 0),
            key: Some(b"k".to_vec()),
            payload: None,
            rejection: Rejection {
                reason: "empty",
                message: "empty message".into(),
            },
        });
        assert_eq!(batch.offsets_to_store(), [(1, 1)]);
        assert!(batch.take_unique_events().0.is_empty());
    }
}
