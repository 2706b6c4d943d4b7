//! The acknowledged producer: every send resolves only when Kafka acknowledged the message
//! (idempotent, acks=all) or definitely failed, always within the produce timeout.
//!
//! Delivery invariants:
//! - a message counts as sent only on its delivery report, never on enqueue;
//! - a full local queue (`QueueFull`) is back-pressure: we wait for room until the deadline, and
//!   a message that never got room fails as [`ProduceError::TimedOut`] (the api answers 503);
//! - `message.timeout.ms` equals the produce timeout, so librdkafka gives up on a message at
//!   about the moment we stop waiting for it; a caller that got an error may retry with the
//!   same event id and the worker stores it once;
//! - a producer that librdkafka declares fatally failed (idempotence lost: an out-of-order
//!   sequence or unknown producer id it cannot recover from; fenced) fails every later send,
//!   so it is replaced by a fresh one: checked before each send and after any failed one. The
//!   send that met the fatal error answers retryable (503); the next one goes to the new
//!   producer. Each rebuild is logged once and counted in `pulse_kafka_client_recoveries_total`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::{self, Either};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tokio::time::Instant;

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::kafka::client;
use crate::metrics::KAFKA_CLIENT_RECOVERIES;

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
/// `partition` overrides the key's partition (the stored-events topic places each project
/// itself, so that readers can find it: `crate::stream`).
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
    pub headers: Option<OwnedHeaders>,
    pub partition: Option<i32>,
}

#[derive(Clone)]
pub struct AckProducer {
    shared: Arc<Shared>,
    timeout: Duration,
}

/// The producer in use and what builds its replacement.
struct Shared {
    settings: ClientConfig,
    /// `(generation, producer)`: the generation tells a rebuild whether another caller already
    /// replaced the producer it saw fail.
    current: RwLock<(u64, FutureProducer)>,
}

impl AckProducer {
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        let settings = client::producer(config);
        let producer = settings.create()?;
        KAFKA_CLIENT_RECOVERIES.with_label_values(&["producer"]);
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                current: RwLock::new((0, producer)),
            }),
            timeout: config.produce_timeout,
        })
    }

    /// The producer in use (a cheap handle) and its generation.
    fn current(&self) -> (u64, FutureProducer) {
        match self.shared.current.read() {
            Ok(guard) => (guard.0, guard.1.clone()),
            Err(poisoned) => {
                let guard = poisoned.into_inner();
                (guard.0, guard.1.clone())
            }
        }
    }

    /// Replaces the producer of `generation` if librdkafka says it failed for good. Returns
    /// the producer to use from now on.
    fn replace_if_fatal(&self, generation: u64, producer: FutureProducer) -> FutureProducer {
        let Some((code, reason)) = producer.client().fatal_error() else {
            return producer;
        };
        let mut guard = match self.shared.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.0 != generation {
            return guard.1.clone();
        }
        match self.shared.settings.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::error!(%code, reason, generation = generation + 1, "Kafka producer failed fatally; replaced it with a new one");
                KAFKA_CLIENT_RECOVERIES.with_label_values(&["producer"]).inc();
                let failed = std::mem::replace(&mut *guard, (generation + 1, fresh.clone())).1;
                // Destroying a client joins its threads: not on an async worker thread.
                drop(tokio::task::spawn_blocking(move || drop(failed)));
                fresh
            }
            Err(error) => {
                tracing::error!(%code, reason, %error, "Kafka producer failed fatally and a new one cannot be created");
                producer
            }
        }
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
        let (generation, producer) = self.current();
        let producer = self.replace_if_fatal(generation, producer);
        let mut pending = Vec::new();
        for message in messages {
            debug_assert!(!message.key.is_empty(), "empty Kafka key");
            let mut record = FutureRecord::to(message.topic)
                .key(message.key)
                .payload(message.payload);
            if let Some(headers) = message.headers {
                record = record.headers(headers);
            }
            if let Some(partition) = message.partition {
                record = record.partition(partition);
            }
            loop {
                match producer.send_result(record) {
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
        let results: Vec<_> = match tokio::time::timeout_at(deadline + REPORT_GRACE, all).await {
            Ok(results) => results
                .into_iter()
                .map(|result| result.map_err(|error| error.with_timeout(timeout)))
                .collect(),
            Err(_) => vec![Err(ProduceError::TimedOut(timeout)); count],
        };
        if results.iter().any(Result::is_err) {
            let _ = self.replace_if_fatal(generation, producer);
        }
        results
    }

    /// Waits until every queued message is delivered or `timeout` passed (shutdown).
    pub async fn flush(&self, timeout: Duration) -> std::result::Result<(), KafkaError> {
        let inner = self.current().1;
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Messages still in librdkafka's queue or in flight.
    pub fn in_flight(&self) -> i32 {
        self.current().1.in_flight_count()
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

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use rdkafka::types::RDKafkaRespErr;

    use super::*;
    use crate::kafka::admin;
    use crate::kafka::topics::TopicSpec;

    /// The shared test broker (scripts/test.sh starts it).
    fn test_config(prefix: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: std::env::var("PULSE_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            options: Vec::new(),
            topic_prefix: prefix.into(),
            partitions: 1,
            replication_factor: 1,
            produce_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(5),
            queue_max_messages: 1000,
            compression: "lz4".into(),
        }
    }

    /// Raises a real fatal error inside librdkafka, as lost idempotence would
    /// (`rd_kafka_test_fatal_error`, librdkafka's own hook for testing this path).
    #[allow(unsafe_code)]
    fn raise_fatal(producer: &FutureProducer) {
        let reason = CString::new("test: idempotence lost").expect("reason");
        // SAFETY: the client pointer is live for as long as `producer`, the reason a valid C
        // string for the call.
        let code = unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            )
        };
        assert_eq!(code, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR, "fatal error raised");
        assert!(producer.client().fatal_error().is_some());
    }

    fn send_one<'a>(topic: &'a str, payload: &'a [u8]) -> [Outgoing<'a>; 1] {
        [Outgoing {
            topic,
            key: b"k",
            payload,
            headers: None,
            partition: None,
        }]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fatally_failed_producer_is_replaced_and_sends_again() {
        let prefix = format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let config = test_config(&prefix);
        let topic = format!("{prefix}fatal");
        admin::ensure_topics(&config, &[TopicSpec::plain(&topic)])
            .await
            .expect("topic");
        let producer = AckProducer::new(&config).expect("producer");
        let recoveries = || KAFKA_CLIENT_RECOVERIES.with_label_values(&["producer"]).get();
        let before = recoveries();
        for result in producer.send_all(send_one(&topic, b"before")).await {
            result.expect("acked before the fatal error");
        }

        let (generation, failed) = producer.current();
        raise_fatal(&failed);
        for result in producer.send_all(send_one(&topic, b"after")).await {
            result.expect("acked by the replacement producer");
        }
        assert_eq!(producer.current().0, generation + 1, "replaced once");
        assert!(producer.current().1.client().fatal_error().is_none());
        assert!(recoveries() > before, "counted");
        let _ = admin::delete_topics(&config, &[&topic]).await;
    }
}
