//! Configuration of every Pulse binary, read from `PULSE_*` environment variables in this one
//! place (an optional `.env` file in the working directory is loaded first).
//!
//! Each area has its own struct with the default beside the field, in a file of its own
//! (`database.rs`, `kafka.rs`, `log.rs`, `api.rs`, `auth.rs`, `alert.rs`, `email.rs`, `monitor.rs`, `digest.rs`, `query.rs`, `stream.rs`, `webhook.rs`, `worker.rs`,
//! `scheduler.rs`, `retention.rs`);
//! this file holds the variable table below (the one list of every `PULSE_*` variable, which
//! `scripts/check-docs.py` compares with README.md) and the readers they share. Every value is validated
//! when it is read; a bad one stops the binary with one line naming the variable
//! (`PULSE_API_ADDR: "nope" is not a socket address (expected HOST:PORT)`).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PULSE_DATABASE_URL` | (required) | PostgreSQL URL, `postgres://user@host:port/db` |
//! | `PULSE_DATABASE_POOL_SIZE` | `16` | connections per process |
//! | `PULSE_DATABASE_POOL_TIMEOUT_MS` | `5000` | longest wait for a pooled connection |
//! | `PULSE_DATABASE_STATEMENT_TIMEOUT_MS` | `30000` | `statement_timeout` of every connection |
//! | `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` | `7` | daily `events` partitions kept created ahead of today (by every binary's migration at start, then hourly by the scheduler) |
//! | `PULSE_KAFKA_BROKERS` | `127.0.0.1:9092` | bootstrap servers (`bootstrap.servers`) |
//! | `PULSE_KAFKA_OPTIONS` | (empty) | extra librdkafka settings, `key=value` pairs separated by `;` (TLS, SASL, …) |
//! | `PULSE_TOPIC_PREFIX` | `pulse.` | prefix of every topic name (`pulse.events`, `pulse.events.dlq`, `pulse.events.stored`, `pulse.metrics`, `pulse.metrics.dlq`) |
//! | `PULSE_KAFKA_PARTITIONS` | `8` | partitions of topics created at start |
//! | `PULSE_KAFKA_REPLICATION_FACTOR` | `1` | replication factor of topics created at start |
//! | `PULSE_KAFKA_PRODUCE_TIMEOUT_MS` | `5000` | longest wait for Kafka to acknowledge (`message.timeout.ms`); past it: 503 |
//! | `PULSE_KAFKA_LINGER_MS` | `5` | producer batching delay (`linger.ms`) |
//! | `PULSE_KAFKA_QUEUE_MAX_MESSAGES` | `200000` | producer local queue bound (`queue.buffering.max.messages`) |
//! | `PULSE_KAFKA_COMPRESSION` | `lz4` | `none`, `gzip`, `snappy`, `lz4` or `zstd` (`compression.type`) |
//! | `PULSE_LOG_FORMAT` | `text` | `text` or `json` (one JSON object per line) |
//! | `PULSE_LOG` | `info` | tracing filter, e.g. `info,pulse_worker=debug` |
//! | `PULSE_API_ADDR` | `127.0.0.1:8080` | api listen address |
//! | `PULSE_API_WORKERS` | number of CPUs | actix-web worker threads |
//! | `PULSE_MAX_BATCH_EVENTS` | `1000` | most events in one batch request |
//! | `PULSE_MAX_BODY_BYTES` | `5242880` | largest request body, after gzip decoding |
//! | `PULSE_API_KEY_CACHE_TTL_SECS` | `30` | how long a checked API key is trusted without the database: a revoked key stops working within this time |
//! | `PULSE_JWT_SECRET` | (required by the api) | HS256 key of access tokens, at least 32 bytes; every api replica needs the same one |
//! | `PULSE_ACCESS_TOKEN_TTL_SECS` | `900` | lifetime of an access token (JWT) |
//! | `PULSE_REFRESH_TOKEN_TTL_SECS` | `2592000` | lifetime of a refresh token (30 days); each refresh issues a new one |
//! | `PULSE_LOGIN_RATE_PER_MIN_IP` | `30` | login and register attempts per client IP per minute, per replica |
//! | `PULSE_LOGIN_RATE_PER_MIN_ACCOUNT` | `10` | login attempts per account (email) per minute, per replica |
//! | `PULSE_INGEST_RATE_LIMIT_PER_SEC` | `10000` | ingest requests per second per API key and replica, when the project sets none (burst: one second's worth) |
//! | `PULSE_API_KEY_ROTATION_GRACE_SECS` | `86400` | default time a rotated API key keeps working |
//! | `PULSE_READ_RATE_LIMIT_PER_SEC` | `100` | read requests (queries, exports) per second per API key, or per member with an access token, and replica (burst: one second's worth) |
//! | `PULSE_QUERY_MAX_RAW_DAYS` | `7` | longest range, in days, of a query over raw events (`GET /v1/events`, exports of events, analytics grouped by `user_id` or `data.KEY`) |
//! | `PULSE_QUERY_MAX_BUCKETS` | `10000` | most buckets one answer may hold (`GET /v1/events/aggregated`) |
//! | `PULSE_STREAM_HEARTBEAT_SECS` | `15` | SSE heartbeat comments and WebSocket pings of the live stream, this often |
//! | `PULSE_STREAM_RESUME_SECS` | `300` | how far back an SSE reconnect with `Last-Event-ID` resumes without gaps (at most 3600, the stored-events topic's retention) |
//! | `PULSE_STREAM_CLIENT_BUFFER` | `1000` | messages queued for one stream client; past it the client is dropped with a notice |
//! | `PULSE_STREAM_MAX_CLIENTS` | `10000` | open stream connections per api replica; past it 503 |
//! | `PULSE_STREAM_PUBLISH` | `true` | whether the persist worker publishes the events it stored to `<prefix>events.stored` (off: no live stream) |
//! | `PULSE_PURGE_INTERVAL_SECS` | `5` | how often the scheduler looks for deleted projects to purge |
//! | `PULSE_PURGE_BATCH_SIZE` | `5000` | events deleted per purge transaction |
//! | `PULSE_ROLLUP_COMPACT_INTERVAL_SECS` | `5` | how often the scheduler folds the rollup deltas the workers wrote into one row per minute and into the hourly rollups (rounds run back to back only while they come back full: a backlog) |
//! | `PULSE_ROLLUP_COMPACT_BATCH` | `20000` | rollup delta rows folded per compaction transaction |
//! | `PULSE_RETENTION_INTERVAL_SECS` | `3600` | how often the `retention` job runs (at a quarter past each multiple of it since the epoch: hourly at :15): what is past its retention removed |
//! | `PULSE_RETENTION_CRON` | (unset) | a cron expression (seconds first, UTC) to run the `retention` job on instead of the interval, e.g. `0 30 3 * * *` |
//! | `PULSE_RETENTION_BATCH` | `10000` | most rows one retention transaction deletes (whole daily partitions nobody keeps are dropped instead) |
//! | `PULSE_RETENTION_ROLLUPS_1M_DAYS` | `14` | days minute rollups (`event_rollups`, `metric_rollups`) are kept, or the project's `retention_days` when shorter |
//! | `PULSE_RETENTION_ROLLUPS_1H_DAYS` | `400` | days hourly rollups (`event_rollups_hourly`, `event_rollups_hourly_totals`) are kept |
//! | `PULSE_RETENTION_WEBHOOK_DAYS` | `30` | days finished (succeeded or failed) webhook deliveries and their attempts are kept; pending ones always stay |
//! | `PULSE_RETENTION_EMAIL_DAYS` | `30` | days sent or failed emails and their attempts are kept; pending ones always stay |
//! | `PULSE_RETENTION_INCIDENT_DAYS` | `400` | days resolved alert incidents are kept |
//! | `PULSE_RETENTION_CHECK_DAYS` | `32` | days uptime checks (`monitor_checks`) are kept; daily uptime and resolved monitor incidents follow `PULSE_RETENTION_INCIDENT_DAYS` |
//! | `PULSE_RETENTION_JOB_RUN_DAYS` | `30` | days the scheduler's job runs (`job_runs`, what `GET /jobs` reads) are kept |
//! | `PULSE_MONITOR_MAX_CONCURRENCY` | `200` | uptime checks in flight at once per scheduler replica |
//! | `PULSE_MONITOR_BREAKER_FAILURES` | `5` | consecutive failed checks of one target (host and port) that open its circuit breaker |
//! | `PULSE_MONITOR_BREAKER_OPEN_SECS` | `60` | how long an open breaker holds its target's checks before letting one probe through (half-open) |
//! | `PULSE_MONITOR_ALLOW_NETS` | (empty) | networks (`127.0.0.0/8,10.1.0.0/16`) monitor URLs may resolve into although not public; refused otherwise, as for webhooks |
//! | `PULSE_MONITOR_POLL_MS` | `250` | how often a scheduler replica looks for due checks |
//! | `PULSE_MONITOR_CLAIM_BATCH` | `500` | most due monitors one replica claims per look |
//! | `PULSE_DIGEST_HOUR_UTC` | `7` | hour (UTC) at which digest subscribers get the summary of the day before |
//! | `PULSE_SHUTDOWN_TIMEOUT_SECS` | `30` | longest graceful shutdown (in-flight requests, producer flush) |
//! | `PULSE_WORKER_ADDR` | `127.0.0.1:9101` | worker health and metrics address |
//! | `PULSE_WORKER_GROUP` | `pulse-persist` | Kafka consumer group of the persist worker |
//! | `PULSE_WORKER_METRICS_GROUP` | `pulse-metrics` | Kafka consumer group of the metrics worker (`pulse-worker metrics`, named-metric points) |
//! | `PULSE_WORKER_BATCH_SIZE` | `2000` | most events written in one transaction |
//! | `PULSE_WORKER_BATCH_WAIT_MS` | `50` | longest wait to fill a batch |
//! | `PULSE_WORKER_RETRY_MAX_MS` | `30000` | longest back-off between database retries |
//! | `PULSE_WEBHOOK_RETRY_SCHEDULE` | `0,5,300,1800,7200,18000,36000,36000` | seconds before each webhook retry (with ±20 % jitter); its length + 1 is an endpoint's default `max_attempts` |
//! | `PULSE_WEBHOOK_DISABLE_AFTER_SECS` | `432000` | an endpoint whose every attempt failed for this long (5 days) is disabled |
//! | `PULSE_WEBHOOK_ALLOW_NETS` | (empty) | networks (`127.0.0.0/8,10.1.0.0/16`) webhook URLs may resolve into although not public; everything private, loopback, link-local, multicast or unspecified is refused otherwise |
//! | `PULSE_WEBHOOK_CONNECT_TIMEOUT_SECS` | `5` | connect timeout of a webhook attempt |
//! | `PULSE_WEBHOOK_TIMEOUT_SECS` | `15` | longest whole webhook attempt |
//! | `PULSE_WEBHOOK_BATCH_MAX_EVENTS` | `500` | most events in one `event.created` delivery (a few hundred KB; every delivery costs a durable database write per attempt, so fewer larger ones keep up with busy projects) |
//! | `PULSE_WEBHOOK_BATCH_DELAY_MS` | `500` | how often the outbox is expanded into deliveries (events of one window travel together) |
//! | `PULSE_WEBHOOK_ENDPOINT_CONCURRENCY` | `4` | attempts in flight to one endpoint per worker process |
//! | `PULSE_WEBHOOK_CONCURRENCY` | `64` | attempts in flight per worker process |
//! | `PULSE_WEBHOOK_SECRET_GRACE_SECS` | `86400` | how long the previous secret keeps signing after a rotation |
//! | `PULSE_SMTP_URL` | `smtp://127.0.0.1:2525` | SMTP server of outgoing mail: `smtp://[user:password@]host[:port]`, `?tls=required` for STARTTLS (`opportunistic`: when offered), `smtps://` for TLS from the start |
//! | `PULSE_SMTP_FROM` | `Pulse <pulse@localhost>` | `From` header of outgoing mail |
//! | `PULSE_PUBLIC_URL` | `http://127.0.0.1:8080` | base URL of the api, for the links mail carries |
//! | `PULSE_EMAIL_RETRY_SCHEDULE` | `5,30,60,300,600,1800,3600,3600,3600,3600,3600,3600,3600` | seconds before each retry of an email (the webhook schedule's format, ±20 % jitter); after the last the message is failed |
//! | `PULSE_EMAIL_TIMEOUT_SECS` | `30` | longest SMTP conversation of one message |
//! | `PULSE_EMAIL_CONCURRENCY` | `8` | emails in flight per worker process |
//! | `PULSE_ALERT_EVAL_INTERVAL_MS` | `2000` | how often each enabled alert rule is evaluated |
//! | `PULSE_ALERT_EVAL_BATCH` | `200` | alert rules one worker claims per evaluation round |
//! | `PULSE_ALERT_ERROR_THRESHOLD` | `10` | the default rule of a new project fires above this many `status: error` events per 5 minutes, mailed to the owners |
//! | `PULSE_PASSWORD_RESET_TTL_SECS` | `3600` | how long a password-reset token stays valid |
//! | `PULSE_SCHEDULER_ADDR` | `127.0.0.1:9102` | scheduler health, metrics and `GET /jobs` address |
//! | `PULSE_SCHEDULER_REPLICA` | host name and process id | this scheduler replica's name, recorded in `job_runs.replica` by the runs it claims |
//! | `PULSE_JOB_RETRIES` | `3` | further attempts of a failed scheduled job run within its tick, before its outcome is `error` |
//! | `PULSE_JOB_RETRY_BACKOFF_MS` | `1000` | pause before the first retry of a failed job run, doubled before each next one |
//! | `PULSE_PARTITIONS_CRON` | `0 0 * * * *` | when the `partitions` job runs (cron, seconds first, UTC; default every hour): daily partitions kept ahead, the default partition drained into them |
//! | `PULSE_PARTITION_DRAIN_BATCH` | `10000` | rows moved out of the default partition per statement by the `partitions` job |

