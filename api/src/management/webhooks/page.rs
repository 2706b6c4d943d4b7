//! Paging of the webhook lists (endpoints, deliveries) and of the alert rules: newest first by id (UUIDv7, so by
//! creation), `limit` 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]), and an opaque `cursor`:
//! the `next_cursor` of the previous page, present while more rows follow. The next page is
//! everything with a smaller id than the last one shown, so a row is never shown twice and
//! rows created meanwhile never shift a page.
//!
//! Wire form: URL-safe base64 (no padding) of `w1.<id>`; `query::cursor` holds a time range
//! the events list needs and these lists do not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::error::ApiError;

/// Rows per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most rows per page.
pub const MAX_LIMIT: i64 = 100;

/// A checked `limit` and the id the page starts below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub before: Option<Uuid>,
}

impl PageRequest {
    /// Checks `limit` and decodes `cursor`; each problem is a 400 naming its parameter.
    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            limit: checked_limit(limit)?,
            before: decoded_cursor(cursor, decode)?,
        })
    }

    /// How many rows to load: one more than shown tells whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page's rows (at most `limit`) and the cursor of the next page, if any.
    pub fn finish<T>(&self, rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, Option<String>) {
        finish_page(self.limit, rows, |row| encode(id(row)))
    }
}

/// `limit`, defaulted and checked: a 400 naming it when outside 1 to [`MAX_LIMIT`]. Shared by
/// every management list (`alerts::page` keeps its own cursor form).
pub fn checked_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidParameter {
            parameter: "limit",
            message: format!("limit must be between 1 and {MAX_LIMIT}"),
        });
    }
    Ok(limit)
}

/// `cursor` decoded by `decode`: a 400 naming it when this api did not write it.
pub fn decoded_cursor<K>(cursor: Option<&str>, decode: impl Fn(&str) -> Option<K>) -> Result<Option<K>, ApiError> {
    cursor
        .map(|text| {
            decode(text).ok_or(ApiError::InvalidParameter {
                parameter: "cursor",
                message: "cursor must be a next_cursor this api returned".into(),
            })
        })
        .transpose()
}

/// The first `limit` of `rows` (loaded with one more) and, when more follow, the cursor of the
/// last one shown.
pub fn finish_page<T>(limit: i64, mut rows: Vec<T>, cursor_of: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let shown = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= shown {
        return (rows, None);
    }
    rows.truncate(shown);
    let next = rows.last().map(cursor_of);
    (rows, next)
}

fn encode(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("w1.{id}"))
}

fn decode(text: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix("w1.")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_limits_are_bounded() {
        let id = Uuid::now_v7();
        assert_eq!(decode(&encode(id)), Some(id));
        for bad in [
            "",
            "nope",
            &URL_SAFE_NO_PAD.encode("v1.x"),
            &URL_SAFE_NO_PAD.encode(format!("w2.{id}")),
        ] {
            assert!(PageRequest::new(None, Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(PageRequest::new(None, None).expect("default").limit, DEFAULT_LIMIT);
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(MAX_LIMIT + 1), None).is_err());
        let page = PageRequest::new(Some(2), None).expect("two");
        let ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let (rows, next) = page.finish(ids.to_vec(), |id| *id);
        assert_eq!(rows.len(), 2);
        assert_eq!(next.as_deref().and_then(decode), Some(ids[1]));
        assert_eq!(page.finish(ids[..2].to_vec(), |id| *id).1, None);
    }
}
