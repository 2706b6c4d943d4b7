//! Signing secrets: `whsec_` + standard base64 of 24 to 64 bytes (Standard Webhooks). Pulse
//! makes 32 random bytes; a caller may bring its own in the same form.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;

/// The prefix every secret carries.
pub const PREFIX: &str = "whsec_";
/// Fewest and most secret bytes accepted.
pub const MIN_BYTES: usize = 24;
pub const MAX_BYTES: usize = 64;

/// A signing secret: its text form and the bytes the HMAC is keyed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

impl Secret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            text: format!("{PREFIX}{}", STANDARD.encode(&bytes)),
            bytes,
        }
    }

    /// Reads `whsec_…`; the error says what is wrong (never echoing the secret).
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(encoded) = text.strip_prefix(PREFIX) else {
            return Err(format!("a secret starts with {PREFIX:?}"));
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("after {PREFIX:?} a secret is standard base64"))?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(format!(
                "a secret holds {MIN_BYTES} to {MAX_BYTES} bytes, this one {}",
                bytes.len()
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_back_and_bad_ones_are_named() {
        let secret = Secret::generate();
        assert!(secret.as_str().starts_with("whsec_"));
        assert_eq!(Secret::parse(secret.as_str()).expect("parses"), secret);
        assert_ne!(Secret::generate(), secret);
        assert!(Secret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .expect_err("prefix")
            .contains("whsec_"));
        assert!(Secret::parse("whsec_!!!").expect_err("base64").contains("base64"));
        assert!(Secret::parse("whsec_c2hvcnQ=").expect_err("short").contains("24 to 64"));
        assert!(!format!("{secret:?}").contains(secret.as_str()));
    }
}
