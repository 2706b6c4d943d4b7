//! `GET /v1/events/aggregated`: counts, distinct users and sessions, and duration statistics
//! per time bucket, from the rollups: per minute (`event_rollups`, the persist worker's deltas
//! and the scheduler's compacted rows) and per hour (`event_rollups_hourly`, the scheduler's
//! cascade), and where a range's rows are ([`rollup_rows`]).
//!
//! Buckets are aligned to UTC (`1d` starts at midnight UTC); the range is widened to whole
//! buckets (`start` rounded down, `end` up), and every bucket in it is answered, empty ones
//! with a count of 0 (charts need them). Rows are merged exactly: counts and sums add, minima
//! and maxima compare, sketches merge without loss (`pulse_shared::rollup`), so a bucket says
//! what one pass over its raw rows would, within the sketches' bounds (distinct counts: 0.8 %
//! standard error; quantiles: 0.5 % of the value at their rank). Averages are sum / count, never
//! an average of averages.

use actix_web::{web, HttpRequest};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use pulse_shared::rollup::{Distinct, StoredSummary, Summary, SUMMARY_COLUMNS};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::params::{invalid, query_pairs, text, time, DEFAULT_RANGE};
use crate::error::ApiError;
use crate::management::ManagementState;

/// The bucket widths a query may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Interval {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    pub(super) fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "1m" => Self::Minute,
            "5m" => Self::FiveMinutes,
            "15m" => Self::FifteenMinutes,
            "1h" => Self::Hour,
            "1d" => Self::Day,
            _ => return None,
        })
    }

    pub fn width(self) -> TimeDelta {
        match self {
            Self::Minute => TimeDelta::minutes(1),
            Self::FiveMinutes => TimeDelta::minutes(5),
            Self::FifteenMinutes => TimeDelta::minutes(15),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket `time` falls in (UTC).
    pub fn floor(self, time: DateTime<Utc>) -> DateTime<Utc> {
        time.duration_trunc(self.width()).unwrap_or(time)
    }

    /// The start of the first bucket at or after `time`.
    pub fn ceil(self, time: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(time);
        if floor == time {
            floor
        } else {
            floor + self.width()
        }
    }
}

/// `GET /v1/events/aggregated` parameters, as the OpenAPI document states them;
/// [`AggregatedFilter::from_pairs`] reads the query string itself, to name each bad parameter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AggregatedQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// Bucket width: `1m`, `5m`, `15m`, `1h` or `1d` (default `1h`).
    #[param(inline)]
    pub interval: Option<Interval>,
    /// Inclusive, RFC 3339, rounded down to the interval. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339, rounded up to the interval. Default: now.
    pub end: Option<DateTime<Utc>>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub status: Option<String>,
}

/// The checked parameters.
#[derive(Debug)]
pub struct AggregatedFilter {
    pub interval: Interval,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub status: Option<String>,
}

impl AggregatedFilter {
    /// Reads and checks the query string's pairs: unknown or repeated parameters, a bad value,
    /// an empty range or more than `max_buckets` buckets are a 400 naming the parameter.
    pub fn from_pairs(pairs: Vec<(String, String)>, now: DateTime<Utc>, max_buckets: u32) -> Result<Self, ApiError> {
        let mut seen: Vec<String> = Vec::new();
        let (mut interval, mut start, mut end) = (None, None, None);
        let (mut event_type, mut source, mut status) = (None, None, None);
        for (name, value) in pairs {
            if seen.contains(&name) {
                return Err(ApiError::InvalidParameter {
                    parameter: parameter_name(&name),
                    message: format!("{name} is given twice"),
                });
            }
            seen.push(name.clone());
            match name.as_str() {
                "project_id" => {}
                "interval" => {
                    interval = Some(Interval::parse(&value).ok_or_else(|| {
                        invalid("interval", format!("interval must be 1m, 5m, 15m, 1h or 1d, got {value:?}"))
                    })?)
                }
                "start" => start = Some(time("start", &value)?),
                "end" => end = Some(time("end", &value)?),
                "event_type" => event_type = text("event_type", value)?,
                "source" => source = text("source", value)?,
                "status" => status = text("status", value)?,
                _ => {
                    return Err(invalid(
                        "query",
                        format!("unknown parameter {name:?}; parameters: project_id, interval, start, end, event_type, source, status"),
                    ))
                }
            }
        }
        let interval = interval.unwrap_or(Interval::Hour);
        let end = end.unwrap_or(now);
        let start = start.unwrap_or(end - DEFAULT_RANGE);
        if start >= end {
            return Err(invalid("start", "start must be before end"));
        }
        let (start, end) = (interval.floor(start), interval.ceil(end));
        let buckets = (end - start).num_seconds() / interval.width().num_seconds();
        if buckets > i64::from(max_buckets) {
            return Err(invalid(
                "interval",
                format!("{buckets} buckets is more than {max_buckets} (PULSE_QUERY_MAX_BUCKETS); widen the interval or narrow the range"),
            ));
        }
        Ok(Self {
            interval,
            start,
            end,
            event_type,
            source,
            status,
        })
    }

