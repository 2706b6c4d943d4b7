//! Per-test topics: a unique topic prefix on the shared broker (or on a test's own
//! [`crate::TestBroker`] or [`crate::TestCluster`]), with helpers to produce and read raw
//! messages through rdkafka.

use std::time::Duration;

use pulse_shared::config::KafkaConfig;
use pulse_shared::envelope::EventEnvelope;
use pulse_shared::kafka::admin;
use pulse_shared::kafka::producer::{AckProducer, Outgoing};
use pulse_shared::kafka::Topics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::{ClientConfig, Message};

use crate::{TestBroker, TestCluster};

/// Partitions of the topics a test creates.
pub const TEST_PARTITIONS: i32 = 4;

pub struct TestKafka {
    pub brokers: String,
    pub prefix: String,
    replication_factor: i32,
    cleanup: bool,
}

impl TestKafka {
    /// A fresh topic prefix on the shared broker (`PULSE_TEST_KAFKA_BROKERS`), topics created.
    pub async fn shared() -> Self {
        let brokers = std::env::var("PULSE_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
        Self::with_brokers(brokers, 1, true).await
    }

    /// A fresh topic prefix on a test's own broker, topics created.
    pub async fn on(broker: &TestBroker) -> Self {
        Self::with_brokers(broker.brokers(), 1, false).await
    }

    /// A fresh topic prefix on a test's own cluster, topics created with a replication factor
    /// of min(size, 3) (the cluster's `min.insync.replicas` is 2 from two nodes on).
    pub async fn on_cluster(cluster: &TestCluster) -> Self {
        let replication_factor = cluster.size().min(3) as i32;
        Self::with_brokers(cluster.brokers(), replication_factor, false).await
    }

    async fn with_brokers(brokers: String, replication_factor: i32, cleanup: bool) -> Self {
        let kafka = Self {
            brokers,
            prefix: format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            replication_factor,
            cleanup,
        };
        let config = kafka.config();
        let topics = kafka.topics();
        let mut attempt = 0;
        while let Err(error) = admin::ensure_topics(&config, &topics.all()).await {
            attempt += 1;
            assert!(attempt < 20, "cannot create test topics on {}: {error}", kafka.brokers);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        kafka
    }

    pub fn topics(&self) -> Topics {
        Topics::new(&self.prefix)
    }

    /// The Kafka configuration a Pulse process of this test would read from its environment.
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            brokers: self.brokers.clone(),
            options: Vec::new(),
            topic_prefix: self.prefix.clone(),
            partitions: TEST_PARTITIONS,
            replication_factor: self.replication_factor,
            produce_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(5),
            queue_max_messages: 100_000,
            compression: "lz4".into(),
        }
    }

    pub fn producer(&self) -> AckProducer {
        AckProducer::new(&self.config()).expect("producer")
    }

    /// Sends envelopes to the events topic, keyed by project, and waits for every ack.
    pub async fn produce_envelopes(&self, envelopes: &[EventEnvelope]) {
        let producer = self.producer();
        let topic = self.topics().events;
        for chunk in envelopes.chunks(5_000) {
            let encoded: Vec<(String, Vec<u8>)> = chunk
                .iter()
                .map(|envelope| (envelope.project_id.to_string(), envelope.encode().expect("encode")))
                .collect();
            let results = producer
                .send_all(encoded.iter().map(|(key, payload)| Outgoing {
                    topic: &topic,
                    key: key.as_bytes(),
                    payload,
                    headers: None,
                    partition: None,
                }))
                .await;
            for result in results {
                result.expect("test produce acked");
            }
        }
    }

    /// Sends one raw message (a poison pill, say) and waits for its ack.
    pub async fn produce_raw(&self, topic: &str, key: &[u8], payload: &[u8], headers: &[(&str, &str)]) {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let results = self
            .producer()
            .send_all([Outgoing {
                topic,
                key,
                payload,
                headers: Some(owned),
                partition: None,
            }])
            .await;
        for result in results {
            result.expect("raw produce acked");
        }
    }

    /// Reads `topic` from the beginning until `expected` messages arrived or `timeout` passed.
    pub async fn consume(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("test-reader-{}", uuid::Uuid::new_v4().simple()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("test consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut messages = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while messages.len() < expected {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => messages.push(message.detach()),
                Ok(Err(error)) => eprintln!("test consumer: {error}"),
                Err(_) => break,
            }
        }
        messages
    }
}

/// The value of header `name` on `message`, as text.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value.map(|value| String::from_utf8_lossy(value).into_owned()))
}

impl Drop for TestKafka {
    fn drop(&mut self) {
        if !self.cleanup {
            return;
        }
        let config = self.config();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            let topics = Topics::new(&config.topic_prefix);
            runtime.block_on(async {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), admin::delete_topics(&config, &topics.names())).await;
            });
        })
        .join();
    }
}
