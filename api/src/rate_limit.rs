//! In-memory token buckets, the mechanism behind every limit of the api: per API key for ingest
//! ([`crate::ingest::limit`]), per client IP and per account for login
//! ([`crate::management::login_limit`]).
//!
//! A bucket holds at most `capacity` tokens and refills continuously at `refill_per_sec`; a
//! request takes one token or is refused with the time until one is back (`Retry-After`).
//!
//! Buckets live in each api replica's memory, on purpose: the check costs a mutex and a few
//! float operations, with no network round trip on the ingest hot path, and it keeps working
//! when PostgreSQL is slow. The consequence: with N replicas behind a load balancer a key can
//! reach up to N times its limit (the limit is per replica). Balancers spread a key's traffic
//! roughly evenly, so set the project limit to the wanted total divided by N. A shared limiter
//! (PostgreSQL or Redis) would make the limit exact at the price of a round trip per request.
//!
//! Idle buckets are dropped once they would be full again, so memory follows the number of keys
//! and IPs active recently, not all that ever came.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::error::ApiError;

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

    /// Buckets currently held (the sweep test reads it).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buckets.lock().map(|buckets| buckets.len()).unwrap_or(0)
    }
}

/// `Ok` when `decision` allowed the request, else 429 with its `Retry-After`.
pub fn refuse_if_denied(decision: Decision) -> Result<(), ApiError> {
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        })
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
    fn idle_buckets_are_swept() {
        let limiter = Limiter::default();
        let now = Instant::now();
        for key in 0..=SWEEP_ABOVE {
            limiter.check(&key, 10.0, 10.0, now);
        }
        assert_eq!(limiter.held(), SWEEP_ABOVE + 1);
        limiter.check(&usize::MAX, 10.0, 10.0, now + Duration::from_secs(1));
        assert_eq!(limiter.held(), 1);
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