    pub fn buckets(&self) -> usize {
        ((self.end - self.start).num_seconds() / self.interval.width().num_seconds()) as usize
    }
}

/// The static name of a known parameter (for the error's `details.parameter`).
fn parameter_name(name: &str) -> &'static str {
    match name {
        "project_id" => "project_id",
        "interval" => "interval",
        "start" => "start",
        "end" => "end",
        "event_type" => "event_type",
        "source" => "source",
        "status" => "status",
        _ => "query",
    }
}

/// One bucket of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    pub count: i64,
    pub unique_users: u64,
    pub unique_sessions: u64,
    /// Mean `duration_ms` of the events that have one; `null` when none has.
    pub avg_duration: Option<f64>,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub p50_duration: Option<f64>,
    pub p90_duration: Option<f64>,
    pub p95_duration: Option<f64>,
    pub p99_duration: Option<f64>,
}

/// Answer of `GET /v1/events/aggregated`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aggregated {
    #[schema(inline)]
    pub interval: Interval,
    /// The range answered, widened to whole buckets.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Every bucket of the range, oldest first.
    pub buckets: Vec<Bucket>,
}

#[derive(QueryableByName)]
struct RollupRow {
    #[diesel(sql_type = Timestamptz)]
    bucket: DateTime<Utc>,
    #[diesel(embed)]
    summary: StoredSummary,
}

/// Which rows stand for a whole hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HourRows {
    /// One per hour and dimensions (`event_rollups_hourly`): for filters and groupings.
    ByDimensions,
    /// One per hour (`event_rollups_hourly_totals`, dimensions answered as `''` and NULL): for
    /// queries that neither filter nor group by a dimension.
    Totals,
}

/// Where a range's rollup rows are, as a `FROM` item named `rollups` with the columns of
/// [`ROLLUP_COLUMNS`]: the whole hours `[$h0, $h1)` from the hourly rows (`hours`) plus the
/// deltas the scheduler has not folded yet (each delta is in exactly one of the two: the
/// compaction moves it in one transaction), the rest of `[$2, $3)` from the minute rows. `$1` is
/// the project. With `$h0 = $h1` every row comes from the minutes.
pub(super) fn rollup_rows(h0: usize, h1: usize, hours: HourRows) -> String {
    let columns = ROLLUP_COLUMNS;
    let whole_hours = match hours {
        HourRows::ByDimensions => format!("SELECT {columns} FROM event_rollups_hourly"),
        HourRows::Totals => format!(
            "SELECT {} FROM event_rollups_hourly_totals",
            columns.replacen(
                "event_type, source, status",
                "''::text AS event_type, NULL::text AS source, NULL::text AS status",
                1
            )
        ),
    };
    format!(
        "({whole_hours}
              WHERE project_id = $1 AND bucket >= ${h0} AND bucket < ${h1}
          UNION ALL
          SELECT {columns} FROM event_rollups
              WHERE project_id = $1 AND bucket >= ${h0} AND bucket < ${h1} AND NOT compacted
          UNION ALL
          SELECT {columns} FROM event_rollups
              WHERE project_id = $1 AND bucket >= $2 AND bucket < ${h0}
          UNION ALL
          SELECT {columns} FROM event_rollups
              WHERE project_id = $1 AND bucket >= ${h1} AND bucket < $3) AS rollups"
    )
}

