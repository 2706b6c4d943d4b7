//! In-memory token buckets: per API key for ingest, per client IP and per account for login.
//!
//! A bucket holds at most `capacity` tokens and refills continuously at `refill_per_sec`; a
//! request takes one token or is refused with the time until one is back (`Retry-After`).
//! Ingest buckets hold one second's worth of the key's project limit
//! (`projects.ingest_rate_limit_per_sec`, else `PULSE_INGEST_RATE_LIMIT_PER_SEC`), counted in
//! requests (a batch is one request). Login buckets hold a minute's worth.
//!
//! Buckets live in each api replica's memory, on purpose: the check costs a mutex and a few
//! float operations, with no network round trip on the ingest hot path, and it keeps working
//! when PostgreSQL is slow. The consequence: with N replicas behind a load balancer a key can
//! reach up to N times its limit (the limit is per replica). Balancers spread a key's traffic
//! roughly evenly, so set the project limit to the wanted total divided by N. A shared limiter
//! (PostgreSQL or Redis) would make the limit exact at the price of a round trip per request.
//!
//! Idle buckets are dropped once they would be full again, so memory follows the number of keys
//! and IPs active in the last few seconds (ingest) or minute (login), not all that ever came.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use uuid::Uuid;

use crate::auth::SCOPE_INGEST;
use crate::error::ApiError;
use crate::ingest::IngestState;
use crate::management::ManagementState;

/// Maps grow to this many buckets before idle ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// `RateLimit-Limit`.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    capacity: f64,
    refill_per_sec: f64,
}

impl Bucket {
    fn refilled(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * self.refill_per_sec).min(self.capacity)
    }
}

/// The outcome of one check, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Bucket capacity.
    pub limit: u64,
    /// Whole tokens left after this request.
    pub remaining: u64,
    /// Seconds until the bucket is full.
    pub reset_secs: u64,
    /// Seconds until a token is available (0 when allowed).
    pub retry_after_secs: u64,
}

impl Decision {
    /// Writes the `RateLimit-*` headers (and `Retry-After` when refused) onto a response.
    pub fn apply(&self, headers: &mut actix_web::http::header::HeaderMap) {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(self.reset_secs));
        if !self.allowed {
            headers.insert(
                actix_web::http::header::RETRY_AFTER,
                HeaderValue::from(self.retry_after_secs),
            );
        }
    }
}

/// Token buckets keyed by `K`.
pub struct Limiter<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Default for Limiter<K> {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// Takes a token from `key`'s bucket (created full) if there is one.
    pub fn check(&self, key: &K, capacity: f64, refill_per_sec: f64, now: Instant) -> Decision {
        let capacity = capacity.max(1.0);
        let refill_per_sec = refill_per_sec.max(f64::MIN_POSITIVE);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, bucket| bucket.refilled(now) < bucket.capacity);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
            capacity,
            refill_per_sec,
        });
        // A changed limit takes effect at once; tokens above the new capacity are dropped.
        bucket.capacity = capacity;
        bucket.refill_per_sec = refill_per_sec;
        let mut tokens = bucket.refilled(now);
        let allowed = tokens >= 1.0;
        if allowed {
            tokens -= 1.0;
        }
        bucket.tokens = tokens;
        bucket.at = now;
        let secs = |missing: f64| (missing.max(0.0) / refill_per_sec).ceil() as u64;
        Decision {
            allowed,
            limit: capacity as u64,
            remaining: tokens.floor() as u64,
            reset_secs: secs(capacity - tokens),
            retry_after_secs: if allowed { 0 } else { secs(1.0 - tokens).max(1) },
        }
    }

    /// Buckets currently held (for tests).
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|buckets| buckets.len()).unwrap_or(0)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per API key ingest limiter, shared by the actix workers of one replica.
pub struct IngestLimiter {
    buckets: Limiter<Uuid>,
    default_per_sec: u32,
}

impl IngestLimiter {
    /// `default_per_sec` applies to projects without their own limit.
    pub fn new(default_per_sec: u32) -> Self {
        Self {
            buckets: Limiter::default(),
            default_per_sec,
        }
    }

    /// Takes one request from `key_id`'s bucket; `project_limit` is the project's setting.
    pub fn check(&self, key_id: Uuid, project_limit: Option<i32>, now: Instant) -> Decision {
        let rate = project_limit
            .and_then(|limit| u32::try_from(limit).ok())
            .filter(|limit| *limit > 0)
            .unwrap_or(self.default_per_sec);
        let rate = f64::from(rate);
        self.buckets.check(&key_id, rate, rate, now)
    }
}

/// Login limits: per client IP (login and register) and per account (login).
pub struct LoginLimiter {
    by_ip: Limiter<std::net::IpAddr>,
    by_account: Limiter<String>,
    per_min_ip: u32,
    per_min_account: u32,
}

