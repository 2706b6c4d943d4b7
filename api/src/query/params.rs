//! The query parameters of the read routes, read from the query string by hand: `tag` repeats,
//! and every problem is a 400 naming its parameter (unknown ones too, so a typo is not a
//! silently ignored filter).
//!
//! Time ranges: `start` inclusive, `end` exclusive, RFC 3339; by default the 24 hours before
//! now. A range over raw events may cover at most `PULSE_QUERY_MAX_RAW_DAYS`.

use chrono::{DateTime, Duration, Utc};
use pulse_shared::event::MAX_PRIORITY;
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor::Cursor;
use crate::error::ApiError;

/// Default page size of `GET /v1/events`.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of `GET /v1/events`.
pub const MAX_LIMIT: i64 = 1000;
/// The default range: this long before now.
pub const DEFAULT_RANGE: Duration = Duration::hours(24);

/// `GET /v1/events`: the filters, the range and the page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only with an access token: the project to read (an API key names its own).
    pub project_id: Option<uuid::Uuid>,
    /// Inclusive, RFC 3339. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339. Default: now.
    pub end: Option<DateTime<Utc>>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// Repeatable: every given tag must be present.
    #[param(style = Form, explode)]
    pub tag: Vec<String>,
    /// Events with a priority of at least this (0 to 1000); events without one are left out.
    #[param(minimum = 0, maximum = 1000)]
    pub min_priority: Option<i32>,
    pub status: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; the range is the first page's.
    pub cursor: Option<String>,
}

/// [`EventQuery`] checked: a resolved range, a limit, a decoded cursor.
#[derive(Debug)]
pub struct EventFilter {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub tags: Vec<String>,
    pub min_priority: Option<i32>,
    pub status: Option<String>,
    pub limit: i64,
    pub after: Option<Cursor>,
}

/// The query string's `(name, value)` pairs, in order (repeats kept), or 400.
pub(crate) fn query_pairs(req: &actix_web::HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(actix_web::web::Query::into_inner)
        .map_err(|error| ApiError::BadRequest(format!("the query string is not valid: {error}")))
}

/// `[start, end)` widened to whole minutes (`start` rounded down, `end` up), as rollups store them.
pub(super) fn whole_minutes(start: DateTime<Utc>, end: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::DurationRound;
    let minute = Duration::minutes(1);
    let start = start.duration_trunc(minute).unwrap_or(start);
    let floor = end.duration_trunc(minute).unwrap_or(end);
    (start, if floor == end { end } else { floor + minute })
}

pub(super) fn invalid(parameter: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter {
        parameter,
        message: message.into(),
    }
}

pub(super) fn time(parameter: &'static str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            invalid(
                parameter,
                format!("{parameter} must be an RFC 3339 date-time, got {value:?}"),
            )
        })
}

pub(super) fn text(parameter: &'static str, value: String) -> Result<Option<String>, ApiError> {
    if value.contains('\0') {
        return Err(invalid(parameter, format!("{parameter} must not contain NUL")));
    }
    Ok(Some(value))
}