/// The whole UTC hours inside `[start, end)` (`(end, end)` when `hourly` is false, or none
/// fits): the `$h0, $h1` of [`rollup_rows`].
pub(super) fn whole_hours(start: DateTime<Utc>, end: DateTime<Utc>, hourly: bool) -> (DateTime<Utc>, DateTime<Utc>) {
    if !hourly {
        return (end, end);
    }
    let h0 = Interval::Hour.ceil(start).min(end);
    let h1 = Interval::Hour.floor(end).max(h0);
    (h0, h1)
}

/// Every column of a rollup row the queries read.
pub(super) const ROLLUP_COLUMNS: &str = "bucket, event_type, source, status, events, durations, duration_sum, \
     duration_min, duration_max, users, sessions, duration_sketch";

/// The rows of `aggregated`, whole hours from the hourly rows by dimensions (`$4`..`$6` filter).
static SELECT_ROLLUPS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| select_rollups(HourRows::ByDimensions));
/// The same without a filter: whole hours from the hourly totals.
static SELECT_ROLLUP_TOTALS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| select_rollups(HourRows::Totals));

fn select_rollups(hours: HourRows) -> String {
    format!(
        "SELECT bucket, {SUMMARY_COLUMNS}
         FROM {}
         WHERE ($4::text IS NULL OR event_type = $4)
           AND ($5::text IS NULL OR source = $5)
           AND ($6::text IS NULL OR status = $6)",
        rollup_rows(7, 8, hours)
    )
}

/// A stored summary, decoded (an unreadable sketch is an internal error).
pub(super) fn decode(stored: StoredSummary) -> Result<Summary, ApiError> {
    stored
        .decode()
        .map_err(|error| ApiError::Internal(format!("rollup row: {error}")))
}

/// The duration at quantile `q` of a merged summary. A sketch answers a bin's representative
/// value; the true quantile lies within the exact min and max, so clamping can only bring it
/// closer (a single 1250 ms is 1250, not 1255.2).
pub(super) fn quantile(summary: &Summary, q: f64) -> Option<f64> {
    let (low, high) = (
        summary.duration_min.unwrap_or(0) as f64,
        summary.duration_max.unwrap_or(0) as f64,
    );
    summary
        .sketch
        .as_ref()
        .and_then(|sketch| sketch.quantile(q))
        .map(|value| value.clamp(low, high))
}

/// Mean duration of the events that have one.
pub(super) fn mean(summary: &Summary) -> Option<f64> {
    (summary.durations > 0).then(|| summary.duration_sum as f64 / summary.durations as f64)
}

/// A merged bucket as the answer shows it.
fn bucket(start: DateTime<Utc>, mut summary: Summary) -> Bucket {
    Bucket {
        start,
        count: summary.events,
        avg_duration: mean(&summary),
        min_duration: summary.duration_min,
        max_duration: summary.duration_max,
        p50_duration: quantile(&summary, 0.5),
        p90_duration: quantile(&summary, 0.9),
        p95_duration: quantile(&summary, 0.95),
        p99_duration: quantile(&summary, 0.99),
        unique_users: summary.users.as_mut().map_or(0, Distinct::count),
        unique_sessions: summary.sessions.as_mut().map_or(0, Distinct::count),
    }
}

/// Counts and durations per time bucket.
#[utoipa::path(
    get,
    path = "/v1/events/aggregated",
    operation_id = "events_aggregated",
    tag = "events",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(AggregatedQuery),
    responses(
        (status = 200, description = "Every bucket of the range, oldest first", body = Aggregated),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): a bad value, an unknown parameter, or more than PULSE_QUERY_MAX_BUCKETS buckets"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn aggregated(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<Aggregated>, ApiError> {
    let pairs = query_pairs(&req)?;
    let filter = AggregatedFilter::from_pairs(pairs, Utc::now(), state.config.max_buckets)?;
    Ok(web::Json(aggregate(&management, access.project_id, &filter).await?))
}

