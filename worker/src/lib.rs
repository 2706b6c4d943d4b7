//! `pulse-worker`: Pulse's consumer groups, one per process, chosen by the role argument:
//! - `persist` (the default): reads event envelopes from `<prefix>events`, stores each event
//!   exactly once in PostgreSQL, dead-letters what it cannot decode, and stores Kafka offsets
//!   only after the database committed, and announces the events it stored on
//!   `<prefix>events.stored` for the api's live streams;
//! - `metrics`: the same for named-metric points from `<prefix>metrics` (group
//!   `PULSE_WORKER_METRICS_GROUP`), with their latest rows and per-minute rollups;
//! - `notify`: no consumer group: expands the webhook outbox the persist worker writes and
//!   delivers signed webhooks (docs/webhooks.md), evaluates alert rules and sends the email
//!   outbox (docs/alerts.md); any number of processes share the work through PostgreSQL.
//!
//! How and why: docs/worker.md. The consumer roles are [`kafka::pipeline::Handler`]s on the same
//! loop. `pulse-worker` with no role stays `persist`, so existing deployments keep their
//! meaning; launchers start one process per role.
//!
//! Modules, one job each:
//! - [`kafka`]: what every group shares — the consumer, its callbacks, the loop with its
//!   in-flight queue and ordered offset storing, the idle watch;
//! - [`persist`]: the persist group's handler — decode, batch, write with retries, SQL, DLQ;
//! - [`metric_points`]: the metrics group's handler — decode, write with retries, SQL;
//! - [`notify`]: the notify role — webhook fan-out and delivery, alert evaluation, email;
//! - [`metrics`], [`error`]: Prometheus series, the error type.
//!
//! Start-up (migrations, topics, waiting for PostgreSQL and the broker until shutdown) and the
//! back-off of every retry are shared: `pulse_shared::startup`, `pulse_shared::backoff`.

pub(crate) mod error;
pub mod kafka;
pub mod metric_points;
pub(crate) mod metrics;
pub mod notify;
pub mod persist;

use std::str::FromStr;

use pulse_shared::config::{
    AlertConfig, ConfigError, DatabaseConfig, EmailConfig, KafkaConfig, StreamConfig, WebhookConfig, WorkerConfig,
};
use pulse_shared::db;
use pulse_shared::kafka::admin;
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::kafka::Topics;
use pulse_shared::ops::{self, Readiness};
use pulse_shared::startup;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

use crate::kafka::pipeline::LoopConfig;
use crate::metric_points::{MetricsHandler, MetricsWriter};
use crate::persist::dead_letter::DeadLetterSink;
use crate::persist::publish::StoredPublisher;
use crate::persist::writer::Persister;
use crate::persist::PersistHandler;

/// Which consumer group this process runs: `pulse-worker [ROLE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Stores events (group `PULSE_WORKER_GROUP`, default `pulse-persist`).
    #[default]
    Persist,
    /// Stores named-metric points (group `PULSE_WORKER_METRICS_GROUP`, default `pulse-metrics`).
    Metrics,
    /// Delivers webhooks, evaluates alert rules, sends email (no consumer group).
    Notify,
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "persist" => Ok(Self::Persist),
            "metrics" => Ok(Self::Metrics),
            "notify" => Ok(Self::Notify),
            other => Err(format!("unknown role {other:?}; roles: persist, metrics, notify")),
        }
    }
}

/// Everything the worker reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub worker: WorkerConfig,
    pub stream: StreamConfig,
    pub webhook: WebhookConfig,
    pub email: EmailConfig,
    pub alert: AlertConfig,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env()?,
            kafka: KafkaConfig::from_env()?,
            worker: WorkerConfig::from_env()?,
            stream: StreamConfig::from_env()?,
            webhook: WebhookConfig::from_env()?,
            email: EmailConfig::from_env()?,
            alert: AlertConfig::from_env()?,
        })
    }
}