mod alert;
mod api;
mod auth;
mod database;
mod digest;
mod email;
mod kafka;
mod log;
mod monitor;
mod query;
mod retention;
mod scheduler;
mod stream;
mod webhook;
mod worker;

pub use alert::AlertConfig;
pub use api::ApiConfig;
pub use auth::{AuthConfig, MIN_JWT_SECRET_BYTES};
pub use database::DatabaseConfig;
pub use digest::DigestConfig;
pub use email::EmailConfig;
pub use kafka::KafkaConfig;
pub use log::{LogConfig, LogFormat};
pub use monitor::MonitorConfig;
pub use query::QueryConfig;
pub use retention::{RetentionConfig, RETENTION_OFFSET};
pub use scheduler::{cron_schedule, SchedulerConfig};
pub use stream::StreamConfig;
pub use webhook::WebhookConfig;
pub use worker::WorkerConfig;

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A variable that is missing or does not parse. Its `Display` is the one line a binary prints
/// before refusing to start.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// Loads `.env` if present. Call once, first thing in `main`.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

pub(super) fn raw(variable: &'static str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

pub(super) fn required(variable: &'static str) -> Result<String, ConfigError> {
    raw(variable).ok_or(ConfigError {
        variable,
        reason: "is required but not set".into(),
    })
}

pub(super) fn parsed<T>(variable: &'static str, default: T, expected: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match raw(variable) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|error| ConfigError {
            variable,
            reason: format!("{value:?} is not {expected} ({error})"),
        }),
    }
}

pub(super) fn positive<T>(variable: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Default + Copy,
    T::Err: Display,
{
    let value = parsed(variable, default, "a number")?;
    if value <= T::default() {
        return Err(ConfigError {
            variable,
            reason: "must be greater than zero".into(),
        });
    }
    Ok(value)
}

pub(super) fn millis(variable: &'static str, default: u64) -> Result<Duration, ConfigError> {
    positive(variable, default).map(Duration::from_millis)
}

pub(super) fn socket_addr(variable: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = raw(variable).unwrap_or_else(|| default.to_owned());
    value.parse().map_err(|_| ConfigError {
        variable,
        reason: format!("{value:?} is not a socket address (expected HOST:PORT, e.g. 127.0.0.1:8080)"),
    })
}

/// Reads an area's configuration or exits the process with one line naming the bad variable.
pub fn or_exit<T>(result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|error| {
        eprintln!("configuration error: {error}");
        std::process::exit(2)
    })
}
