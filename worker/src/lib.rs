//! `pulse-worker`: the persist consumer group. Reads event envelopes from `<prefix>events`,
//! stores each event exactly once in PostgreSQL, dead-letters what it cannot decode, and
//! stores Kafka offsets only after the database committed. How and why: docs/worker.md.
//!
//! Modules, one job each:
//! - [`consumer`] and [`context`]: the Kafka consumer, offset storing, rebalance and stats
//!   callbacks; [`idle_watch`]: re-joins the group when a broker leaves this consumer idle;
//! - [`pipeline`]: the loop — gather a batch, persist it, store offsets, shut down cleanly;
//! - [`batch`], [`decode`]: what a batch holds, and turning payloads into events;
//! - [`persist`], [`store`], [`dead_letter`]: writing a batch with retries, the SQL, the DLQ;
//! - [`metrics`], [`error`]: Prometheus series, the error type.
//!
//! Start-up (migrations, topics, waiting for PostgreSQL and the broker until shutdown) and the
//! back-off of every retry are shared: `pulse_shared::startup`, `pulse_shared::backoff`.

pub mod batch;
pub mod consumer;
pub mod context;
pub mod dead_letter;
pub mod decode;
pub mod error;
pub mod idle_watch;
pub mod metrics;
pub mod persist;
pub mod pipeline;
pub mod store;

use std::sync::Arc;

use pulse_shared::config::{ConfigError, DatabaseConfig, KafkaConfig, WorkerConfig};
use pulse_shared::db;
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::kafka::Topics;
use pulse_shared::ops::{self, Readiness};
use pulse_shared::startup;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

use crate::dead_letter::DeadLetterSink;
use crate::persist::Persister;
use crate::pipeline::{LoopConfig, Pipeline};

/// Everything the worker reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub worker: WorkerConfig,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env()?,
            kafka: KafkaConfig::from_env()?,
            worker: WorkerConfig::from_env()?,
        })
    }
}

/// Starts the worker and runs it until `stop` is cancelled and the shutdown finished.
pub async fn run(settings: Settings, stop: CancellationToken) -> Result<()> {
    metrics::init();
    let topics = Topics::new(&settings.kafka.topic_prefix);
    if startup::migrate(&settings.database, &stop, None).await?.is_none()
        || !startup::ensure_topics(&settings.kafka, &topics, &stop, None).await?
    {
        tracing::info!("Shutdown requested during start-up");
        return Ok(());
    }
    let pool = db::build_pool(&settings.database, "pulse-worker")?;
    let readiness = Readiness::new(pool.clone(), KafkaProbe::new(&settings.kafka)?);
    let server = ops::serve(settings.worker.addr, readiness.clone())?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            readiness.start_draining();
        }
    });
    tracing::info!(addr = %settings.worker.addr, "Health and metrics endpoints listening");

    let dead_letters = DeadLetterSink {
        producer: AckProducer::new(&settings.kafka)?,
        source_topic: topics.events.clone(),
        dlq_topic: topics.events_dlq.clone(),
        retry_max: settings.worker.retry_max,
    };
    let persister = Arc::new(Persister::new(
        pool,
        dead_letters,
        settings.worker.retry_max,
        settings.database.statement_timeout,
        stop.clone(),
    ));
    let consumer = consumer::subscribe(&settings.kafka, &settings.worker.group, &topics.events)?;
    tracing::info!(group = %settings.worker.group, topic = %topics.events, "Subscribed");
    let watch = tokio::spawn(idle_watch::run(
        Arc::downgrade(&consumer),
        settings.worker.group.clone(),
        topics.events.clone(),
        stop.clone(),
    ));
    let config = LoopConfig {
        topic: topics.events.clone(),
        batch_size: settings.worker.batch_size,
        batch_wait: settings.worker.batch_wait,
        shutdown_timeout: settings.worker.shutdown_timeout,
    };
    let result = Pipeline::new(consumer, persister, config, stop).run().await;

    let _ = watch.await;
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("Worker stopped");
    result
}
