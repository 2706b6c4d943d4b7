//! The ingest routes' rate limit: a token bucket per API key ([`crate::rate_limit`]) holding
//! one second's worth of the key's project limit (`projects.ingest_rate_limit_per_sec`, else
//! `PULSE_INGEST_RATE_LIMIT_PER_SEC`), counted in requests (a batch is one request), and the
//! middleware that applies it before the handler runs.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use uuid::Uuid;

use super::IngestState;
use crate::auth::SCOPE_INGEST;
use crate::error::ApiError;
use crate::rate_limit::{Decision, Limiter};

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

/// Middleware of the ingest routes: a request whose API key is valid takes a token from the
/// key's bucket or is answered 429 with `Retry-After`; every such answer carries the
/// `RateLimit-*` headers. Requests without a valid key pass through untouched, so the handler
/// answers them as usual (401/403/503). The authenticated key record is left in the request's
/// extensions, so the handler does not look the key up a second time. Only POST is ingest:
/// other methods (`GET /v1/events`, the read side, with its own limit) pass through.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let ingest = req.method() == actix_web::http::Method::POST;
    let decision = match req.app_data::<web::Data<IngestState>>().filter(|_| ingest) {
        Some(state) => match state.auth.authenticate(req.headers(), SCOPE_INGEST).await {
            Ok(record) => {
                let decision = state
                    .limiter
                    .check(record.key_id, record.rate_limit_per_sec, Instant::now());
                req.extensions_mut().insert(record);
                Some(decision)
            }
            Err(_) => None,
        },
        None => None,
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
}
