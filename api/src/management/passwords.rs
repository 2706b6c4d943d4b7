//! Password hashing with argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1, the OWASP
//! recommendation), always on the blocking pool: a hash takes tens of milliseconds of CPU and
//! must not stall an actix worker that serves other connections.
//!
//! A login for an unknown email still verifies against a fixed dummy hash, so the answer takes
//! as long as for a known one and does not reveal which emails have accounts.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use crate::error::ApiError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters (argon2 accepts more; this bounds the work per
/// request to at most 4 KiB hashed).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A hash of a password nobody knows, verified when the account does not exist.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| hash_blocking("pulse-dummy-password-never-used").ok());

/// Checks the password rules; the message names the rule broken.
pub fn check_rules(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::InvalidField {
            field: "password",
            message: format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::InvalidField {
            field: "password",
            message: format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        });
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| format!("argon2 hash: {error}"))
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The PHC string (`$argon2id$…`) of `password`, computed on the blocking pool.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|error| ApiError::Internal(format!("password hash task: {error}")))?
        .map_err(ApiError::Internal)
}

/// Whether `password` matches `stored`; with `None` (no such account) it spends the same time
/// on a dummy hash and answers false.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify_blocking(&password, &stored),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                let _ = verify_blocking(&password, dummy);
            }
            false
        }
    })
    .await
    .map_err(|error| ApiError::Internal(format!("password verify task: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let stored = hash("correct horse battery".into()).await.expect("hash");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("correct horse battery".into(), Some(stored.clone()))
            .await
            .expect("verify"));
        assert!(!verify("wrong horse battery".into(), Some(stored))
            .await
            .expect("verify"));
        assert!(!verify("anything at all".into(), None).await.expect("verify"));
        assert!(!verify("x".into(), Some("not a phc string".into()))
            .await
            .expect("verify"));
    }

    #[test]
    fn rules() {
        assert!(check_rules("short").is_err());
        assert!(check_rules("long enough!").is_ok());
        assert!(check_rules(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }
}
