//! Login limits: per client IP (login and register) and per account (login), each a token
//! bucket of [`crate::rate_limit`] holding a minute's worth of attempts
//! (`PULSE_LOGIN_RATE_PER_MIN_IP`, `PULSE_LOGIN_RATE_PER_MIN_ACCOUNT`).

use std::time::Instant;

use crate::error::ApiError;
use crate::rate_limit::{refuse_if_denied, Limiter};

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
