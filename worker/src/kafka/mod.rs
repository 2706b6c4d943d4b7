//! The Kafka side of every consumer group, generic over what the group does with its messages:
//! - [`consumer`]: creation, subscription, offset storing, the final commit and close;
//! - [`context`]: librdkafka callbacks (rebalances, commits, lag statistics);
//! - [`pipeline`]: the loop (gather a batch, hand it to the group's [`pipeline::Handler`], keep
//!   batches in flight, store offsets strictly in order, drain at shutdown);
//! - [`idle_watch`]: re-joins the group when a broker leaves this consumer idle.

pub mod consumer;
pub mod context;
pub mod idle_watch;
pub(crate) mod pipeline;

use std::sync::Arc;

use pulse_shared::config::KafkaConfig;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use pipeline::{Handler, LoopConfig, Pipeline};

/// Runs consumer group `group` on `config.topic` with `handler` until `stop`, then drains,
/// commits and leaves the group. The idle watch runs beside it.
pub async fn run_group<H: Handler>(
    kafka: &KafkaConfig,
    group: &str,
    config: LoopConfig,
    handler: H,
    stop: CancellationToken,
) -> Result<()> {
    let consumer = consumer::subscribe(kafka, group, &config.topic)?;
    tracing::info!(group, topic = %config.topic, "Subscribed");
    let watch = tokio::spawn(idle_watch::run(
        Arc::downgrade(&consumer),
        group.to_owned(),
        config.topic.clone(),
        stop.clone(),
    ));
    let result = Pipeline::new(consumer, Arc::new(handler), config, stop).run().await;
    let _ = watch.await;
    result
}
