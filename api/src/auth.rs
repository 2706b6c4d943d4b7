//! API key authentication for the ingest routes, without a database round trip per request.
//!
//! - The key comes from `Authorization: Bearer <key>` or `X-Api-Key: <key>`; a value that does
//!   not have the shape of a key (`keys::looks_like_key`) is refused before any lookup.
//! - Keys are looked up by their SHA-256 and the answer is cached (moka): a known key for
//!   `PULSE_API_KEY_CACHE_TTL_SECS` (so a revoked key keeps working at most that long), an
//!   unknown or revoked one for [`NEGATIVE_TTL`]. Concurrent misses for one key share one query
//!   (`try_get_with`); a failed query is not cached and answers 503.
//! - `expires_at` and the scope are checked on every request, cached or not.
//! - `last_used_at` is written in the background, at most once a minute per key, in batches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderMap};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use moka::future::Cache;
use moka::Expiry;
use pulse_shared::db::{self, DbPool};
use pulse_shared::keys;
use pulse_shared::schema::{api_keys, projects};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ApiError;

/// How long an unknown or revoked key is remembered as such.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Longest wait for the database when a key is not cached.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per key.
const TOUCH_INTERVAL_SECS: i64 = 60;
/// How often the background task writes the keys used since its last write.
const TOUCH_FLUSH_EVERY: Duration = Duration::from_secs(10);
/// The most cached keys (a known key costs about 200 bytes).
const CACHE_CAPACITY: u64 = 100_000;

/// Scope needed by the ingest routes.
pub const SCOPE_INGEST: &str = "ingest";
/// Scope needed by the read routes (queries, exports).
pub const SCOPE_READ: &str = "read";

/// A key known to the database, as cached.
#[derive(Debug)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub project_id: Uuid,
    /// The project id as text: the Kafka message key, computed once per cache fill.
    pub kafka_key: Box<str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    /// The project's ingest limit (requests per second per key), `None` for the default.
    pub rate_limit_per_sec: Option<i32>,
    /// Unix seconds of the last `last_used_at` touch requested through this record.
    last_touch: AtomicI64,
}

/// A key row: id, project, scopes, expiry, revocation, the project's rate limit.
type KeyRow = (
    Uuid,
    Uuid,
    Vec<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i32>,
);

/// `None` caches "no such usable key".
type Cached = Option<Arc<KeyRecord>>;

struct KeyExpiry {
    ttl: Duration,
}

impl Expiry<[u8; 32], Cached> for KeyExpiry {
    fn expire_after_create(&self, _key: &[u8; 32], value: &Cached, _created_at: Instant) -> Option<Duration> {
        Some(if value.is_some() { self.ttl } else { NEGATIVE_TTL })
    }
}

/// The authenticator shared by every actix worker.
pub struct Auth {
    cache: Cache<[u8; 32], Cached>,
    pool: DbPool,
    touches: mpsc::Sender<Uuid>,
    retry_after_secs: u64,
}

/// Evicts keys from an [`Auth`]'s cache (a cheap clone of the cache handle, nothing else).
#[derive(Clone)]
pub struct KeyEvictor {
    cache: Cache<[u8; 32], Cached>,
}

impl KeyEvictor {
    /// Forgets a key (by its stored hash) in this replica's cache, so that a revocation made
    /// here takes effect here at once; other replicas follow within the cache TTL.
    pub async fn evict(&self, stored_hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(stored_hash) {
            self.cache.invalidate(&hash).await;
        }
    }
}

/// The background task that writes `last_used_at`; run it with [`Toucher::run`].
pub struct Toucher {
    pool: DbPool,
    receiver: mpsc::Receiver<Uuid>,
}

impl Auth {
    pub fn new(pool: DbPool, ttl: Duration) -> (Self, Toucher) {
        let (touches, receiver) = mpsc::channel(4096);
        let cache = Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .expire_after(KeyExpiry { ttl })
            .build();
        let auth = Self {
            cache,
            pool: pool.clone(),
            touches,
            retry_after_secs: 2,
        };
        (auth, Toucher { pool, receiver })
    }

