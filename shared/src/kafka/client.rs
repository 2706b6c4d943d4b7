//! librdkafka settings for each kind of client, derived from [`KafkaConfig`]. Settings from
//! `PULSE_KAFKA_OPTIONS` are applied last and win.

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Settings every client shares: bootstrap servers and the operator's extra options.
pub fn base(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("socket.keepalive.enable", "true")
        // Fail fast on a broker that went away so a 503 comes within the produce timeout.
        .set("socket.connection.setup.timeout.ms", "5000");
    client
}

fn with_options(mut client: ClientConfig, config: &KafkaConfig) -> ClientConfig {
    for (key, value) in &config.options {
        client.set(key, value);
    }
    client
}

/// An idempotent, acks=all producer: a delivery report means every in-sync replica has it.
pub fn producer(config: &KafkaConfig) -> ClientConfig {
    let timeout_ms = config.produce_timeout.as_millis().to_string();
    let mut client = base(config);
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &config.compression)
        .set("linger.ms", config.linger.as_millis().to_string())
        .set("queue.buffering.max.messages", config.queue_max_messages.to_string())
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        // The whole delivery, retries included, is bounded by the produce timeout: past it the
        // message fails and the api answers 503 instead of hanging.
        .set("message.timeout.ms", &timeout_ms)
        .set("request.timeout.ms", &timeout_ms);
    with_options(client, config)
}

/// A consumer in `group` that never stores offsets by itself: the caller stores an offset only
/// after the message's effects are committed, and librdkafka auto-commits what was stored.
pub fn consumer(config: &KafkaConfig, group: &str) -> ClientConfig {
    let mut client = base(config);
    client
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "50")
        // Read-ahead bound: librdkafka's 64 MB default made the worker peak near 180 MB resident
        // while draining a backlog; 32 MB keeps it under 150 MB at the same stored rate
        // (bench/RESULTS.md).
        .set("queued.max.messages.kbytes", "32768")
        .set("statistics.interval.ms", "5000");
    with_options(client, config)
}

/// A consumer that reads assigned partitions and never joins a group or commits: the api's
/// live-stream relay and resumption read the stored-events topic this way, every replica all of
/// it. (`group.id` is required by librdkafka but unused without `subscribe` or commits.)
pub fn reader(config: &KafkaConfig) -> ClientConfig {
    let mut client = base(config);
    client
        .set("group.id", "pulse-api-stream")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        // The stream's delay: a fetch returns after 10 ms at most, even with little data.
        .set("fetch.wait.max.ms", "10")
        .set("queued.max.messages.kbytes", "16384");
    with_options(client, config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::producer::BaseProducer;

    use super::*;

    fn config(options: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            topic_prefix: "pulse.".into(),
            partitions: 1,
            replication_factor: 1,
            produce_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(5),
            queue_max_messages: 1000,
            compression: "lz4".into(),
        }
    }

    #[test]
    fn librdkafka_is_built_with_tls_and_sasl_scram() {
        // librdkafka refuses these settings at creation when it was built without OpenSSL.
        let created = producer(&config(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "pulse"),
            ("sasl.password", "secret"),
        ]))
        .create::<BaseProducer>();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn operator_options_override_our_defaults() {
        let client = consumer(&config(&[("queued.max.messages.kbytes", "1024")]), "g");
        assert_eq!(client.get("queued.max.messages.kbytes"), Some("1024"));
        assert_eq!(client.get("enable.auto.offset.store"), Some("false"));
    }
}
