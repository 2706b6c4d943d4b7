//! Session credentials: short-lived access tokens (JWT, HS256) and long-lived refresh tokens.
//!
//! Access tokens are signed with `PULSE_JWT_SECRET` by `jsonwebtoken` and verified without the
//! database. Verification accepts HS256 only (the algorithm list is pinned, so `alg: none` and
//! RS/HS confusion are refused) and checks `exp` against the caller's clock with a small
//! leeway, so tests can pass the time explicitly. Claims: `sub` (user id), `sid` (the session,
//! i.e. the refresh-token family, so change-password can keep the caller's own session), `iat`,
//! `exp`, and `typ` = `access`.
//!
//! Refresh tokens are `rt_` + 43 base64url characters (256 random bits); only their SHA-256 is
//! stored (`refresh_tokens.token_hash`).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pulse_shared::keys;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Accepted clock difference between replicas when checking `exp`.
const LEEWAY_SECS: i64 = 5;
/// Every refresh token starts with this.
pub const REFRESH_PREFIX: &str = "rt_";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) the token was issued for.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

/// Why an access token was refused. The client is told only "invalid or expired".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// `secret` is `PULSE_JWT_SECRET` (validated to be at least 32 bytes by the config).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked in `verify` against the caller's `now`.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|claim| (*claim).to_owned()).collect();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// An access token for `user` in session `sid`, valid from `now` for `ttl_secs`.
    pub fn issue(&self, user: Uuid, sid: Uuid, now: i64, ttl_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user,
            sid,
            iat: now,
            exp: now + ttl_secs,
            typ: "access".to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a token signed with this key, of type `access`, not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?
            .claims;
        if claims.typ != "access" {
            return Err(TokenError::Malformed);
        }
        if claims.exp + LEEWAY_SECS <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new refresh token: `plain` goes to the client once, `hash` to the database.
pub struct RefreshToken {
    pub plain: String,
    pub hash: Vec<u8>,
}

/// Generates a refresh token.
pub fn new_refresh_token() -> RefreshToken {
    let token = keys::secret_token(REFRESH_PREFIX);
    RefreshToken {
        plain: token.plain,
        hash: token.hash,
    }
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(plain: &str) -> Vec<u8> {
    keys::hash(plain)
}

/// Shape check before any lookup.
pub fn looks_like_refresh_token(candidate: &str) -> bool {
    keys::has_token_shape(REFRESH_PREFIX, candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The `HEADER.PAYLOAD` of the jwt.io example token, signed with "your-256-bit-secret".
    const JWT_IO_SIGNING_INPUT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";

    #[test]
    fn known_answer_signature() {
        // The well-known jwt.io HS256 example; its signature is published with it.
        let key = EncodingKey::from_secret(b"your-256-bit-secret");
        let signature =
            jsonwebtoken::crypto::sign(JWT_IO_SIGNING_INPUT.as_bytes(), &key, Algorithm::HS256).expect("sign");
        assert_eq!(signature, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
    }

    #[test]
    fn round_trip_and_expiry() {
        let keys = JwtKeys::new(SECRET);
        let user = Uuid::now_v7();
        let sid = Uuid::now_v7();
        let token = keys.issue(user, sid, 1_000, 900).expect("signed");
        let claims = keys.verify(&token, 1_100).expect("valid");
        assert_eq!((claims.sub, claims.sid, claims.exp), (user, sid, 1_900));
        assert_eq!(keys.verify(&token, 1_900 + LEEWAY_SECS), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let keys = JwtKeys::new(SECRET);
        let token = keys.issue(Uuid::now_v7(), Uuid::now_v7(), 1_000, 900).expect("signed");
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&token, 1_000), Err(TokenError::BadSignature));

        let (rest, _) = token.rsplit_once('.').expect("three parts");
        let (_, payload) = rest.split_once('.').expect("header");
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            keys.verify(&format!("{none_header}.{payload}."), 1_000),
            Err(TokenError::Malformed)
        );

        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"sub": Uuid::now_v7(), "sid": Uuid::now_v7(), "iat": 0, "exp": i64::MAX, "typ": "access"}))
                .expect("json"),
        );
        let signature = token.rsplit_once('.').expect("sig").1;
        let (header, _) = token.split_once('.').expect("header");
        assert_eq!(
            keys.verify(&format!("{header}.{forged}.{signature}"), 1_000),
            Err(TokenError::BadSignature)
        );
        for garbage in ["", "a.b", "a.b.c.d", "...", "pk_abc"] {
            assert!(keys.verify(garbage, 1_000).is_err(), "{garbage}");
        }
    }

    #[test]
    fn refresh_tokens_are_well_formed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert!(looks_like_refresh_token(&a.plain), "{}", a.plain);
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.hash, hash_refresh_token(&a.plain));
        assert!(!looks_like_refresh_token("rt_short"));
    }
}