impl LoginLimiter {
    pub fn new(per_min_ip: u32, per_min_account: u32) -> Self {
        Self {
            by_ip: Limiter::default(),
            by_account: Limiter::default(),
            per_min_ip,
            per_min_account,
        }
    }

    /// One attempt from `ip`: refused with 429 when the IP's minute budget is spent.
    pub fn check_ip(&self, ip: Option<std::net::IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        let per_min = f64::from(self.per_min_ip);
        refuse_if_denied(self.by_ip.check(&ip, per_min, per_min / 60.0, Instant::now()))
    }

    /// One login attempt for `email` (normalized).
    pub fn check_account(&self, email: &str) -> Result<(), ApiError> {
        let per_min = f64::from(self.per_min_account);
        refuse_if_denied(
            self.by_account
                .check(&email.to_owned(), per_min, per_min / 60.0, Instant::now()),
        )
    }
}

fn refuse_if_denied(decision: Decision) -> Result<(), ApiError> {
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        })
    }
}

/// Middleware of the ingest routes: a request whose API key is valid takes a token from the
/// key's bucket or is answered 429 with `Retry-After`; every such answer carries the
/// `RateLimit-*` headers. Requests without a valid key pass through untouched, so the handler
/// answers them as usual (401/403/503). The authenticated key record is left in the request's
/// extensions, so the handler does not look the key up a second time.
pub async fn ingest_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let decision = match (
        req.app_data::<web::Data<IngestState>>(),
        req.app_data::<web::Data<ManagementState>>(),
    ) {
        (Some(state), Some(management)) => match state.auth.authenticate(req.headers(), SCOPE_INGEST).await {
            Ok(record) => {
                let decision =
                    management
                        .ingest_limiter
                        .check(record.key_id, record.rate_limit_per_sec, Instant::now());
                req.extensions_mut().insert(record);
                Some(decision)
            }
            Err(_) => None,
        },
        _ => None,
    };
    match decision {
        Some(decision) if !decision.allowed => {
            let mut response = ApiError::RateLimited {
                retry_after_secs: decision.retry_after_secs,
            }
            .error_response();
            decision.apply(response.headers_mut());
            Ok(req.into_response(response).map_into_right_body())
        }
        decision => {
            let mut response = next.call(req).await?;
            if let Some(decision) = decision {
                decision.apply(response.headers_mut());
            }
            Ok(response.map_into_left_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_empties_then_refills() {
        let limiter = Limiter::default();
        let start = Instant::now();
        for expected_remaining in (0..3).rev() {
            let decision = limiter.check(&"k", 3.0, 1.0, start);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            assert_eq!(decision.limit, 3);
        }
        let refused = limiter.check(&"k", 3.0, 1.0, start);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 3);
        let later = limiter.check(&"k", 3.0, 1.0, start + Duration::from_millis(1_100));
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        // Another key has its own bucket.
        assert!(limiter.check(&"other", 3.0, 1.0, start).allowed);
    }

    #[test]
    fn slow_refill_gives_a_long_retry_after() {
        let limiter = Limiter::default();
        let now = Instant::now();
        assert!(limiter.check(&1, 1.0, 1.0 / 60.0, now).allowed);
        let refused = limiter.check(&1, 1.0, 1.0 / 60.0, now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 60);
    }

    #[test]
    fn ingest_limit_uses_project_setting_else_default() {
        let limiter = IngestLimiter::new(1_000);
        let now = Instant::now();
        let key = Uuid::now_v7();
        assert_eq!(limiter.check(key, None, now).limit, 1_000);
        // The lowered limit caps the bucket at 2 tokens: two requests pass, the third waits.
        assert_eq!(limiter.check(key, Some(2), now).limit, 2);
        assert!(limiter.check(key, Some(2), now).allowed);
        let refused = limiter.check(key, Some(2), now);
        assert!(!refused.allowed, "{refused:?}");
        assert_eq!(limiter.check(Uuid::now_v7(), Some(0), now).limit, 1_000);
    }

    #[test]
    fn idle_buckets_are_swept() {
        let limiter = Limiter::default();
        let now = Instant::now();
        for key in 0..=SWEEP_ABOVE {
            limiter.check(&key, 10.0, 10.0, now);
        }
        assert_eq!(limiter.len(), SWEEP_ABOVE + 1);
        limiter.check(&usize::MAX, 10.0, 10.0, now + Duration::from_secs(1));
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn decision_headers() {
        let limiter = Limiter::default();
        let now = Instant::now();
        limiter.check(&0, 1.0, 1.0, now);
        let refused = limiter.check(&0, 1.0, 1.0, now);
        let mut headers = actix_web::http::header::HeaderMap::new();
        refused.apply(&mut headers);
        assert_eq!(headers.get("ratelimit-limit").expect("limit"), "1");
        assert_eq!(headers.get("ratelimit-remaining").expect("remaining"), "0");
        assert_eq!(headers.get("retry-after").expect("retry"), "1");
    }
}
