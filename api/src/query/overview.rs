//! `GET /v1/analytics/overview` (a range against the period of equal length before it) and
//! `GET /v1/analytics/realtime` (the last five minutes), both from the rollups (whole hours of
//! the overview from the hourly ones):
//! totals add up, distinct users and sessions merge their sketches (never a sum of per-minute
//! uniques), the error ratio is the share of events with status `error`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use pulse_shared::rollup::Distinct;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::params::{invalid, query_pairs, time, whole_minutes, DEFAULT_RANGE};
use super::rollups::{rollup_rows, whole_hours, HourRows};
use crate::error::ApiError;
use crate::management::ManagementState;

/// Entries of each top-N list.
const TOP: usize = 10;
/// Minutes `realtime` covers (the current one included).
const REALTIME_MINUTES: i32 = 5;

/// Rows in `[start, end)` for the counts (by dimensions, no sketch read).
static SELECT_COUNTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT bucket, event_type, source, status, events, NULL::bytea AS users, NULL::bytea AS sessions FROM {}",
        rollup_rows(4, 5, HourRows::ByDimensions)
    )
});

/// Rows in `[start, end)` for the distinct counts (whole hours from the hourly totals: one row
/// per hour instead of one per hour and dimensions).
static SELECT_UNIQUES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT bucket, event_type, source, status, events, users, sessions FROM {}",
        rollup_rows(4, 5, HourRows::Totals)
    )
});

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Timestamptz)]
    bucket: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = Nullable<Bytea>)]
    users: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    sessions: Option<Vec<u8>>,
}

/// What a range's rows say: the counts' rows and the distinct counts' rows.
struct RangeRows {
    counts: Vec<Row>,
    uniques: Vec<Row>,
}

async fn rows(
    management: &ManagementState,
    project: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    hourly: bool,
) -> Result<RangeRows, ApiError> {
    let mut conn = management.conn().await?;
    let (h0, h1) = whole_hours(start, end, hourly);
    let mut load = |statement: &'static str| {
        diesel::sql_query(statement)
            .bind::<SqlUuid, _>(project)
            .bind::<Timestamptz, _>(start)
            .bind::<Timestamptz, _>(end)
            .bind::<Timestamptz, _>(h0)
            .bind::<Timestamptz, _>(h1)
            .load::<Row>(&mut conn)
    };
    let counts = load(SELECT_COUNTS.as_str()).await?;
    let uniques = load(SELECT_UNIQUES.as_str()).await?;
    Ok(RangeRows { counts, uniques })
}

fn merge_sketch(into: &mut Distinct, bytes: &Option<Vec<u8>>) -> Result<(), ApiError> {
    if let Some(bytes) = bytes {
        into.merge(&Distinct::decode(bytes).map_err(|error| ApiError::Internal(error.to_string()))?);
    }
    Ok(())
}

/// A period's four totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totals {
    pub total_events: i64,
    pub unique_users: u64,
    pub unique_sessions: u64,
    /// Share of events with status `error`, 0 to 1 (0 when there is no event).
    pub error_ratio: f64,
}

/// Relative change of each total against the previous period (`null` when it was 0).
#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    pub total_events: Option<f64>,
    pub unique_users: Option<f64>,
    pub unique_sessions: Option<f64>,
    pub error_ratio: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeCount {
    pub event_type: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceCount {
    pub source: String,
    pub count: i64,
}

/// Answer of `GET /v1/analytics/overview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub total_events: i64,
    pub unique_users: u64,
    pub unique_sessions: u64,
    pub error_ratio: f64,
    /// The 10 most frequent, most frequent first.
    pub top_event_types: Vec<EventTypeCount>,
    /// The 10 most frequent (events without a source left out), most frequent first.
    pub top_sources: Vec<SourceCount>,
    /// The same totals for the period of equal length just before `start`.
    pub previous: Totals,
    pub change: Change,
}

/// What a set of rows adds up to.
#[derive(Default)]
struct Tally {
    events: i64,
    errors: i64,
    users: Distinct,
    sessions: Distinct,
    event_types: HashMap<String, i64>,
    sources: HashMap<String, i64>,
}

impl Tally {
    fn of(rows: RangeRows) -> Result<Self, ApiError> {
        let mut tally = Self::default();
        for row in rows.counts {
            tally.events += row.events;
            if row.status.as_deref() == Some("error") {
                tally.errors += row.events;
            }
            *tally.event_types.entry(row.event_type).or_default() += row.events;
            if let Some(source) = row.source {
                *tally.sources.entry(source).or_default() += row.events;
            }
        }
        for row in rows.uniques {
            merge_sketch(&mut tally.users, &row.users)?;
            merge_sketch(&mut tally.sessions, &row.sessions)?;
        }
        Ok(tally)
    }

    fn totals(&mut self) -> Totals {
        Totals {
            total_events: self.events,
            unique_users: self.users.count(),
            unique_sessions: self.sessions.count(),
            error_ratio: if self.events == 0 {
                0.0
            } else {
                self.errors as f64 / self.events as f64
            },
        }
    }
}

/// The `TOP` largest counts, largest first, ties by name.
fn top(counts: HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut counts: Vec<(String, i64)> = counts.into_iter().collect();
    counts.sort_by(|(a_name, a), (b_name, b)| b.cmp(a).then_with(|| a_name.cmp(b_name)));
    counts.truncate(TOP);
    counts
}

fn change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| (now - before) / before)
}

/// `GET /v1/analytics/overview` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; `range` reads the query string itself
pub struct OverviewQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// Inclusive, RFC 3339, rounded down to the minute. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339, rounded up to the minute. Default: now.
    pub end: Option<DateTime<Utc>>,
}

