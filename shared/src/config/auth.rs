//! Accounts, sessions and limits of the api: `PULSE_JWT_SECRET`, token lifetimes, login and ingest rate limits, key rotation, password resets (`pulse-api`).

use std::time::Duration;

use super::{parsed, positive, required, ConfigError};

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
    /// How long a password-reset token stays valid.
    pub password_reset_ttl: Duration,
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
            .field("password_reset_ttl", &self.password_reset_ttl)
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
            password_reset_ttl: Duration::from_secs(positive("PULSE_PASSWORD_RESET_TTL_SECS", 3600)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
