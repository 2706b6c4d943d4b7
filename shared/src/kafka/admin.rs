//! Creates the topics Pulse needs at start (Tansu and many managed brokers have no automatic
//! topic creation). A topic that already exists is left as it is.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::kafka::client;
use crate::kafka::topics::TopicSpec;

/// Creates each of `topics` with the configured partitions and replication (and its own
/// retention, if it has one) if missing.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[TopicSpec<'_>]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client::base(config).create()?;
    let retentions: Vec<Option<String>> = topics
        .iter()
        .map(|spec| spec.retention.map(|retention| retention.as_millis().to_string()))
        .collect();
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .zip(&retentions)
        .map(|(spec, retention)| {
            let topic = NewTopic::new(
                spec.name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Topic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Deletes topics (used by tests to clean up after themselves).
pub async fn delete_topics(config: &KafkaConfig, topics: &[&str]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client::base(config).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin.delete_topics(topics, &options).await?;
    Ok(())
}

/// How many partitions `topic` has. A topic created a moment ago may not be in the metadata
/// yet: asked again for up to [`METADATA_PATIENCE`] before giving up.
pub async fn partition_count(config: &KafkaConfig, topic: &str) -> Result<i32> {
    let admin: AdminClient<DefaultClientContext> = client::base(config).create()?;
    let admin = std::sync::Arc::new(admin);
    let deadline = tokio::time::Instant::now() + METADATA_PATIENCE;
    loop {
        let (client, name) = (admin.clone(), topic.to_owned());
        let count = tokio::task::spawn_blocking(move || {
            let metadata = client.inner().fetch_metadata(Some(&name), Duration::from_secs(10))?;
            Ok::<_, rdkafka::error::KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .find(|found| found.name() == name)
                    .map_or(0, |found| found.partitions().len()),
            )
        })
        .await
        .map_err(|error| Error::Topic {
            topic: topic.to_owned(),
            reason: error.to_string(),
        })??;
        if let Ok(partitions @ 1..) = i32::try_from(count) {
            return Ok(partitions);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Topic {
                topic: topic.to_owned(),
                reason: "has no partitions (does it exist?)".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long [`partition_count`] waits for a new topic to show up.
pub const METADATA_PATIENCE: Duration = Duration::from_secs(15);
