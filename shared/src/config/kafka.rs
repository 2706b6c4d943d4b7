//! Kafka connection, topics and producer: `PULSE_KAFKA_*` and `PULSE_TOPIC_PREFIX` (every binary;
//! the table in `mod.rs` names the librdkafka setting each one maps to).

use std::time::Duration;

use super::{millis, parsed, positive, raw, ConfigError};

/// Producer compression codecs librdkafka knows.
const COMPRESSIONS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Kafka connection, topic and producer settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Extra librdkafka settings applied to every client (security, SASL, …).
    pub options: Vec<(String, String)>,
    /// Prefix of every topic name.
    pub topic_prefix: String,
    /// Partitions of the topics created at start.
    pub partitions: i32,
    /// Replication factor of the topics created at start.
    pub replication_factor: i32,
    /// `message.timeout.ms`: how long a produce may wait for acknowledgement.
    pub produce_timeout: Duration,
    /// `linger.ms`.
    pub linger: Duration,
    /// `queue.buffering.max.messages`.
    pub queue_max_messages: u32,
    /// `compression.type`.
    pub compression: String,
}

impl KafkaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let compression = raw("PULSE_KAFKA_COMPRESSION").unwrap_or_else(|| "lz4".into());
        if !COMPRESSIONS.contains(&compression.as_str()) {
            return Err(ConfigError {
                variable: "PULSE_KAFKA_COMPRESSION",
                reason: format!("{compression:?} is not one of {}", COMPRESSIONS.join(", ")),
            });
        }
        let topic_prefix = raw("PULSE_TOPIC_PREFIX").unwrap_or_else(|| "pulse.".into());
        if !topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ConfigError {
                variable: "PULSE_TOPIC_PREFIX",
                reason: format!("{topic_prefix:?} may hold only ASCII letters, digits, '.', '_' and '-'"),
            });
        }
        Ok(Self {
            brokers: raw("PULSE_KAFKA_BROKERS").unwrap_or_else(|| "127.0.0.1:9092".into()),
            options: parse_options(raw("PULSE_KAFKA_OPTIONS").as_deref())?,
            topic_prefix,
            partitions: positive("PULSE_KAFKA_PARTITIONS", 8)?,
            replication_factor: positive("PULSE_KAFKA_REPLICATION_FACTOR", 1)?,
            produce_timeout: millis("PULSE_KAFKA_PRODUCE_TIMEOUT_MS", 5_000)?,
            linger: Duration::from_millis(parsed("PULSE_KAFKA_LINGER_MS", 5, "a number of milliseconds")?),
            queue_max_messages: positive("PULSE_KAFKA_QUEUE_MAX_MESSAGES", 200_000)?,
            compression,
        })
    }
}

fn parse_options(value: Option<&str>) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, val)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), val.trim().to_owned())),
            _ => Err(ConfigError {
                variable: "PULSE_KAFKA_OPTIONS",
                reason: format!("{pair:?} is not key=value"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_options_parse_pairs_and_reject_garbage() {
        let options = parse_options(Some("security.protocol=SASL_SSL; sasl.mechanism = PLAIN ;")).expect("valid");
        assert_eq!(
            options,
            vec![
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("sasl.mechanism".to_owned(), "PLAIN".to_owned())
            ]
        );
        let error = parse_options(Some("novalue")).expect_err("invalid");
        assert_eq!(error.variable, "PULSE_KAFKA_OPTIONS");
        assert!(error.to_string().starts_with("PULSE_KAFKA_OPTIONS: "));
    }
}
