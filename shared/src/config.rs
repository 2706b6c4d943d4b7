//! Configuration of every Pulse binary, read from `PULSE_*` environment variables in this one
//! place (an optional `.env` file in the working directory is loaded first).
//!
//! Each area has its own struct with the default beside the field. Every value is validated
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
//! | `PULSE_TOPIC_PREFIX` | `pulse.` | prefix of every topic name (`pulse.events`, `pulse.events.dlq`) |
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
//! | `PULSE_PURGE_INTERVAL_SECS` | `5` | how often the scheduler looks for deleted projects to purge |
//! | `PULSE_PURGE_BATCH_SIZE` | `5000` | events deleted per purge transaction |
//! | `PULSE_SHUTDOWN_TIMEOUT_SECS` | `30` | longest graceful shutdown (in-flight requests, producer flush) |
//! | `PULSE_WORKER_ADDR` | `127.0.0.1:9101` | worker health and metrics address |
//! | `PULSE_WORKER_GROUP` | `pulse-persist` | Kafka consumer group of the persist worker |
//! | `PULSE_WORKER_BATCH_SIZE` | `2000` | most events written in one transaction |
//! | `PULSE_WORKER_BATCH_WAIT_MS` | `50` | longest wait to fill a batch |
//! | `PULSE_WORKER_RETRY_MAX_MS` | `30000` | longest back-off between database retries |
//! | `PULSE_SCHEDULER_ADDR` | `127.0.0.1:9102` | scheduler health and metrics address |

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

fn raw(variable: &'static str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn required(variable: &'static str) -> Result<String, ConfigError> {
    raw(variable).ok_or(ConfigError {
        variable,
        reason: "is required but not set".into(),
    })
}

fn parsed<T>(variable: &'static str, default: T, expected: &str) -> Result<T, ConfigError>
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

fn positive<T>(variable: &'static str, default: T) -> Result<T, ConfigError>
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

fn millis(variable: &'static str, default: u64) -> Result<Duration, ConfigError> {
    positive(variable, default).map(Duration::from_millis)
}

fn socket_addr(variable: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = raw(variable).unwrap_or_else(|| default.to_owned());
    value.parse().map_err(|_| ConfigError {
        variable,
        reason: format!("{value:?} is not a socket address (expected HOST:PORT, e.g. 127.0.0.1:8080)"),
    })
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    /// Connections in this process's pool.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection before the caller gets an error.
    pub pool_timeout: Duration,
    /// `statement_timeout` set on every connection.
    pub statement_timeout: Duration,
    /// Daily `events` partitions made sure to exist ahead of today.
    pub partitions_ahead_days: i32,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let url = required("PULSE_DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                variable: "PULSE_DATABASE_URL",
                reason: "must start with postgres:// or postgresql://".into(),
            });
        }
        Ok(Self {
            url,
            pool_size: positive("PULSE_DATABASE_POOL_SIZE", 16)?,
            pool_timeout: millis("PULSE_DATABASE_POOL_TIMEOUT_MS", 5_000)?,
            statement_timeout: millis("PULSE_DATABASE_STATEMENT_TIMEOUT_MS", 30_000)?,
            partitions_ahead_days: positive("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", 7)?,
        })
    }
}

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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive.
    pub filter: String,
}

impl LogConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let format = match raw("PULSE_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PULSE_LOG_FORMAT",
                    reason: format!("{other:?} is not text or json"),
                })
            }
        };
        let filter = raw("PULSE_LOG").unwrap_or_else(|| "info".into());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&filter) {
            return Err(ConfigError {
                variable: "PULSE_LOG",
                reason: format!("{filter:?} is not a valid filter ({error})"),
            });
        }
        Ok(Self { format, filter })
    }
}

/// Settings of the HTTP api (`pulse-api`).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub addr: SocketAddr,
    pub workers: usize,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    /// How long a checked API key is trusted without asking the database.
    pub api_key_cache_ttl: Duration,
    pub shutdown_timeout: Duration,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            addr: socket_addr("PULSE_API_ADDR", "127.0.0.1:8080")?,
            workers: positive("PULSE_API_WORKERS", cpus)?,
            max_batch_events: positive("PULSE_MAX_BATCH_EVENTS", 1_000)?,
            max_body_bytes: positive("PULSE_MAX_BODY_BYTES", 5 * 1024 * 1024)?,
            api_key_cache_ttl: Duration::from_secs(positive("PULSE_API_KEY_CACHE_TTL_SECS", 30)?),
            shutdown_timeout: Duration::from_secs(positive("PULSE_SHUTDOWN_TIMEOUT_SECS", 30)?),
        })
    }
}