/// The minute-aligned range of the query string; at most `max_buckets` hours.
fn range(req: &HttpRequest, now: DateTime<Utc>, max_buckets: u32) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let pairs = query_pairs(req)?;
    let (mut start, mut end) = (None, None);
    for (name, value) in pairs {
        match name.as_str() {
            "project_id" => {}
            "start" if start.is_none() => start = Some(time("start", &value)?),
            "end" if end.is_none() => end = Some(time("end", &value)?),
            "start" | "end" => {
                return Err(invalid(
                    if name == "start" { "start" } else { "end" },
                    format!("{name} is given twice"),
                ))
            }
            _ => {
                return Err(invalid(
                    "query",
                    format!("unknown parameter {name:?}; parameters: project_id, start, end"),
                ))
            }
        }
    }
    let end = end.unwrap_or(now);
    let start = start.unwrap_or(end - DEFAULT_RANGE);
    if start >= end {
        return Err(invalid("start", "start must be before end"));
    }
    if end - start > TimeDelta::hours(i64::from(max_buckets)) {
        return Err(invalid(
            "start",
            format!("the range covers more than {max_buckets} hours (PULSE_QUERY_MAX_BUCKETS)"),
        ));
    }
    Ok(whole_minutes(start, end))
}

/// Totals of a range against the period before it, and the top event types and sources.
#[utoipa::path(
    get,
    path = "/v1/analytics/overview",
    operation_id = "analytics_overview",
    tag = "analytics",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(OverviewQuery),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 400, description = "INVALID_PARAMETER (details.parameter)"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn overview(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<Overview>, ApiError> {
    let (start, end) = range(&req, Utc::now(), state.config.max_buckets)?;
    let before = start - (end - start);
    let mut current = Tally::of(rows(&management, access.project_id, start, end, true).await?)?;
    let mut previous = Tally::of(rows(&management, access.project_id, before, start, true).await?)?;
    let (now, then) = (current.totals(), previous.totals());
    Ok(web::Json(Overview {
        start,
        end,
        total_events: now.total_events,
        unique_users: now.unique_users,
        unique_sessions: now.unique_sessions,
        error_ratio: now.error_ratio,
        top_event_types: top(std::mem::take(&mut current.event_types))
            .into_iter()
            .map(|(event_type, count)| EventTypeCount { event_type, count })
            .collect(),
        top_sources: top(std::mem::take(&mut current.sources))
            .into_iter()
            .map(|(source, count)| SourceCount { source, count })
            .collect(),
        change: Change {
            total_events: change(now.total_events as f64, then.total_events as f64),
            unique_users: change(now.unique_users as f64, then.unique_users as f64),
            unique_sessions: change(now.unique_sessions as f64, then.unique_sessions as f64),
            error_ratio: change(now.error_ratio, then.error_ratio),
        },
        previous: then,
    }))
}

/// One minute of `realtime`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinuteCount {
    pub start: DateTime<Utc>,
    pub count: i64,
}

/// Answer of `GET /v1/analytics/realtime`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Realtime {
    /// The last five minutes, oldest first, the current (partial) one last.
    pub minutes: Vec<MinuteCount>,
    /// Distinct users over those minutes.
    pub active_users: u64,
    /// The 10 most frequent over those minutes.
    pub top_event_types: Vec<EventTypeCount>,
}

/// The last five minutes.
#[utoipa::path(
    get,
    path = "/v1/analytics/realtime",
    operation_id = "analytics_realtime",
    tag = "analytics",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(("project_id" = Option<Uuid>, Query, description = "Only with an access token: the project to read")),
    responses(
        (status = 200, description = "The last five minutes", body = Realtime),
        (status = 400, description = "INVALID_PARAMETER (details.parameter)"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn realtime(
    access: ReadAccess,
    req: HttpRequest,
    management: web::Data<ManagementState>,
) -> Result<web::Json<Realtime>, ApiError> {
    let pairs = query_pairs(&req)?;
    if let Some((name, _)) = pairs.iter().find(|(name, _)| name != "project_id") {
        return Err(invalid(
            "query",
            format!("unknown parameter {name:?}; parameters: project_id"),
        ));
    }
    let minute = TimeDelta::minutes(1);
    let now = Utc::now();
    let current = now.duration_trunc(minute).unwrap_or(now);
    let first = current - minute * (REALTIME_MINUTES - 1);
    let rows = rows(&management, access.project_id, first, current + minute, false).await?;
    let mut minutes: Vec<MinuteCount> = (0..REALTIME_MINUTES)
        .map(|index| MinuteCount {
            start: first + minute * index,
            count: 0,
        })
        .collect();
    for row in &rows.counts {
        let index = ((row.bucket - first).num_seconds() / 60) as usize;
        if let Some(slot) = minutes.get_mut(index) {
            slot.count += row.events;
        }
    }
    let mut tally = Tally::of(rows)?;
    Ok(web::Json(Realtime {
        minutes,
        active_users: tally.users.count(),
        top_event_types: top(std::mem::take(&mut tally.event_types))
            .into_iter()
            .map(|(event_type, count)| EventTypeCount { event_type, count })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_lists_are_largest_first_then_by_name_and_ten_long() {
        let counts: HashMap<String, i64> = (0..15).map(|i| (format!("t{i:02}"), i % 4)).collect();
        let top = top(counts);
        assert_eq!(top.len(), TOP);
        assert_eq!(top[0], ("t03".to_owned(), 3));
        assert!(top
            .windows(2)
            .all(|pair| pair[0].1 > pair[1].1 || (pair[0].1 == pair[1].1 && pair[0].0 < pair[1].0)));
    }

    #[test]
    fn changes_are_relative_and_null_from_zero() {
        assert_eq!(change(150.0, 100.0), Some(0.5));
        assert_eq!(change(5.0, 0.0), None);
    }
}
