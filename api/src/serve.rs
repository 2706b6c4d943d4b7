//! `pulse-api serve`: start-up, the HTTP server and the graceful shutdown.
//!
//! Start-up: migrate (under the advisory lock in `pulse_shared::db`), create the topics (retrying
//! for up to [`KAFKA_WAIT`] while the broker is not reachable), build the producer, the pool and
//! the readiness probe, then serve. A SIGTERM or SIGINT during start-up stops it cleanly.
//!
//! Shutdown (promise 7), in this order:
//! 1. `/readyz` answers 503 (draining), so load balancers stop routing here;
//! 2. the server stops accepting connections and answers the requests in flight, waiting at most
//!    `PULSE_SHUTDOWN_TIMEOUT_SECS`; each of them still waits for its Kafka acknowledgements;
//! 3. the producer is flushed (same timeout), then the process exits 0.

use std::future::Future;
use std::time::Duration;

use actix_web::{web, HttpServer};
use anyhow::{bail, Context};
use pulse_shared::config::{ApiConfig, AuthConfig, DatabaseConfig, KafkaConfig};
use pulse_shared::db;
use pulse_shared::kafka::admin::ensure_topics;
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::kafka::Topics;
use pulse_shared::ops::Readiness;
use pulse_shared::shutdown;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::auth::Auth;
use crate::ingest::IngestState;
use crate::management::{purge, ManagementState};
use crate::metrics;

/// Daily event partitions created ahead of today when migrating.
pub const PARTITIONS_AHEAD_DAYS: i32 = 7;
/// Longest wait for the broker at start.
const KAFKA_WAIT: Duration = Duration::from_secs(60);
/// Longest single topic-creation attempt (an unreachable broker makes an attempt last this long).
const KAFKA_ATTEMPT: Duration = Duration::from_secs(10);

/// Runs the api until a signal, then drains. Errors are start-up failures.
pub async fn run(
    api: ApiConfig,
    database: DatabaseConfig,
    kafka: KafkaConfig,
    auth_config: AuthConfig,
) -> anyhow::Result<()> {
    let stop = shutdown::on_signal();
    metrics::init();

    let Some(applied) = until_stopped(&stop, db::migrate(&database.url, PARTITIONS_AHEAD_DAYS)).await else {
        return Ok(());
    };
    let applied = applied.context("migrating the database")?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "Applied migrations");
    }

    let topics = Topics::new(&kafka.topic_prefix);
    let Some(topics_ready) = until_stopped(&stop, wait_for_topics(&kafka, &topics)).await else {
        return Ok(());
    };
    topics_ready?;

    let producer = AckProducer::new(&kafka).context("creating the Kafka producer")?;
    let pool = db::build_pool(&database, "pulse-api").context("creating the database pool")?;
    let readiness = Readiness::new(
        pool.clone(),
        KafkaProbe::new(&kafka).context("creating the Kafka probe")?,
    );
    let (auth, toucher) = Auth::new(pool.clone(), api.api_key_cache_ttl);
    let toucher_stop = CancellationToken::new();
    let toucher_task = tokio::spawn(toucher.run(toucher_stop.clone()));

    let state = web::Data::new(IngestState::new(
        auth,
        producer.clone(),
        topics.events.clone(),
        api.max_body_bytes,
        api.max_batch_events,
        auth_config.default_ingest_rate_per_sec,
    ));
    let readiness_data = web::Data::new(readiness.clone());
    // Management routes, and the background purge of deleted projects (management::purge).
    let management = web::Data::new(ManagementState::new(
        pool.clone(),
        &auth_config,
        Some(state.auth.evictor()),
    ));
    let purge_stop = CancellationToken::new();
    let purge_task = tokio::spawn(purge::run(
        pool,
        auth_config.purge_interval,
        auth_config.purge_batch_size,
        purge_stop.clone(),
    ));
    let server = HttpServer::new(move || app::build(state.clone(), readiness_data.clone(), management.clone()))
        .workers(api.workers)
        .disable_signals()
        .shutdown_timeout(api.shutdown_timeout.as_secs())
        .bind(api.addr)
        .with_context(|| format!("binding {}", api.addr))?
        .run();
    let handle = server.handle();
    tracing::info!(addr = %api.addr, workers = api.workers, topic = %topics.events, "Listening");

    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => {
            toucher_stop.cancel();
            purge_stop.cancel();
            return result.context("HTTP server failed");
        }
        () = stop.cancelled() => {}
    }

    tracing::info!("Draining: no new connections, answering requests in flight");
    readiness.start_draining();
    let (_, result) = tokio::join!(handle.stop(true), &mut server);
    if let Err(error) = result {
        tracing::warn!(error = %error, "HTTP server stopped with an error");
    }
    let in_flight = producer.in_flight();
    match producer.flush(api.shutdown_timeout).await {
        Ok(()) => tracing::info!(in_flight, "Producer flushed"),
        Err(error) => tracing::warn!(in_flight, error = %error, "Producer flush incomplete"),
    }
    toucher_stop.cancel();
    purge_stop.cancel();
    let _ = toucher_task.await;
    let _ = purge_task.await;
    tracing::info!("Stopped");
    Ok(())
}

/// `None` when a signal came first.
async fn until_stopped<T>(stop: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        result = work => Some(result),
        () = stop.cancelled() => {
            tracing::info!("Stopped during start-up");
            None
        }
    }
}

/// Creates the topics, retrying with back-off while the broker does not answer.
async fn wait_for_topics(kafka: &KafkaConfig, topics: &Topics) -> anyhow::Result<()> {
    let deadline = Instant::now() + KAFKA_WAIT;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let error = match tokio::time::timeout(KAFKA_ATTEMPT, ensure_topics(kafka, &topics.all())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {KAFKA_ATTEMPT:?}"),
        };
        if Instant::now() + backoff >= deadline {
            bail!(
                "Kafka at {} is not reachable: topics not created after {attempt} attempts in {KAFKA_WAIT:?} ({error})",
                kafka.brokers
            );
        }
        tracing::warn!(brokers = %kafka.brokers, attempt, error = %error, "Kafka not ready, retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}