/// Shortest accepted `PULSE_JWT_SECRET`, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Accounts, sessions and management settings of the api.
#[derive(Clone)]
pub struct AuthConfig {
    /// HS256 key signing access tokens.
    pub jwt_secret: Vec<u8>,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_token_ttl: Duration,
    /// Login and register attempts per client IP per minute.
    pub login_rate_per_min_ip: u32,
    /// Login attempts per account per minute.
    pub login_rate_per_min_account: u32,
    /// Ingest requests per second per API key when the project sets no limit.
    pub default_ingest_rate_per_sec: u32,
    /// Default grace period of a rotated API key.
    pub rotation_grace: Duration,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("login_rate_per_min_ip", &self.login_rate_per_min_ip)
            .field("login_rate_per_min_account", &self.login_rate_per_min_account)
            .field("default_ingest_rate_per_sec", &self.default_ingest_rate_per_sec)
            .field("rotation_grace", &self.rotation_grace)
            .finish()
    }
}

/// Checks the length of `PULSE_JWT_SECRET`; the message never shows the value.
fn jwt_secret(secret: String) -> Result<Vec<u8>, ConfigError> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError {
            variable: "PULSE_JWT_SECRET",
            reason: format!(
                "must be at least {MIN_JWT_SECRET_BYTES} bytes long (got {}); generate one with `openssl rand -base64 48`",
                secret.len()
            ),
        });
    }
    Ok(secret.into_bytes())
}

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            jwt_secret: jwt_secret(required("PULSE_JWT_SECRET")?)?,
            access_token_ttl: Duration::from_secs(positive("PULSE_ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_token_ttl: Duration::from_secs(positive("PULSE_REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?),
            login_rate_per_min_ip: positive("PULSE_LOGIN_RATE_PER_MIN_IP", 30)?,
            login_rate_per_min_account: positive("PULSE_LOGIN_RATE_PER_MIN_ACCOUNT", 10)?,
            default_ingest_rate_per_sec: positive("PULSE_INGEST_RATE_LIMIT_PER_SEC", 10_000)?,
            rotation_grace: Duration::from_secs(parsed(
                "PULSE_API_KEY_ROTATION_GRACE_SECS",
                24 * 3600,
                "a number of seconds",
            )?),
        })
    }
}

/// Settings of the persist worker (`pulse-worker`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub addr: SocketAddr,
    pub group: String,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub retry_max: Duration,
    pub shutdown_timeout: Duration,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: socket_addr("PULSE_WORKER_ADDR", "127.0.0.1:9101")?,
            group: raw("PULSE_WORKER_GROUP").unwrap_or_else(|| "pulse-persist".into()),
            batch_size: positive("PULSE_WORKER_BATCH_SIZE", 2_000)?,
            batch_wait: millis("PULSE_WORKER_BATCH_WAIT_MS", 50)?,
            retry_max: millis("PULSE_WORKER_RETRY_MAX_MS", 30_000)?,
            shutdown_timeout: Duration::from_secs(positive("PULSE_SHUTDOWN_TIMEOUT_SECS", 30)?),
        })
    }
}

/// Settings of the scheduler (`pulse-scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub addr: SocketAddr,
    /// How often the purge of deleted projects looks for work when idle.
    pub purge_interval: Duration,
    /// Events deleted per purge transaction.
    pub purge_batch_size: i64,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: socket_addr("PULSE_SCHEDULER_ADDR", "127.0.0.1:9102")?,
            purge_interval: Duration::from_secs(positive("PULSE_PURGE_INTERVAL_SECS", 5)?),
            purge_batch_size: positive("PULSE_PURGE_BATCH_SIZE", 5_000)?,
        })
    }
}

/// Reads an area's configuration or exits the process with one line naming the bad variable.
pub fn or_exit<T>(result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|error| {
        eprintln!("configuration error: {error}");
        std::process::exit(2)
    })
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

    #[test]
    fn jwt_secret_must_be_long_and_is_never_echoed() {
        let error = jwt_secret("short-secret".into()).expect_err("too short");
        assert!(error
            .to_string()
            .starts_with("PULSE_JWT_SECRET: must be at least 32 bytes"));
        assert!(!error.to_string().contains("short-secret"));
        assert_eq!(jwt_secret("x".repeat(32)).expect("long enough").len(), 32);
    }
}