/// The buckets `filter` asks for, merged from the project's rollup rows.
pub(super) async fn aggregate(
    management: &ManagementState,
    project: Uuid,
    filter: &AggregatedFilter,
) -> Result<Aggregated, ApiError> {
    let mut conn = management.conn().await?;
    let (h0, h1) = whole_hours(filter.start, filter.end, filter.interval.width() >= TimeDelta::hours(1));
    let unfiltered = filter.event_type.is_none() && filter.source.is_none() && filter.status.is_none();
    let statement = if unfiltered {
        &SELECT_ROLLUP_TOTALS
    } else {
        &SELECT_ROLLUPS
    };
    let rows: Vec<RollupRow> = diesel::sql_query(statement.as_str())
        .bind::<SqlUuid, _>(project)
        .bind::<Timestamptz, _>(filter.start)
        .bind::<Timestamptz, _>(filter.end)
        .bind::<Nullable<Text>, _>(filter.event_type.as_deref())
        .bind::<Nullable<Text>, _>(filter.source.as_deref())
        .bind::<Nullable<Text>, _>(filter.status.as_deref())
        .bind::<Timestamptz, _>(h0)
        .bind::<Timestamptz, _>(h1)
        .load(&mut conn)
        .await?;
    let width = filter.interval.width();
    let mut merged: Vec<Summary> = (0..filter.buckets()).map(|_| Summary::default()).collect();
    for row in rows {
        let index = ((filter.interval.floor(row.bucket) - filter.start).num_seconds() / width.num_seconds()) as usize;
        if let Some(summary) = merged.get_mut(index) {
            summary.merge(decode(row.summary)?);
        }
    }
    let buckets = merged
        .into_iter()
        .enumerate()
        .map(|(index, summary)| bucket(filter.start + width * index as i32, summary))
        .collect();
    Ok(Aggregated {
        interval: filter.interval,
        start: filter.start,
        end: filter.end,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::params::tests::pairs;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:34:56Z".parse().expect("now")
    }

    #[test]
    fn ranges_widen_to_whole_utc_buckets() {
        let filter = AggregatedFilter::from_pairs(pairs(&[("interval", "1d")]), now(), 10_000).expect("valid");
        assert_eq!(
            filter.start,
            "2026-11-30T00:00:00Z".parse::<DateTime<Utc>>().expect("t")
        );
        assert_eq!(filter.end, "2026-12-02T00:00:00Z".parse::<DateTime<Utc>>().expect("t"));
        assert_eq!(filter.buckets(), 2);
        let hourly = AggregatedFilter::from_pairs(
            pairs(&[("start", "2026-12-01T10:00:00Z"), ("end", "2026-12-01T12:00:00Z")]),
            now(),
            10_000,
        )
        .expect("valid");
        assert_eq!((hourly.interval, hourly.buckets()), (Interval::Hour, 2));
    }

    #[test]
    fn whole_hours_split_a_range_into_hourly_inside_and_minute_edges() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().expect("t");
        // Minute edges on both sides of two whole hours.
        assert_eq!(
            whole_hours(t("2026-12-01T09:59:00Z"), t("2026-12-01T12:01:00Z"), true),
            (t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"))
        );
        // Aligned: all hourly.
        assert_eq!(
            whole_hours(t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"), true),
            (t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"))
        );
        // No whole hour inside: an empty middle, so every row comes from the minutes.
        let (h0, h1) = whole_hours(t("2026-12-01T10:05:00Z"), t("2026-12-01T10:50:00Z"), true);
        assert_eq!(h0, h1);
        assert!(h0 >= t("2026-12-01T10:05:00Z") && h0 <= t("2026-12-01T10:50:00Z"));
        // Minute buckets never read hourly rows.
        assert_eq!(
            whole_hours(t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"), false),
            (t("2026-12-01T12:00:00Z"), t("2026-12-01T12:00:00Z"))
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (list, parameter) in [
            (&[("interval", "2h")][..], "interval"),
            (&[("interval", "1m"), ("start", "2026-11-01T00:00:00Z")][..], "interval"),
            (&[("start", "2026-12-02T00:00:00Z")][..], "start"),
            (&[("end", "soon")][..], "end"),
            (&[("status", "a"), ("status", "b")][..], "status"),
            (&[("colour", "red")][..], "query"),
        ] {
            match AggregatedFilter::from_pairs(pairs(list), now(), 10_000) {
                Err(ApiError::InvalidParameter { parameter: named, .. }) => assert_eq!(named, parameter, "{list:?}"),
                other => panic!("{list:?}: {other:?}"),
            }
        }
    }
}
