//! API key material: generation, the displayable prefix and the stored hash.
//!
//! A key is `pk_` followed by 43 base64url characters (256 random bits). Only its SHA-256 is
//! stored; the first 11 characters (`pk_` + 8) are kept as a prefix so users can tell keys apart.

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

pub fn generate() -> GeneratedKey {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plain = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    GeneratedKey {
        prefix: plain[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: hash(&plain),
        plain,
    }
}

/// The stored form of a key.
pub fn hash(plain: &str) -> Vec<u8> {
    Sha256::digest(plain.as_bytes()).to_vec()
}

/// Cheap shape check done before any lookup, so garbage never reaches the cache or database.
pub fn looks_like_key(candidate: &str) -> bool {
    candidate.len() == KEY_PREFIX.len() + 43
        && candidate.starts_with(KEY_PREFIX)
        && candidate[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