/// Starts the worker in `role` and runs it until `stop` is cancelled and the shutdown finished.
pub async fn run(settings: Settings, role: Role, stop: CancellationToken) -> Result<()> {
    tracing::info!(?role, "Starting");
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

    let result = match role {
        Role::Persist => run_persist(&settings, pool, &topics, stop).await,
        Role::Metrics => run_metrics(&settings, pool, &topics, stop).await,
        Role::Notify => {
            let notify = notify::NotifySettings {
                webhook: settings.webhook.clone(),
                email: settings.email.clone(),
                alert: settings.alert.clone(),
                shutdown_timeout: settings.worker.shutdown_timeout,
            };
            notify::run(pool, notify, stop).await
        }
    };

    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("Worker stopped");
    result
}

/// The persist group.
async fn run_persist(settings: &Settings, pool: db::DbPool, topics: &Topics, stop: CancellationToken) -> Result<()> {
    let dead_letters = DeadLetterSink {
        producer: AckProducer::new(&settings.kafka)?,
        dead_lettered: &metrics::EVENTS_DEAD_LETTERED,
        source_topic: topics.events.clone(),
        dlq_topic: topics.events_dlq.clone(),
        retry_max: settings.worker.retry_max,
    };
    let publisher = stored_publisher(settings, topics).await?;
    let persister = Persister::new(
        pool,
        dead_letters,
        publisher.clone(),
        settings.worker.retry_max,
        settings.database.statement_timeout,
        stop.clone(),
    );
    let config = LoopConfig {
        topic: topics.events.clone(),
        batch_size: settings.worker.batch_size,
        batch_wait: settings.worker.batch_wait,
        shutdown_timeout: settings.worker.shutdown_timeout,
    };
    let handler = PersistHandler::new(persister, topics.events.clone());
    let result = kafka::run_group(&settings.kafka, &settings.worker.group, config, handler, stop).await;
    if let Some(publisher) = publisher {
        publisher.finish(settings.worker.shutdown_timeout).await;
    }
    result
}

/// The metrics group: the same loop, batching and retry settings as persist, its own topic,
/// dead-letter topic and consumer group.
async fn run_metrics(settings: &Settings, pool: db::DbPool, topics: &Topics, stop: CancellationToken) -> Result<()> {
    let dead_letters = DeadLetterSink {
        producer: AckProducer::new(&settings.kafka)?,
        dead_lettered: &metrics::METRIC_POINTS_DEAD_LETTERED,
        source_topic: topics.metrics.clone(),
        dlq_topic: topics.metrics_dlq.clone(),
        retry_max: settings.worker.retry_max,
    };
    let publisher = stored_publisher(settings, topics).await?;
    let writer = MetricsWriter::new(
        pool,
        dead_letters,
        publisher.clone(),
        settings.worker.retry_max,
        settings.database.statement_timeout,
        stop.clone(),
    );
    let config = LoopConfig {
        topic: topics.metrics.clone(),
        batch_size: settings.worker.batch_size,
        batch_wait: settings.worker.batch_wait,
        shutdown_timeout: settings.worker.shutdown_timeout,
    };
    let handler = MetricsHandler::new(writer, topics.metrics.clone());
    let result = kafka::run_group(&settings.kafka, &settings.worker.metrics_group, config, handler, stop).await;
    if let Some(publisher) = publisher {
        publisher.finish(settings.worker.shutdown_timeout).await;
    }
    result
}

/// The announcer of stored rows on the stored-events topic, unless `PULSE_STREAM_PUBLISH=false`.
async fn stored_publisher(settings: &Settings, topics: &Topics) -> Result<Option<StoredPublisher>> {
    if !settings.stream.publish {
        tracing::info!("PULSE_STREAM_PUBLISH=false: stored rows are not announced to live streams");
        return Ok(None);
    }
    let partitions = admin::partition_count(&settings.kafka, &topics.events_stored).await?;
    Ok(Some(StoredPublisher::new(
        AckProducer::new(&settings.kafka)?,
        topics.events_stored.clone(),
        partitions,
    )))
}