    /// The key of the request, checked: known, not revoked, not expired, with `scope`.
    pub async fn authenticate(&self, headers: &HeaderMap, scope: &'static str) -> Result<Arc<KeyRecord>, ApiError> {
        let presented = presented_key(headers)?;
        let hash = key_hash(presented);
        let record = self
            .cache
            .try_get_with(hash, self.lookup(hash))
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "API key lookup failed");
                ApiError::AuthUnavailable {
                    retry_after_secs: self.retry_after_secs,
                }
            })?
            .ok_or(ApiError::Unauthorized("invalid API key"))?;
        let now = Utc::now();
        if record.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(ApiError::Unauthorized("API key has expired"));
        }
        if !record.scopes.iter().any(|granted| granted == scope) {
            return Err(ApiError::Forbidden(scope));
        }
        self.touch(&record, now.timestamp());
        Ok(record)
    }

    async fn lookup(&self, hash: [u8; 32]) -> Result<Cached, String> {
        let query = async {
            use diesel_async::RunQueryDsl;
            let mut conn = db::connection(&self.pool).await.map_err(|error| error.to_string())?;
            api_keys::table
                .inner_join(projects::table)
                .filter(api_keys::key_hash.eq(&hash[..]))
                // A deleted project's keys are revoked in the same transaction; this is belt
                // and braces.
                .filter(projects::deleted_at.is_null())
                .select((
                    api_keys::id,
                    api_keys::project_id,
                    api_keys::scopes,
                    api_keys::expires_at,
                    api_keys::revoked_at,
                    projects::ingest_rate_limit_per_sec,
                ))
                .first::<KeyRow>(&mut conn)
                .await
                .optional()
                .map_err(|error| error.to_string())
        };
        let row = tokio::time::timeout(LOOKUP_TIMEOUT, query)
            .await
            .map_err(|_| format!("no answer from the database within {LOOKUP_TIMEOUT:?}"))??;
        Ok(match row {
            Some((key_id, project_id, scopes, expires_at, None, rate_limit_per_sec)) => Some(Arc::new(KeyRecord {
                key_id,
                project_id,
                kafka_key: project_id.to_string().into_boxed_str(),
                expires_at,
                scopes,
                rate_limit_per_sec,
                last_touch: AtomicI64::new(0),
            })),
            // Unknown or revoked.
            Some((_, _, _, _, Some(_), _)) | None => None,
        })
    }

    /// A handle that evicts keys from this cache, for the management routes that revoke them.
    pub fn evictor(&self) -> KeyEvictor {
        KeyEvictor {
            cache: self.cache.clone(),
        }
    }

    /// Asks the background task to record a use, at most once a minute per cached record.
    fn touch(&self, record: &KeyRecord, now: i64) {
        let last = record.last_touch.load(Ordering::Relaxed);
        if now - last >= TOUCH_INTERVAL_SECS
            && record
                .last_touch
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // A full channel only delays `last_used_at`; never block a request for it.
            let _ = self.touches.try_send(record.key_id);
        }
    }
}

impl Toucher {
    /// Writes `last_used_at` for the keys used, every [`TOUCH_FLUSH_EVERY`], until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut written: HashMap<Uuid, Instant> = HashMap::new();
        let mut due: Vec<Uuid> = Vec::new();
        let mut tick = tokio::time::interval(TOUCH_FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                received = self.receiver.recv() => match received {
                    Some(key_id) => {
                        let fresh = written
                            .get(&key_id)
                            .is_none_or(|at| at.elapsed() >= Duration::from_secs(TOUCH_INTERVAL_SECS as u64));
                        if fresh && !due.contains(&key_id) {
                            due.push(key_id);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if due.is_empty() {
                        continue;
                    }
                    match self.write(&due).await {
                        Ok(()) => {
                            let now = Instant::now();
                            for key_id in due.drain(..) {
                                written.insert(key_id, now);
                            }
                            written.retain(|_, at| at.elapsed() < Duration::from_secs(TOUCH_INTERVAL_SECS as u64));
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, keys = due.len(), "Cannot record API key use");
                            due.clear();
                        }
                    }
                }
            }
        }
    }

    async fn write(&self, key_ids: &[Uuid]) -> Result<(), pulse_shared::Error> {
        use diesel_async::RunQueryDsl;
        let mut conn = db::connection(&self.pool).await?;
        diesel::update(api_keys::table.filter(api_keys::id.eq_any(key_ids)))
            .set(api_keys::last_used_at.eq(diesel::dsl::now))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// The key sent with the request, shape-checked.
/// Whether the request carries an API key (`X-Api-Key`, or a bearer token shaped `pk_…`)
/// rather than an access token: the read routes take either.
pub fn presents_api_key(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-api-key") {
        return true;
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim().starts_with(keys::KEY_PREFIX)
        })
}

fn presented_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let candidate = if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::Unauthorized("invalid API key"))?;
        match value.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
            _ => {
                return Err(ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <API key>`",
                ))
            }
        }
    } else if let Some(value) = headers.get("x-api-key") {
        value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("invalid API key"))?
            .trim()
    } else {
        return Err(ApiError::Unauthorized(
            "missing API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
        ));
    };
    if !keys::looks_like_key(candidate) {
        return Err(ApiError::Unauthorized("invalid API key"));
    }
    Ok(candidate)
}

fn key_hash(key: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    let digest = keys::hash(key);
    let len = digest.len().min(32);
    hash[..len].copy_from_slice(&digest[..len]);
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("header"),
        );
        map
    }

    #[test]
    fn keys_are_read_from_either_header_and_shape_checked() {
        let key = keys::generate().plain;
        assert_eq!(
            presented_key(&with("authorization", &format!("Bearer {key}"))).expect("bearer"),
            key
        );
        assert_eq!(
            presented_key(&with("authorization", &format!("bearer  {key} "))).expect("lower"),
            key
        );
        assert_eq!(presented_key(&with("x-api-key", &key)).expect("x-api-key"), key);
        for bad in [
            with("authorization", &format!("Basic {key}")),
            with("authorization", &key),
            with("authorization", "Bearer pk_short"),
            with("x-api-key", "garbage"),
            HeaderMap::new(),
        ] {
            assert_eq!(presented_key(&bad).expect_err("refused").code(), "UNAUTHORIZED");
        }
    }

    #[test]
    fn hash_matches_the_stored_form() {
        let key = keys::generate();
        assert_eq!(&key_hash(&key.plain)[..], &key.hash[..]);
    }
}
