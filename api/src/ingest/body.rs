//! Request bodies: the `Content-Type` check, reading the payload with a hard size limit and
//! gzip decoding into a size-bounded buffer (actix-web is built without its compress features,
//! so nothing decodes bodies behind our back).
//!
//! Limits apply twice: to the bytes on the wire and to the decoded bytes, so neither a large
//! upload nor a zip bomb can make the api hold more than `PULSE_MAX_BODY_BYTES` per request.

use std::io::Read;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Bytes, BytesMut, Payload};
use flate2::read::MultiGzDecoder;
use futures::StreamExt;

use crate::error::ApiError;

/// Longest time to receive a whole body; past it the request is answered 408 so a stalled
/// client cannot hold a connection and its buffer forever.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Compressed bodies larger than this are decoded on the blocking pool, not on the actix worker
/// thread that serves other connections meanwhile.
const INLINE_DECODE_MAX: usize = 64 * 1024;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// `Content-Type` must be `application/json` or `application/<something>+json`, parameters
/// (`; charset=utf-8`) allowed, case-insensitive. Missing counts as wrong.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(String::new()));
    };
    let raw = value.to_str().unwrap_or_default();
    let essence = raw.split(';').next().unwrap_or_default().trim();
    let is_json = essence.eq_ignore_ascii_case("application/json")
        || essence
            .get(..12)
            .is_some_and(|start| start.eq_ignore_ascii_case("application/"))
            && essence.len() > 17
            && essence
                .get(essence.len() - 5..)
                .is_some_and(|end| end.eq_ignore_ascii_case("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(truncate(raw)))
    }
}

/// `Content-Encoding`: absent, `identity` or `gzip` (also `x-gzip`); anything else is 415.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if raw.eq_ignore_ascii_case("gzip") || raw.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else {
        Err(ApiError::UnsupportedEncoding(truncate(raw)))
    }
}

/// Echo at most a few characters of a client's header in an error message.
fn truncate(value: &str) -> String {
    value.chars().take(100).collect()
}

/// Reads the whole payload within [`READ_TIMEOUT`], failing as soon as it exceeds `limit`
/// bytes (a `Content-Length` above the limit is refused before reading anything).
pub async fn read(headers: &HeaderMap, payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    tokio::time::timeout(READ_TIMEOUT, read_all(headers, payload, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(READ_TIMEOUT.as_secs()))?
}

async fn read_all(headers: &HeaderMap, mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::BadRequest(format!("cannot read the body: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Decodes the body; the result holds at most `limit` bytes.
pub async fn decode(body: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, ApiError> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip if body.len() <= INLINE_DECODE_MAX => gunzip(&body, limit),
        Encoding::Gzip => tokio::task::spawn_blocking(move || gunzip(&body, limit))
            .await
            .map_err(|error| ApiError::Internal(format!("gzip task failed: {error}")))?,
    }
}

/// Decompresses gzip (one or more members) into at most `limit` bytes.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    if compressed.is_empty() {
        return Err(ApiError::InvalidGzip("empty body".into()));
    }
    // A first guess at the size; the gzip trailer's ISIZE is attacker-controlled, so not that.
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let take = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(compressed)
        .take(take)
        .read_to_end(&mut out)
        .map_err(|error| ApiError::InvalidGzip(error.to_string()))?;
    if out.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/vnd.pulse+json",
        ] {
            assert!(check_content_type(&headers(header::CONTENT_TYPE, ok)).is_ok(), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/+json",
            "json",
            "",
        ] {
            let error = check_content_type(&headers(header::CONTENT_TYPE, bad)).expect_err(bad);
            assert_eq!(error.code(), "UNSUPPORTED_MEDIA_TYPE");
        }
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(encoding(&HeaderMap::new()).expect("none"), Encoding::Identity);
        assert_eq!(
            encoding(&headers(header::CONTENT_ENCODING, "identity")).expect("identity"),
            Encoding::Identity
        );
        assert_eq!(
            encoding(&headers(header::CONTENT_ENCODING, "GZIP")).expect("gzip"),
            Encoding::Gzip
        );
        let error = encoding(&headers(header::CONTENT_ENCODING, "br")).expect_err("br");
        assert_eq!(error.status().as_u16(), 415);
    }

    #[test]
    fn gzip_round_trip_multi_member_and_limits() {
        let data = br#"{"event_type":"x"}"#;
        assert_eq!(&gunzip(&gzip(data), 1024).expect("decodes")[..], data);

        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(&gunzip(&two, 1024).expect("two members")[..], b"abcd");

        assert_eq!(
            &gunzip(&gzip(&[b'a'; 100]), 100).expect("exactly the limit")[..],
            &[b'a'; 100][..]
        );
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            gunzip(&bomb, 1024 * 1024).expect_err("bomb").code(),
            "PAYLOAD_TOO_LARGE"
        );
    }

    #[test]
    fn corrupt_gzip_is_a_client_error() {
        assert_eq!(
            gunzip(b"{\"not\": \"gzip\"}", 1024).expect_err("plain").code(),
            "INVALID_GZIP"
        );
        assert_eq!(gunzip(b"", 1024).expect_err("empty").code(), "INVALID_GZIP");
        let mut truncated = gzip(b"hello world, hello world");
        truncated.truncate(truncated.len() - 6);
        assert_eq!(gunzip(&truncated, 1024).expect_err("truncated").code(), "INVALID_GZIP");
        let mut flipped = gzip(b"hello world, hello world");
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        assert!(gunzip(&flipped, 1024).is_err());
    }
}
