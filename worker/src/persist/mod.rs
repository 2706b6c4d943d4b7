//! The persist group: events from `<prefix>events` stored exactly once in PostgreSQL, what
//! cannot be decoded sent to the dead-letter topic. One [`Handler`] of the generic consumer
//! loop (`crate::kafka::pipeline`), one module a step:
//! - [`decode`]: payload → envelope, or the reason it is undecodable;
//! - [`batch`]: what one batch holds (events, dead letters, offsets to store);
//! - [`writer`]: writing a batch with retries until done or abandoned at shutdown;
//! - [`store`]: the SQL (insert through `event_ids`, idempotent on the event id), in one
//!   transaction with the batch's [`rollups`] (per-minute summaries of the new events) and
//!   [`outbox`] (the webhook messages of the new events);
//! - [`dead_letter`]: the DLQ producer, with the reason in the headers;
//! - [`publish`]: after the commit, the new events announced on the stored-events topic.

pub(crate) mod batch;
pub mod dead_letter;
pub(crate) mod decode;
pub(crate) mod outbox;
pub mod publish;
pub(crate) mod rollups;
pub mod store;
pub(crate) mod writer;

use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Message};

use crate::kafka::pipeline::{Handler, Settled};
use crate::metrics;
use batch::{Batch, DeadLetter, Position};
use writer::{Outcome, Persister};

/// The persist group's handler: decodes into a [`Batch`] and hands it to the [`Persister`].
pub struct PersistHandler {
    persister: Persister,
    topic: String,
}

impl PersistHandler {
    pub fn new(persister: Persister, topic: String) -> Self {
        Self { persister, topic }
    }
}

impl Handler for PersistHandler {
    type Batch = Batch;

    fn batch(&self, capacity: usize) -> Batch {
        Batch::with_capacity(capacity, self.persister.publishes())
    }

    fn accept(&self, batch: &mut Batch, message: &BorrowedMessage<'_>) {
        metrics::EVENTS_CONSUMED.inc();
        let position = Position {
            partition: message.partition(),
            offset: message.offset(),
        };
        match decode::decode(message.payload()) {
            Ok(envelope) => batch.push_event(position, envelope, message.payload().unwrap_or_default()),
            Err(rejection) => {
                tracing::debug!(
                    topic = %self.topic,
                    partition = position.partition,
                    offset = position.offset,
                    reason = rejection.reason,
                    "Undecodable message; dead-lettering it"
                );
                batch.push_dead(DeadLetter {
                    position,
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    rejection,
                });
            }
        }
    }

    fn len(&self, batch: &Batch) -> usize {
        batch.len()
    }

    fn offsets(&self, batch: &Batch) -> Vec<(i32, i64)> {
        batch.offsets_to_store()
    }

    async fn process(self: Arc<Self>, batch: Batch) -> Settled {
        match self.persister.persist(batch).await {
            Outcome::Committed(_) => Settled::Done,
            Outcome::Abandoned => Settled::Abandoned,
        }
    }
}
