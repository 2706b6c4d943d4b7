//! Sends undecodable messages to the dead-letter topic (`<prefix>events.dlq`; the metrics
//! group uses the same sink for `<prefix>metrics.dlq`) and waits for
//! Kafka's acknowledgement before the batch may store their offsets.
//!
//! Each dead letter carries the original key and payload untouched, plus headers:
//! `pulse-dlq-reason` (the decode error), `pulse-source-topic`, `pulse-source-partition` and
//! `pulse-source-offset` (decimal text). A message that had no key is sent with its source
//! partition number as key (Kafka keys must not be empty here).
//!
//! Failures are retried with back-off until acknowledged — a dead letter is never dropped to
//! keep the partition moving. Only shutdown interrupts the retries; the batch is then
//! abandoned with its offsets unstored, so the dead letter may be sent again after restart
//! (the dead-letter topic is at-least-once; the source headers identify repeats).

use std::time::Duration;

use prometheus::IntCounterVec;
use pulse_shared::kafka::producer::{AckProducer, Outgoing};
use rdkafka::message::{Header, OwnedHeaders};
use tokio_util::sync::CancellationToken;

use super::batch::DeadLetter;
use pulse_shared::backoff::{self, Backoff};

pub const REASON_HEADER: &str = "pulse-dlq-reason";
pub const SOURCE_TOPIC_HEADER: &str = "pulse-source-topic";
pub const SOURCE_PARTITION_HEADER: &str = "pulse-source-partition";
pub const SOURCE_OFFSET_HEADER: &str = "pulse-source-offset";

/// Where dead letters go and how hard to try.
pub struct DeadLetterSink {
    pub producer: AckProducer,
    /// Counts acknowledged dead letters by reason (`pulse_events_dead_lettered_total` for the
    /// persist group, `pulse_metric_points_dead_lettered_total` for the metrics group).
    pub dead_lettered: &'static IntCounterVec,
    pub source_topic: String,
    pub dlq_topic: String,
    pub retry_max: Duration,
}

/// The headers of one dead letter.
pub fn headers(letter: &DeadLetter, source_topic: &str) -> OwnedHeaders {
    let partition = letter.position.partition.to_string();
    let offset = letter.position.offset.to_string();
    OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: REASON_HEADER,
            value: Some(letter.rejection.message.as_bytes()),
        })
        .insert(Header {
            key: SOURCE_TOPIC_HEADER,
            value: Some(source_topic.as_bytes()),
        })
        .insert(Header {
            key: SOURCE_PARTITION_HEADER,
            value: Some(partition.as_bytes()),
        })
        .insert(Header {
            key: SOURCE_OFFSET_HEADER,
            value: Some(offset.as_bytes()),
        })
}

/// The key a dead letter is sent with: the original one, or the source partition if it had
/// none (an empty key is never sent).
pub fn key(letter: &DeadLetter) -> Vec<u8> {
    match &letter.key {
        Some(key) if !key.is_empty() => key.clone(),
        _ => letter.position.partition.to_string().into_bytes(),
    }
}

impl DeadLetterSink {
    /// Sends every letter and returns once all are acknowledged (`true`), or `false` if
    /// shutdown began while some were still failing.
    pub async fn send_all(&self, letters: &[DeadLetter], stop: &CancellationToken) -> bool {
        let keys: Vec<Vec<u8>> = letters.iter().map(key).collect();
        let mut pending: Vec<usize> = (0..letters.len()).collect();
        let mut backoff = Backoff::new(self.retry_max);
        while !pending.is_empty() {
            // Collected first: a lazy iterator of borrowing closures makes this future lose `Send`.
            let mut outgoing = Vec::with_capacity(pending.len());
            for &index in &pending {
                outgoing.push(Outgoing {
                    topic: &self.dlq_topic,
                    key: &keys[index],
                    payload: letters[index].payload.as_deref().unwrap_or_default(),
                    headers: Some(headers(&letters[index], &self.source_topic)),
                    partition: None,
                });
            }
            let results = self.producer.send_all(outgoing).await;
            let mut failed = Vec::new();
            for (&index, result) in pending.iter().zip(results) {
                let letter = &letters[index];
                match result {
                    Ok(_) => {
                        self.dead_lettered.with_label_values(&[letter.rejection.reason]).inc();
                        tracing::warn!(
                            topic = %self.source_topic,
                            partition = letter.position.partition,
                            offset = letter.position.offset,
                            reason = letter.rejection.reason,
                            error = %letter.rejection.message,
                            dlq = %self.dlq_topic,
                            "Dead-lettered an undecodable message"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(
                            topic = %self.source_topic,
                            partition = letter.position.partition,
                            offset = letter.position.offset,
                            retryable = error.is_retryable(),
                            %error,
                            "Dead-letter produce failed; retrying"
                        );
                        failed.push(index);
                    }
                }
            }
            pending = failed;
            if !pending.is_empty() && !backoff::sleep_unless_stopped(backoff.next_delay(), stop).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;
    use crate::persist::batch::Position;
    use crate::persist::decode::Rejection;

    fn letter(key: Option<&[u8]>) -> DeadLetter {
        DeadLetter {
            position: Position {
                partition: 5,
                offset: 1234,
            },
            key: key.map(<[u8]>::to_vec),
            payload: Some(b"{oops".to_vec()),
            rejection: Rejection {
                reason: "malformed",
                message: "not a valid event envelope: key must be a string".into(),
            },
        }
    }

    #[test]
    fn headers_name_the_reason_and_the_source() {
        let headers = headers(&letter(None), "pulse.events");
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    REASON_HEADER.into(),
                    "not a valid event envelope: key must be a string".into()
                ),
                (SOURCE_TOPIC_HEADER.into(), "pulse.events".into()),
                (SOURCE_PARTITION_HEADER.into(), "5".into()),
                (SOURCE_OFFSET_HEADER.into(), "1234".into()),
            ]
        );
    }

    #[test]
    fn keeps_the_original_key_and_never_sends_an_empty_one() {
        assert_eq!(key(&letter(Some(b"project"))), b"project");
        assert_eq!(key(&letter(Some(b""))), b"5");
        assert_eq!(key(&letter(None)), b"5");
    }
}
