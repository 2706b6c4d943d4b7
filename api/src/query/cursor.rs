//! The opaque paging cursor of `GET /v1/events`: the range the first page resolved (so a
//! default "last 24 hours" does not slide between pages) and the position (timestamp, id) of
//! the last event returned. Pages are newest first in (timestamp, id) order, so the next page
//! is everything strictly before that position: an event is never repeated, and none stored
//! before the first page is skipped, whatever arrives meanwhile.
//!
//! Wire form: URL-safe base64 (no padding) of `v1.<start µs>.<end µs>.<timestamp µs>.<id>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub timestamp: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = format!(
            "v1.{}.{}.{}.{}",
            self.start.timestamp_micros(),
            self.end.timestamp_micros(),
            self.timestamp.timestamp_micros(),
            self.id
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor, or `None` when `text` is not one this api wrote.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut parts = text.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let mut time = || DateTime::from_timestamp_micros(parts.next()?.parse().ok()?);
        let (start, end, timestamp) = (time()?, time()?, time()?);
        let id = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            start,
            end,
            timestamp,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let cursor = Cursor {
            start: "2026-11-30T12:00:00Z".parse().expect("start"),
            end: "2026-12-01T12:00:00Z".parse().expect("end"),
            timestamp: "2026-12-01T11:59:59.123456Z".parse().expect("timestamp"),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "nope",
            "djEuMS4yLjM",
            &URL_SAFE_NO_PAD.encode("v2.1.2.3.x"),
            &(cursor.encode() + "A"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
