//! Paging of the incident lists: newest first by `started_at`, then by id, with the same
//! `limit` bounds as the webhook lists (`webhooks::page`, whose id cursor the rule list uses
//! as it is). Incidents are ordered by when they started, which the worker writes, not by id,
//! so their cursor carries both: the next page is everything strictly before the last
//! incident shown in that order, which never repeats or skips one.
//!
//! Wire form: URL-safe base64 (no padding) of `i1.<started_at in µs since the epoch>.<id>`
//! (PostgreSQL keeps microseconds, so the position is exact).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::management::webhooks::page::{checked_limit, decoded_cursor, finish_page};

/// A checked `limit` and the position the page starts after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentPageRequest {
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl IncidentPageRequest {
    /// Checks `limit` and decodes `cursor`; each problem is a 400 naming its parameter.
    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            limit: checked_limit(limit)?,
            after: decoded_cursor(cursor, decode)?,
        })
    }

    /// How many rows to load: one more than shown tells whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page's rows (at most `limit`) and the cursor of the next page, if any.
    pub fn finish<T>(&self, rows: Vec<T>, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> (Vec<T>, Option<String>) {
        finish_page(self.limit, rows, |row| encode(key(row)))
    }
}

fn encode((started_at, id): (DateTime<Utc>, Uuid)) -> String {
    URL_SAFE_NO_PAD.encode(format!("i1.{}.{id}", started_at.timestamp_micros()))
}

fn decode(text: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let (micros, id) = std::str::from_utf8(&bytes).ok()?.strip_prefix("i1.")?.split_once('.')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::management::webhooks::page::{DEFAULT_LIMIT, MAX_LIMIT};

    #[test]
    fn cursors_round_trip_and_limits_are_bounded() {
        let position = (
            DateTime::from_timestamp_micros(1_764_583_200_123_456).expect("time"),
            Uuid::now_v7(),
        );
        assert_eq!(decode(&encode(position)), Some(position));
        for bad in [
            "",
            "nope",
            &URL_SAFE_NO_PAD.encode("i1.x.y"),
            &URL_SAFE_NO_PAD.encode(format!("w1.{}", position.1)),
            &URL_SAFE_NO_PAD.encode(format!("i1.{}", position.1)),
        ] {
            assert!(IncidentPageRequest::new(None, Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            IncidentPageRequest::new(None, None).expect("default").limit,
            DEFAULT_LIMIT
        );
        assert!(IncidentPageRequest::new(Some(0), None).is_err());
        assert!(IncidentPageRequest::new(Some(MAX_LIMIT + 1), None).is_err());
        let page = IncidentPageRequest::new(Some(1), None).expect("one");
        let (rows, next) = page.finish(vec![position, position], |row| *row);
        assert_eq!(rows.len(), 1);
        assert_eq!(next.as_deref().and_then(decode), Some(position));
    }
}
