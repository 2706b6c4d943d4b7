//! Kafka reachability for `/readyz`: a metadata request through a small dedicated client.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::kafka::client;

#[derive(Clone)]
pub struct KafkaProbe {
    client: Arc<BaseProducer>,
}

impl KafkaProbe {
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self {
            client: Arc::new(client::base(config).create()?),
        })
    }

    /// Ok when a broker answered a metadata request within `timeout`.
    pub async fn check(&self, timeout: Duration) -> std::result::Result<(), String> {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| error.to_string())?
    }
}
