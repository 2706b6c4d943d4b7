//! `pulse-api serve`: start-up, the HTTP server and the graceful shutdown.
//!
//! Start-up: migrate (under the advisory lock in `pulse_shared::db`) and create the topics, each
//! retried by `pulse_shared::startup` for up to [`STARTUP_WAIT`] while PostgreSQL or the broker
//! is not reachable (then the api exits with the error), build the producer, the pool and the
//! readiness probe, place the live-stream relay (`stream::relay`) at the end of the
//! stored-events topic, then serve. A SIGTERM or SIGINT during start-up stops it cleanly.
//! Background work (the purge of deleted projects, partitions ahead) belongs to
//! `pulse-scheduler`.
//!
//! Shutdown (promise 7), in this order:
//! 1. `/readyz` answers 503 (draining), so load balancers stop routing here, and every
//!    live-stream connection is told to reconnect (a close frame or a last SSE event);
//! 2. the server stops accepting connections and answers the requests in flight, waiting at most
//!    `PULSE_SHUTDOWN_TIMEOUT_SECS`; each of them still waits for its Kafka acknowledgements;
//! 3. the producer is flushed (same timeout), then the process exits 0.

use std::time::Duration;

use actix_web::{web, HttpServer};
use anyhow::Context;
use pulse_shared::config::{
    AlertConfig, ApiConfig, AuthConfig, DatabaseConfig, EmailConfig, KafkaConfig, MonitorConfig, QueryConfig,
    StreamConfig, WebhookConfig,
};
use pulse_shared::db;
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::kafka::Topics;
use pulse_shared::monitor::{Announcer, Checker};
use pulse_shared::ops::Readiness;
use pulse_shared::{shutdown, startup};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::auth::Auth;
use crate::ingest::IngestState;
use crate::management::ManagementState;
use crate::metrics;
use crate::query::QueryState;
use crate::stream::resume::Resumer;
use crate::stream::{relay, StreamState};

/// Longest wait for PostgreSQL and for the broker at start, each.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// The configuration areas `serve` reads, each validated by `main` before anything starts.
pub struct ServeConfig {
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub auth: AuthConfig,
    pub query: QueryConfig,
    pub stream: StreamConfig,
    /// The SSRF allow-list, the default `max_attempts` and the secret grace period.
    pub webhook: WebhookConfig,
    /// The default alert rule's threshold.
    pub alert: AlertConfig,
    /// Links and message ids of the mail the api writes (password resets).
    pub email: EmailConfig,
    /// The monitors' SSRF allow-list and the check settings of "check now".
    pub monitor: MonitorConfig,
}

/// Runs the api until a signal, then drains. Errors are start-up failures.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let ServeConfig {
        api,
        database,
        kafka,
        auth: auth_config,
        query,
        stream,
        webhook,
        alert,
        email,
        monitor,
    } = config;
    let stop = shutdown::on_signal();
    metrics::init();

    if startup::migrate(&database, &stop, Some(STARTUP_WAIT)).await?.is_none() {
        tracing::info!("Stopped during start-up");
        return Ok(());
    }
    let topics = Topics::new(&kafka.topic_prefix);
    if !startup::ensure_topics(&kafka, &topics, &stop, Some(STARTUP_WAIT)).await? {
        tracing::info!("Stopped during start-up");
        return Ok(());
    }

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
        topics.metrics.clone(),
        api.max_body_bytes,
        api.max_batch_events,
        auth_config.default_ingest_rate_per_sec,
    ));
    let readiness_data = web::Data::new(readiness.clone());
    let checker = Checker::new(&monitor, &email).context("creating the monitors' HTTP client")?;
    let announcer = Announcer::for_installation(&kafka, producer.clone())
        .await
        .context("reading the stored-events topic for monitor announcements")?;
    let management = web::Data::new(
        ManagementState::new(pool.clone(), &auth_config, Some(state.auth.evictor()))
            .with_webhooks(&webhook)
            .with_alerts_and_mail(&alert, &email)
            .with_monitors(&monitor, checker, announcer),
    );
    let queries = web::Data::new(QueryState::new(query));
    let resumer = Resumer::new(
        kafka.clone(),
        topics.events_stored.clone(),
        stream.resume_window,
        stream.client_buffer,
    );
    let streams = web::Data::new(StreamState::new(&stream, resumer));
    let relay = relay::Relay::start(&kafka, &topics.events_stored)
        .await
        .context("positioning the live-stream relay on the stored-events topic")?;
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(streams.hub.clone(), relay_stop.clone()));
    let hub = streams.hub.clone();
    let server = HttpServer::new(move || {
        app::build(
            state.clone(),
            readiness_data.clone(),
            management.clone(),
            queries.clone(),
            streams.clone(),
        )
    })
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
            relay_stop.cancel();
            return result.context("HTTP server failed");
        }
        () = stop.cancelled() => {}
    }

    tracing::info!("Draining: no new connections, answering requests in flight");
    readiness.start_draining();
    // Stream connections never finish by themselves: tell each client to reconnect elsewhere.
    tracing::info!(clients = hub.clients(), "Closing live-stream connections");
    hub.closing.cancel();
    relay_stop.cancel();
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
    let _ = toucher_task.await;
    let _ = relay_task.await;
    tracing::info!("Stopped");
    Ok(())
}
