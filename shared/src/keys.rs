//! Secret tokens: API keys (`pk_…`) and, through [`secret_token`], refresh tokens (`rt_…`).
//!
//! A token is its prefix followed by 43 base64url characters (256 random bits). Only its
//! SHA-256 is stored; of an API key the first 11 characters (`pk_` + 8) are also kept as a
//! display prefix so users can tell keys apart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "pk_";
const DISPLAY_PREFIX_LEN: usize = 11;

/// A freshly generated key: `plain` is shown once and never stored.
pub struct GeneratedKey {
    pub plain: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// A fresh secret: `plain` (`prefix` + 256 random bits in base64url) goes to its owner once,
/// `hash` to the database.
pub struct SecretToken {
    pub plain: String,
    pub hash: Vec<u8>,
}

/// Base64url characters of 32 random bytes, unpadded.
const SECRET_CHARS: usize = 43;

/// Generates a secret token starting with `prefix`.
pub fn secret_token(prefix: &str) -> SecretToken {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plain = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(secret));
    SecretToken {
        hash: hash(&plain),
        plain,
    }
}

/// Cheap shape check of a token of `prefix`, done before any lookup.
pub fn has_token_shape(prefix: &str, candidate: &str) -> bool {
    candidate.len() == prefix.len() + SECRET_CHARS
        && candidate.starts_with(prefix)
        && candidate[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn generate() -> GeneratedKey {
    let token = secret_token(KEY_PREFIX);
    GeneratedKey {
        prefix: token.plain[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: token.hash,
        plain: token.plain,
    }
}

/// The stored form of a key.
pub fn hash(plain: &str) -> Vec<u8> {
    Sha256::digest(plain.as_bytes()).to_vec()
}

/// Cheap shape check done before any lookup, so garbage never reaches the cache or database.
pub fn looks_like_key(candidate: &str) -> bool {
    has_token_shape(KEY_PREFIX, candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(looks_like_key(&a.plain), "{}", a.plain);
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.hash, hash(&a.plain));
        assert_eq!(a.hash.len(), 32);
        assert!(a.plain.starts_with(&a.prefix));
        assert!(!looks_like_key("pk_short"));
        assert!(!looks_like_key(&a.plain.replace("pk_", "sk_")));
    }
}
