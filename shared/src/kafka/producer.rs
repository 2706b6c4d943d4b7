//! The acknowledged producer: every send resolves only when Kafka acknowledged the message
//! (idempotent, acks=all) or definitely failed, always within the produce timeout.
//!
//! Delivery invariants:
//! - a message counts as sent only on its delivery report, never on enqueue;
//! - a full local queue (`QueueFull`) is back-pressure: we wait for room until the deadline, and
//!   a message that never got room fails as [`ProduceError::TimedOut`] (the api answers 503);
//! - `message.timeout.ms` equals the produce timeout, so librdkafka gives up on a message at
//!   about the moment we stop waiting for it; a caller that got an error may retry with the
//!   same event id and the worker stores it once.

use std::time::Duration;

use futures::future::{self, Either};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio::time::Instant;

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::kafka::client;

/// Wait between attempts to enqueue while the local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);
/// Slack past the produce timeout for librdkafka's own timeout scan to report.
const REPORT_GRACE: Duration = Duration::from_millis(500);

/// Why a message was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    /// Kafka could not take or acknowledge it in time (broker down, queue full). Retryable.
    #[error("kafka did not acknowledge within {0:?}")]
    TimedOut(Duration),
    /// Kafka answered with an error that a retry may cure. Retryable.
    #[error("kafka unavailable: {0}")]
    Unavailable(KafkaError),
    /// Kafka will never take this message (too large, invalid). Not retryable.
    #[error("kafka rejected the message: {0}")]
    Rejected(KafkaError),
}

impl ProduceError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }

    fn classify(error: KafkaError) -> Self {
        match error.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::TopicAuthorizationFailed,
            ) => Self::Rejected(error),
            Some(RDKafkaErrorCode::MessageTimedOut) => Self::TimedOut(Duration::ZERO),
            _ => Self::Unavailable(error),
        }
    }
}

/// Where an acknowledged message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// A message to send. `key` must not be empty: an empty key puts everything on one partition.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
    pub headers: Option<OwnedHeaders>,
}

#[derive(Clone)]
pub struct AckProducer {
    inner: FutureProducer,
    timeout: Duration,
}

impl AckProducer {
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self {
            inner: client::producer(config).create()?,
            timeout: config.produce_timeout,
        })
    }

    /// The produce timeout every send is bounded by.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends every message and waits for all acknowledgements. Results are in input order.
    pub async fn send_all<'a>(
        &self,
        messages: impl IntoIterator<Item = Outgoing<'a>>,
    ) -> Vec<Result<Acked, ProduceError>> {
        let deadline = Instant::now() + self.timeout;
        let mut pending = Vec::new();
        for message in messages {
            debug_assert!(!message.key.is_empty(), "empty Kafka key");
            let mut record = FutureRecord::to(message.topic)
                .key(message.key)
                .payload(message.payload);
            if let Some(headers) = message.headers {
                record = record.headers(headers);
            }
            loop {
                match self.inner.send_result(record) {
                    Ok(delivery) => {
                        pending.push(Either::Left(delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        if Instant::now() >= deadline {
                            pending.push(Either::Right(future::ready(Err(ProduceError::TimedOut(self.timeout)))));
                            break;
                        }
                        record = returned;
                        tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                    }
                    Err((error, _)) => {
                        pending.push(Either::Right(future::ready(Err(ProduceError::classify(error)))));
                        break;
                    }
                }
            }
        }
        let count = pending.len();
        let all = future::join_all(pending.into_iter().map(|delivery| async move {
            match delivery {
                Either::Left(delivery) => match delivery.await {
                    Ok(Ok(delivered)) => Ok(Acked {
                        partition: delivered.partition,
                        offset: delivered.offset,
                    }),
                    Ok(Err((error, _))) => Err(ProduceError::classify(error)),
                    Err(_canceled) => Err(ProduceError::TimedOut(Duration::ZERO)),
                },
                Either::Right(ready) => ready.await,
            }
        }));
        let timeout = self.timeout;
        match tokio::time::timeout_at(deadline + REPORT_GRACE, all).await {
            Ok(results) => results
                .into_iter()
                .map(|result| result.map_err(|error| error.with_timeout(timeout)))
                .collect(),
            Err(_) => vec![Err(ProduceError::TimedOut(timeout)); count],
        }
    }

    /// Waits until every queued message is delivered or `timeout` passed (shutdown).
    pub async fn flush(&self, timeout: Duration) -> std::result::Result<(), KafkaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Messages still in librdkafka's queue or in flight.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }
}

impl ProduceError {
    fn with_timeout(self, timeout: Duration) -> Self {
        match self {
            Self::TimedOut(_) => Self::TimedOut(timeout),
            other => other,
        }
    }
}