impl EventQuery {
    /// Reads the query string's pairs; an unknown or repeated (other than `tag`) parameter is a 400.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        for (name, value) in pairs {
            macro_rules! once {
                ($field:ident, $parameter:literal, $parse:expr) => {{
                    if query.$field.is_some() {
                        return Err(invalid($parameter, concat!($parameter, " is given twice")));
                    }
                    query.$field = $parse;
                }};
            }
            match name.as_str() {
                "project_id" => once!(
                    project_id,
                    "project_id",
                    Some(value.parse().map_err(|_| invalid("project_id", "project_id must be a UUID"))?)
                ),
                "start" => once!(start, "start", Some(time("start", &value)?)),
                "end" => once!(end, "end", Some(time("end", &value)?)),
                "event_type" => once!(event_type, "event_type", text("event_type", value)?),
                "source" => once!(source, "source", text("source", value)?),
                "user_id" => once!(user_id, "user_id", text("user_id", value)?),
                "session_id" => once!(session_id, "session_id", text("session_id", value)?),
                "status" => once!(status, "status", text("status", value)?),
                "tag" => query.tag.extend(text("tag", value)?),
                "min_priority" => once!(
                    min_priority,
                    "min_priority",
                    Some(
                        value
                            .parse()
                            .ok()
                            .filter(|priority| (0..=MAX_PRIORITY).contains(priority))
                            .ok_or_else(|| invalid("min_priority", format!("min_priority must be an integer from 0 to {MAX_PRIORITY}")))?
                    )
                ),
                "limit" => once!(
                    limit,
                    "limit",
                    Some(
                        value
                            .parse()
                            .ok()
                            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                            .ok_or_else(|| invalid("limit", format!("limit must be an integer from 1 to {MAX_LIMIT}")))?
                    )
                ),
                "cursor" => once!(cursor, "cursor", Some(value)),
                _ => {
                    return Err(ApiError::InvalidParameter {
                        parameter: "query",
                        message: format!(
                            "unknown parameter {name:?}; parameters: project_id, start, end, event_type, source, user_id, session_id, tag, min_priority, status, limit, cursor"
                        ),
                    })
                }
            }
        }
        Ok(query)
    }

    /// Resolves the range (the cursor's, when one is given) and checks its bounds.
    pub fn check(self, now: DateTime<Utc>, max_raw_days: u32) -> Result<EventFilter, ApiError> {
        let after = match &self.cursor {
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                invalid(
                    "cursor",
                    "cursor is not one this api returned (use next_cursor as given)",
                )
            })?),
            None => None,
        };
        let (start, end) = match after {
            Some(cursor) => (cursor.start, cursor.end),
            None => {
                let end = self.end.unwrap_or(now);
                (self.start.unwrap_or(end - DEFAULT_RANGE), end)
            }
        };
        if start >= end {
            return Err(invalid("start", "start must be before end"));
        }
        if end - start > Duration::days(i64::from(max_raw_days)) {
            return Err(invalid(
                "start",
                format!("the range covers more than {max_raw_days} days (PULSE_QUERY_MAX_RAW_DAYS); narrow start..end"),
            ));
        }
        Ok(EventFilter {
            start,
            end,
            event_type: self.event_type,
            source: self.source,
            user_id: self.user_id,
            session_id: self.session_id,
            tags: self.tag,
            min_priority: self.min_priority,
            status: self.status,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            after,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Query-string pairs from literals (also used by the other read modules' tests).
    pub(in crate::query) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().expect("now")
    }

    fn problem(list: &[(&str, &str)]) -> (&'static str, String) {
        let error = EventQuery::from_pairs(pairs(list))
            .and_then(|query| query.check(now(), 7))
            .expect_err("invalid");
        match error {
            ApiError::InvalidParameter { parameter, message } => (parameter, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_last_day_and_a_hundred_events() {
        let filter = EventQuery::from_pairs(Vec::new())
            .expect("empty")
            .check(now(), 7)
            .expect("valid");
        assert_eq!((filter.start, filter.end), (now() - DEFAULT_RANGE, now()));
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        let tagged = EventQuery::from_pairs(pairs(&[("tag", "a"), ("tag", "b"), ("min_priority", "0")]))
            .expect("tags")
            .check(now(), 7)
            .expect("valid");
        assert_eq!(tagged.tags, ["a", "b"]);
        assert_eq!(tagged.min_priority, Some(0));
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (list, parameter) in [
            (&[("start", "yesterday")][..], "start"),
            (&[("end", "2026-13-01T00:00:00Z")][..], "end"),
            (&[("limit", "0")][..], "limit"),
            (&[("limit", "1001")][..], "limit"),
            (&[("limit", "ten")][..], "limit"),
            (&[("min_priority", "1001")][..], "min_priority"),
            (&[("cursor", "nope")][..], "cursor"),
            (&[("status", "a"), ("status", "b")][..], "status"),
            (&[("colour", "red")][..], "query"),
            (&[("start", "2026-12-01T12:00:00Z")][..], "start"),
            (&[("start", "2026-11-01T00:00:00Z")][..], "start"),
            (&[("user_id", "a\0b")][..], "user_id"),
        ] {
            assert_eq!(problem(list).0, parameter, "{list:?}");
        }
        assert!(problem(&[("start", "2026-11-01T00:00:00Z")]).1.contains("7 days"));
    }

    #[test]
    fn a_cursor_keeps_the_first_page_range() {
        let cursor = Cursor {
            start: "2026-11-29T00:00:00Z".parse().expect("start"),
            end: "2026-11-30T00:00:00Z".parse().expect("end"),
            timestamp: "2026-11-29T10:00:00Z".parse().expect("ts"),
            id: uuid::Uuid::nil(),
        };
        let filter = EventQuery::from_pairs(pairs(&[("cursor", &cursor.encode())]))
            .expect("cursor")
            .check(now(), 7)
            .expect("valid");
        assert_eq!(
            (filter.start, filter.end, filter.after),
            (cursor.start, cursor.end, Some(cursor))
        );
    }
}
