//! `GET /v1/events/analytics`: metrics per group of events over a range.
//!
//! - Grouped by the rollups' own dimensions only (`event_type`, `source`, `status`), it is
//!   answered from the rollups (whole hours from the hourly rows, the edges from the minute
//!   rows: `rollups::rollup_rows`): counts and sums add, distinct counts and quantiles
//!   merge their sketches (the bounds of `pulse_shared::rollup`), `unique_sources` and
//!   `dominant_status` count the rows' own dimensions exactly.
//! - Grouped by `user_id` or a top-level key of `data` (`data.KEY`), rollups cannot say, so it
//!   is answered from the raw events in one SQL pass (exact: `COUNT(DISTINCT)`,
//!   `percentile_cont`, `mode()`), over at most `PULSE_QUERY_MAX_RAW_DAYS`.
//!
//! Either way the range is widened to whole minutes (as the rollups store them), `having`
//! keeps the groups whose every condition holds (a metric that is `null` satisfies none),
//! `order_by` sorts by one metric (ties by the key, ascending, `null` last), and at most `limit`
//! groups are answered (`truncated` says whether there were more). Metrics that `having` or
//! `order_by` name are answered too, so the caller sees what was compared.

use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::{web, HttpRequest};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use pulse_shared::config::QueryConfig;
use pulse_shared::rollup::{Distinct, StoredSummary, Summary};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::params::{invalid, query_pairs, text, time, whole_minutes, DEFAULT_RANGE};
use super::rollups::{decode, mean, quantile, rollup_rows, whole_hours, HourRows};
use crate::error::ApiError;
use crate::management::ManagementState;

/// Most dimensions one query may group by.
pub const MAX_GROUP_BY: usize = 5;
/// Longest `data.KEY` key, in characters.
pub const MAX_DATA_KEY_CHARS: usize = 128;
/// Default and largest number of groups answered.
pub const DEFAULT_GROUPS: i64 = 100;
pub const MAX_GROUPS: i64 = 1000;

/// What events may be grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    EventType,
    Source,
    Status,
    UserId,
    /// A top-level key of `data`; the key answers the key's JSON value (`null` when absent).
    Data(String),
}

impl Dimension {
    fn parse(value: &str) -> Result<Self, ApiError> {
        Ok(match value {
            "event_type" => Self::EventType,
            "source" => Self::Source,
            "status" => Self::Status,
            "user_id" => Self::UserId,
            _ => match value.strip_prefix("data.") {
                Some(key) if !key.is_empty() && key.chars().count() <= MAX_DATA_KEY_CHARS && !key.contains('\0') => {
                    Self::Data(key.to_owned())
                }
                _ => {
                    return Err(invalid(
                        "group_by",
                        format!(
                            "cannot group by {value:?}: group_by takes event_type, source, status, user_id or data.KEY \
                             (a top-level key of data, 1 to {MAX_DATA_KEY_CHARS} characters)"
                        ),
                    ))
                }
            },
        })
    }

    /// The name of the dimension in an answer's `key`.
    fn name(&self) -> String {
        match self {
            Self::EventType => "event_type".into(),
            Self::Source => "source".into(),
            Self::Status => "status".into(),
            Self::UserId => "user_id".into(),
            Self::Data(key) => format!("data.{key}"),
        }
    }

    /// Whether the rollups keep this dimension.
    fn in_rollups(&self) -> bool {
        matches!(self, Self::EventType | Self::Source | Self::Status)
    }
}

/// What may be measured of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Count,
    UniqueUsers,
    UniqueSessions,
    UniqueSources,
    AvgDuration,
    MinDuration,
    MaxDuration,
    P50Duration,
    P90Duration,
    P95Duration,
    P99Duration,
    /// The most frequent status (events without one left out; ties: the first by name).
    DominantStatus,
}

impl Metric {
    const ALL: [Metric; 12] = [
        Self::Count,
        Self::UniqueUsers,
        Self::UniqueSessions,
        Self::UniqueSources,
        Self::AvgDuration,
        Self::MinDuration,
        Self::MaxDuration,
        Self::P50Duration,
        Self::P90Duration,
        Self::P95Duration,
        Self::P99Duration,
        Self::DominantStatus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::UniqueUsers => "unique_users",
            Self::UniqueSessions => "unique_sessions",
            Self::UniqueSources => "unique_sources",
            Self::AvgDuration => "avg_duration",
            Self::MinDuration => "min_duration",
            Self::MaxDuration => "max_duration",
            Self::P50Duration => "p50_duration",
            Self::P90Duration => "p90_duration",
            Self::P95Duration => "p95_duration",
            Self::P99Duration => "p99_duration",
            Self::DominantStatus => "dominant_status",
        }
    }

    fn parse(parameter: &'static str, value: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|metric| metric.name() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|metric| metric.name()).collect();
                invalid(
                    parameter,
                    format!("unknown metric {value:?}; metrics: {}", names.join(", ")),
                )
            })
    }

    /// The metric over raw events, as a SQL aggregate.
    fn sql(self) -> &'static str {
        match self {
            Self::Count => "count(*)",
            Self::UniqueUsers => "count(DISTINCT user_id)",
            Self::UniqueSessions => "count(DISTINCT session_id)",
            Self::UniqueSources => "count(DISTINCT source)",
            Self::AvgDuration => "avg(duration_ms)::float8",
            Self::MinDuration => "min(duration_ms)",
            Self::MaxDuration => "max(duration_ms)",
            Self::P50Duration => "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)",
            Self::P90Duration => "percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms)",
            Self::P95Duration => "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)",
            Self::P99Duration => "percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms)",
            Self::DominantStatus => "mode() WITHIN GROUP (ORDER BY status)",
        }
    }

    fn numeric(self) -> bool {
        self != Self::DominantStatus
    }
}

/// How a `having` condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    AtLeast,
    Less,
    AtMost,
    Equal,
    NotEqual,
}

impl Comparison {
    /// Longest operators first, so `>=` is not read as `>`.
    const OPERATORS: [(&'static str, Comparison); 6] = [
        (">=", Self::AtLeast),
        ("<=", Self::AtMost),
        ("!=", Self::NotEqual),
        (">", Self::Greater),
        ("<", Self::Less),
        ("=", Self::Equal),
    ];

    fn sql(self) -> &'static str {
        Self::OPERATORS
            .iter()
            .find(|(_, comparison)| *comparison == self)
            .map_or("=", |(operator, _)| operator)
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Greater => left > right,
            Self::AtLeast => left >= right,
            Self::Less => left < right,
            Self::AtMost => left <= right,
            Self::Equal => left == right,
            Self::NotEqual => left != right,
        }
    }
}

/// One `having` condition: `metric` compared with a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub metric: Metric,
    pub comparison: Comparison,
    pub value: f64,
}

impl Condition {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = || {
            invalid(
                "having",
                format!("{text:?} is not a condition: write METRIC OP NUMBER, e.g. count>10 (OP: >, >=, <, <=, =, !=)"),
            )
        };
        let (at, operator, comparison) = Comparison::OPERATORS
            .iter()
            .filter_map(|(operator, comparison)| text.find(operator).map(|at| (at, *operator, *comparison)))
            .min_by_key(|(at, operator, _)| (*at, std::cmp::Reverse(operator.len())))
            .ok_or_else(bad)?;
        let metric = Metric::parse("having", text[..at].trim())?;
        if !metric.numeric() {
            return Err(invalid(
                "having",
                format!("{} is not a number to compare", metric.name()),
            ));
        }
        let value: f64 = text[at + operator.len()..].trim().parse().map_err(|_| bad())?;
        if !value.is_finite() {
            return Err(bad());
        }
        Ok(Self {
            metric,
            comparison,
            value,
        })
    }
}

/// The checked parameters.
#[derive(Debug)]
pub struct AnalyticsFilter {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub status: Option<String>,
    pub group_by: Vec<Dimension>,
    /// What is answered: the asked metrics, then those `having` and `order_by` name.
    pub metrics: Vec<Metric>,
    pub having: Vec<Condition>,
    pub order_by: Metric,
    pub descending: bool,
    pub limit: i64,
}

/// `GET /v1/events/analytics` parameters, as the OpenAPI document states them;
/// [`AnalyticsFilter::from_pairs`] reads the query string itself, to name each bad parameter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AnalyticsQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// Inclusive, RFC 3339, rounded down to the minute. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339, rounded up to the minute. Default: now.
    pub end: Option<DateTime<Utc>>,
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub status: Option<String>,
    /// Comma list of up to 5 of `event_type`, `source`, `status`, `user_id`, `data.KEY`
    /// (default `event_type`). `user_id` and `data.KEY` read raw events: at most
    /// PULSE_QUERY_MAX_RAW_DAYS.
    pub group_by: Option<String>,
    /// Comma list of `count`, `unique_users`, `unique_sessions`, `unique_sources`,
    /// `avg_duration`, `min_duration`, `max_duration`, `p50_duration`, `p90_duration`,
    /// `p95_duration`, `p99_duration`, `dominant_status` (default `count`).
    pub metrics: Option<String>,
    /// Comma list of conditions `METRIC OP NUMBER` (OP: `>`, `>=`, `<`, `<=`, `=`, `!=`), all of
    /// which a group must meet, e.g. `count>10`.
    pub having: Option<String>,
    /// A numeric metric, `-` first for descending (default `-count`).
    pub order_by: Option<String>,
    /// Groups answered, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl AnalyticsFilter {
    /// Reads and checks the query string's pairs: unknown or repeated parameters and bad values
    /// are a 400 naming the parameter, as is a range over the bound of the path it takes.
    pub fn from_pairs(
        pairs: Vec<(String, String)>,
        now: DateTime<Utc>,
        config: &QueryConfig,
    ) -> Result<Self, ApiError> {
        let mut given: BTreeMap<&'static str, String> = BTreeMap::new();
        for (name, value) in pairs {
            let parameter = match name.as_str() {
                "project_id" => "project_id",
                "start" => "start",
                "end" => "end",
                "event_type" => "event_type",
                "source" => "source",
                "status" => "status",
                "group_by" => "group_by",
                "metrics" => "metrics",
                "having" => "having",
                "order_by" => "order_by",
                "limit" => "limit",
                _ => {
                    return Err(invalid(
                        "query",
                        format!(
                        "unknown parameter {name:?}; parameters: project_id, start, end, event_type, source, status, \
                             group_by, metrics, having, order_by, limit"
                    ),
                    ))
                }
            };
            if given.insert(parameter, value).is_some() {
                return Err(invalid(parameter, format!("{parameter} is given twice")));
            }
        }
        let mut take = |parameter: &'static str| given.remove(parameter);
        let end = take("end").map(|value| time("end", &value)).transpose()?.unwrap_or(now);
        let start = take("start")
            .map(|value| time("start", &value))
            .transpose()?
            .unwrap_or(end - DEFAULT_RANGE);
        if start >= end {
            return Err(invalid("start", "start must be before end"));
        }
        let (start, end) = whole_minutes(start, end);
        let filter_text = |parameter, value: Option<String>| value.map(|value| text(parameter, value)).transpose();
        let event_type = filter_text("event_type", take("event_type"))?.flatten();
        let source = filter_text("source", take("source"))?.flatten();
        let status = filter_text("status", take("status"))?.flatten();

        let group_by = match take("group_by") {
            None => vec![Dimension::EventType],
            Some(list) => {
                let mut dimensions = Vec::new();
                for item in list.split(',') {
                    let dimension = Dimension::parse(item.trim())?;
                    if dimensions.contains(&dimension) {
                        return Err(invalid("group_by", format!("{} is named twice", dimension.name())));
                    }
                    dimensions.push(dimension);
                }
                if dimensions.len() > MAX_GROUP_BY {
                    return Err(invalid("group_by", format!("at most {MAX_GROUP_BY} dimensions")));
                }
                dimensions
            }
        };
        let mut metrics = match take("metrics") {
            None => vec![Metric::Count],
            Some(list) => {
                let mut metrics = Vec::new();
                for item in list.split(',') {
                    let metric = Metric::parse("metrics", item.trim())?;
                    if !metrics.contains(&metric) {
                        metrics.push(metric);
                    }
                }
                metrics
            }
        };
        let having = match take("having") {
            None => Vec::new(),
            Some(list) => list.split(',').map(Condition::parse).collect::<Result<Vec<_>, _>>()?,
        };
        let (order_by, descending) = match take("order_by") {
            None => (Metric::Count, true),
            Some(value) => {
                let (descending, name) = match value.strip_prefix('-') {
                    Some(name) => (true, name),
                    None => (false, value.as_str()),
                };
                let metric = Metric::parse("order_by", name.trim())?;
                if !metric.numeric() {
                    return Err(invalid(
                        "order_by",
                        format!("{} is not a number to sort by", metric.name()),
                    ));
                }
                (metric, descending)
            }
        };
        for metric in having.iter().map(|condition| condition.metric).chain([order_by]) {
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        let limit = match take("limit") {
            None => DEFAULT_GROUPS,
            Some(value) => value
                .parse()
                .ok()
                .filter(|limit| (1..=MAX_GROUPS).contains(limit))
                .ok_or_else(|| invalid("limit", format!("limit must be an integer from 1 to {MAX_GROUPS}")))?,
        };

        let filter = Self {
            start,
            end,
            event_type,
            source,
            status,
            group_by,
            metrics,
            having,
            order_by,
            descending,
            limit,
        };
        if filter.rollups_can_answer() {
            if end - start > TimeDelta::hours(i64::from(config.max_buckets)) {
                return Err(invalid(
                    "start",
                    format!(
                        "the range covers more than {} hours (PULSE_QUERY_MAX_BUCKETS)",
                        config.max_buckets
                    ),
                ));
            }
        } else if end - start > TimeDelta::days(i64::from(config.max_raw_days)) {
            return Err(invalid(
                "start",
                format!(
                    "grouping by user_id or data.KEY reads raw events: the range covers more than {} days \
                     (PULSE_QUERY_MAX_RAW_DAYS); narrow start..end",
                    config.max_raw_days
                ),
            ));
        }
        Ok(filter)
    }

    /// Whether the rollups can answer: every dimension is one of theirs.
    pub fn rollups_can_answer(&self) -> bool {
        self.group_by.iter().all(Dimension::in_rollups)
    }
}

/// Where an answer was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredFrom {
    /// The per-minute rollups (sketch bounds apply to distinct counts and quantiles).
    Rollups,
    /// One pass over the raw events (exact).
    RawEvents,
}

/// One group of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    /// The group's value of each `group_by` dimension (`null` where the events have none).
    #[schema(value_type = Object)]
    pub key: Map<String, Value>,
    /// The metrics, each under its name (`null` where no event had what it measures).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub metrics: Map<String, Value>,
}

/// Answer of `GET /v1/events/analytics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    /// The range answered, widened to whole minutes.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub group_by: Vec<String>,
    pub metrics: Vec<&'static str>,
    pub answered_from: AnsweredFrom,
    /// At most `limit` groups, in `order_by`'s order.
    pub groups: Vec<Group>,
    /// Whether more groups met `having` than `limit` let through.
    pub truncated: bool,
}

/// Metrics per group of events.
#[utoipa::path(
    get,
    path = "/v1/events/analytics",
    operation_id = "events_analytics",
    tag = "events",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "The groups, in order_by's order", body = Analytics),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): a bad value, an unknown parameter, or a range over the bound of its path"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn analytics(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<Analytics>, ApiError> {
    let filter = AnalyticsFilter::from_pairs(query_pairs(&req)?, Utc::now(), &state.config)?;
    let (answered_from, mut groups) = if filter.rollups_can_answer() {
        (
            AnsweredFrom::Rollups,
            from_rollups(&management, access.project_id, &filter).await?,
        )
    } else {
        (
            AnsweredFrom::RawEvents,
            from_raw_events(&management, access.project_id, &filter).await?,
        )
    };
    let truncated = groups.len() as i64 > filter.limit;
    groups.truncate(filter.limit as usize);
    Ok(web::Json(Analytics {
        start: filter.start,
        end: filter.end,
        group_by: filter.group_by.iter().map(Dimension::name).collect(),
        metrics: filter.metrics.iter().map(|metric| metric.name()).collect(),
        answered_from,
        groups,
        truncated,
    }))
}

// ---- From the rollups ----

/// Rollup rows of the range (whole hours from the hourly rollups); a sketch column is read
/// only when a metric needs it.
static SELECT_ROLLUP_GROUPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT event_type, source, status, events, durations, duration_sum::text AS duration_sum,
                duration_min, duration_max,
                CASE WHEN $7 THEN users END AS users,
                CASE WHEN $8 THEN sessions END AS sessions,
                CASE WHEN $9 THEN duration_sketch END AS duration_sketch
         FROM {}
         WHERE ($4::text IS NULL OR event_type = $4)
           AND ($5::text IS NULL OR source = $5)
           AND ($6::text IS NULL OR status = $6)",
        rollup_rows(10, 11, HourRows::ByDimensions)
    )
});

#[derive(QueryableByName)]
struct RollupGroupRow {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(embed)]
    summary: StoredSummary,
}

/// A group's value of each `group_by` dimension, in order.
type GroupKey = Vec<Option<String>>;

/// What a group's rollup rows add up to.
#[derive(Default)]
struct Tally {
    summary: Summary,
    sources: HashSet<String>,
    statuses: HashMap<String, i64>,
}

impl Tally {
    fn value(&mut self, metric: Metric) -> Value {
        let summary = &mut self.summary;
        match metric {
            Metric::Count => summary.events.into(),
            Metric::UniqueUsers => summary.users.as_mut().map_or(0, Distinct::count).into(),
            Metric::UniqueSessions => summary.sessions.as_mut().map_or(0, Distinct::count).into(),
            Metric::UniqueSources => (self.sources.len() as u64).into(),
            Metric::AvgDuration => mean(summary).into(),
            Metric::MinDuration => summary.duration_min.into(),
            Metric::MaxDuration => summary.duration_max.into(),
            Metric::P50Duration => quantile(summary, 0.5).into(),
            Metric::P90Duration => quantile(summary, 0.9).into(),
            Metric::P95Duration => quantile(summary, 0.95).into(),
            Metric::P99Duration => quantile(summary, 0.99).into(),
            Metric::DominantStatus => self
                .statuses
                .iter()
                .max_by(|(a_name, a), (b_name, b)| a.cmp(b).then_with(|| b_name.cmp(a_name)))
                .map(|(status, _)| Value::from(status.as_str()))
                .unwrap_or(Value::Null),
        }
    }
}

async fn from_rollups(
    management: &ManagementState,
    project: Uuid,
    filter: &AnalyticsFilter,
) -> Result<Vec<Group>, ApiError> {
    let needs = |wanted: &[Metric]| filter.metrics.iter().any(|metric| wanted.contains(metric));
    let mut conn = management.conn().await?;
    let (h0, h1) = whole_hours(filter.start, filter.end, true);
    let rows: Vec<RollupGroupRow> = diesel::sql_query(SELECT_ROLLUP_GROUPS.as_str())
        .bind::<SqlUuid, _>(project)
        .bind::<Timestamptz, _>(filter.start)
        .bind::<Timestamptz, _>(filter.end)
        .bind::<Nullable<Text>, _>(filter.event_type.as_deref())
        .bind::<Nullable<Text>, _>(filter.source.as_deref())
        .bind::<Nullable<Text>, _>(filter.status.as_deref())
        .bind::<Bool, _>(needs(&[Metric::UniqueUsers]))
        .bind::<Bool, _>(needs(&[Metric::UniqueSessions]))
        .bind::<Bool, _>(needs(&[
            Metric::P50Duration,
            Metric::P90Duration,
            Metric::P95Duration,
            Metric::P99Duration,
        ]))
        .bind::<Timestamptz, _>(h0)
        .bind::<Timestamptz, _>(h1)
        .load(&mut conn)
        .await?;
    drop(conn);
    let mut tallies: HashMap<GroupKey, Tally> = HashMap::new();
    for row in rows {
        let key = filter
            .group_by
            .iter()
            .map(|dimension| match dimension {
                Dimension::EventType => Some(row.event_type.clone()),
                Dimension::Source => row.source.clone(),
                Dimension::Status => row.status.clone(),
                // Not in the rollups: `rollups_can_answer()` is false for these.
                Dimension::UserId | Dimension::Data(_) => None,
            })
            .collect();
        let tally = tallies.entry(key).or_default();
        if let Some(source) = row.source {
            tally.sources.insert(source);
        }
        if let Some(status) = row.status {
            *tally.statuses.entry(status).or_default() += row.summary.events;
        }
        tally.summary.merge(decode(row.summary)?);
    }
    let mut groups: Vec<(GroupKey, Map<String, Value>)> = tallies
        .into_iter()
        .map(|(key, mut tally)| {
            let metrics = filter
                .metrics
                .iter()
                .map(|metric| (metric.name().to_owned(), tally.value(*metric)))
                .collect();
            (key, metrics)
        })
        .filter(|(_, metrics)| filter.having.iter().all(|condition| meets(metrics, condition)))
        .collect();
    let order = filter.order_by.name();
    groups.sort_by(|(a_key, a), (b_key, b)| {
        let (a, b) = (
            a.get(order).and_then(Value::as_f64),
            b.get(order).and_then(Value::as_f64),
        );
        let by_metric = match (a, b) {
            (Some(a), Some(b)) if filter.descending => b.total_cmp(&a),
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_metric.then_with(|| nulls_last(a_key, b_key))
    });
    groups.truncate(filter.limit as usize + 1);
    Ok(groups
        .into_iter()
        .map(|(key, metrics)| Group {
            key: filter
                .group_by
                .iter()
                .zip(key)
                .map(|(dimension, value)| (dimension.name(), value.map_or(Value::Null, Value::from)))
                .collect(),
            metrics,
        })
        .collect())
}

/// Whether a group's metrics meet a condition (`null` meets none, as in SQL).
fn meets(metrics: &Map<String, Value>, condition: &Condition) -> bool {
    metrics
        .get(condition.metric.name())
        .and_then(Value::as_f64)
        .is_some_and(|value| condition.comparison.holds(value, condition.value))
}

/// Keys in ascending order, `null` after any value (as PostgreSQL sorts them).
fn nulls_last(a: &[Option<String>], b: &[Option<String>]) -> std::cmp::Ordering {
    for (a, b) in a.iter().zip(b) {
        let order = match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if order.is_ne() {
            return order;
        }
    }
    std::cmp::Ordering::Equal
}

// ---- From the raw events ----

#[derive(QueryableByName)]
struct RawGroupRow {
    #[diesel(sql_type = Text)]
    answer: String,
}

/// The SQL expression of a dimension; `data.KEY` keys are the elements of the `$7` array,
/// bound, never written into the statement.
fn dimension_sql(dimension: &Dimension, data_index: &mut usize) -> String {
    match dimension {
        Dimension::EventType => "event_type".into(),
        Dimension::Source => "source".into(),
        Dimension::Status => "status".into(),
        Dimension::UserId => "user_id".into(),
        Dimension::Data(_) => {
            *data_index += 1;
            format!("(data -> ($7::text[])[{data_index}])")
        }
    }
}

/// One statement answering the whole query: each group as a JSON object (its key and metrics);
/// `having`'s numbers are the elements of the `$8` array, `limit + 1` is `$9`.
fn raw_statement(filter: &AnalyticsFilter) -> String {
    let mut data_index = 0;
    let dimensions: Vec<String> = filter
        .group_by
        .iter()
        .map(|dimension| dimension_sql(dimension, &mut data_index))
        .collect();
    let mut data_index = 0;
    let key_pairs: Vec<String> = filter
        .group_by
        .iter()
        .zip(&dimensions)
        .map(|(dimension, sql)| match dimension {
            Dimension::Data(_) => {
                data_index += 1;
                format!("'data.' || ($7::text[])[{data_index}], {sql}")
            }
            other => format!("'{}', {sql}", other.name()),
        })
        .collect();
    let metric_pairs: Vec<String> = filter
        .metrics
        .iter()
        .map(|metric| format!("'{}', {}", metric.name(), metric.sql()))
        .collect();
    let having: Vec<String> = filter
        .having
        .iter()
        .enumerate()
        .map(|(index, condition)| {
            format!(
                "({})::float8 {} ($8::float8[])[{}]",
                condition.metric.sql(),
                condition.comparison.sql(),
                index + 1
            )
        })
        .collect();
    let direction = if filter.descending { "DESC" } else { "ASC" };
    let order: Vec<String> = std::iter::once(format!("{} {direction} NULLS LAST", filter.order_by.sql()))
        .chain(dimensions.iter().map(|sql| format!("{sql} ASC NULLS LAST")))
        .collect();
    format!(
        "SELECT json_build_object('key', json_build_object({keys}), {metrics})::text AS answer \
         FROM events \
         WHERE project_id = $1 AND \"timestamp\" >= $2 AND \"timestamp\" < $3 \
           AND ($4::text IS NULL OR event_type = $4) \
           AND ($5::text IS NULL OR source = $5) \
           AND ($6::text IS NULL OR status = $6) \
         GROUP BY {group} \
         {having} \
         ORDER BY {order} \
         LIMIT $9",
        keys = key_pairs.join(", "),
        metrics = metric_pairs.join(", "),
        group = dimensions.join(", "),
        having = if having.is_empty() {
            String::new()
        } else {
            format!("HAVING {}", having.join(" AND "))
        },
        order = order.join(", "),
    )
}

async fn from_raw_events(
    management: &ManagementState,
    project: Uuid,
    filter: &AnalyticsFilter,
) -> Result<Vec<Group>, ApiError> {
    let data_keys: Vec<String> = filter
        .group_by
        .iter()
        .filter_map(|dimension| match dimension {
            Dimension::Data(key) => Some(key.clone()),
            _ => None,
        })
        .collect();
    let having_values: Vec<f64> = filter.having.iter().map(|condition| condition.value).collect();
    let mut conn = management.conn().await?;
    let rows: Vec<RawGroupRow> = diesel::sql_query(raw_statement(filter))
        .bind::<SqlUuid, _>(project)
        .bind::<Timestamptz, _>(filter.start)
        .bind::<Timestamptz, _>(filter.end)
        .bind::<Nullable<Text>, _>(filter.event_type.as_deref())
        .bind::<Nullable<Text>, _>(filter.source.as_deref())
        .bind::<Nullable<Text>, _>(filter.status.as_deref())
        .bind::<Array<Text>, _>(data_keys)
        .bind::<Array<Double>, _>(having_values)
        .bind::<BigInt, _>(filter.limit + 1)
        .load(&mut conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let mut object: Map<String, Value> = serde_json::from_str(&row.answer)
                .map_err(|error| ApiError::Internal(format!("analytics row {:?}: {error}", row.answer)))?;
            let key = match object.remove("key") {
                Some(Value::Object(key)) => key,
                _ => Map::new(),
            };
            Ok(Group { key, metrics: object })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::params::tests::pairs;

    fn config() -> QueryConfig {
        QueryConfig {
            read_rate_per_sec: 100,
            max_raw_days: 7,
            max_buckets: 10_000,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:34:56Z".parse().expect("now")
    }

    fn parse(list: &[(&str, &str)]) -> Result<AnalyticsFilter, ApiError> {
        AnalyticsFilter::from_pairs(pairs(list), now(), &config())
    }

    #[test]
    fn defaults_group_by_event_type_and_count_the_last_day_in_whole_minutes() {
        let filter = parse(&[]).expect("valid");
        assert_eq!(filter.group_by, vec![Dimension::EventType]);
        assert_eq!(filter.metrics, vec![Metric::Count]);
        assert_eq!(
            (filter.order_by, filter.descending, filter.limit),
            (Metric::Count, true, 100)
        );
        assert_eq!(filter.end, "2026-12-01T12:35:00Z".parse::<DateTime<Utc>>().expect("t"));
        assert_eq!(
            filter.start,
            "2026-11-30T12:34:00Z".parse::<DateTime<Utc>>().expect("t")
        );
        assert!(filter.rollups_can_answer());
    }

    #[test]
    fn having_and_order_by_add_their_metrics() {
        let filter = parse(&[
            ("group_by", "source,data.plan"),
            ("metrics", "unique_users"),
            ("having", "count>=10, p95_duration<250.5"),
            ("order_by", "avg_duration"),
        ])
        .expect("valid");
        assert!(!filter.rollups_can_answer());
        assert_eq!(
            filter.metrics,
            vec![
                Metric::UniqueUsers,
                Metric::Count,
                Metric::P95Duration,
                Metric::AvgDuration
            ]
        );
        assert_eq!(
            filter.having,
            vec![
                Condition {
                    metric: Metric::Count,
                    comparison: Comparison::AtLeast,
                    value: 10.0
                },
                Condition {
                    metric: Metric::P95Duration,
                    comparison: Comparison::Less,
                    value: 250.5
                },
            ]
        );
        assert!(!filter.descending);
        let statement = raw_statement(&filter);
        assert!(statement.contains("(data -> ($7::text[])[1])"), "{statement}");
        assert!(
            !statement.contains("plan"),
            "keys are bound, never written: {statement}"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (list, parameter) in [
            (&[("group_by", "colour")][..], "group_by"),
            (&[("group_by", "data.")][..], "group_by"),
            (&[("group_by", "source,source")][..], "group_by"),
            (&[("group_by", "a,b,c,d,e,f")][..], "group_by"),
            (&[("metrics", "median")][..], "metrics"),
            (&[("having", "count")][..], "having"),
            (&[("having", "count>lots")][..], "having"),
            (&[("having", "dominant_status=1")][..], "having"),
            (&[("order_by", "-dominant_status")][..], "order_by"),
            (&[("limit", "0")][..], "limit"),
            (&[("limit", "1001")][..], "limit"),
            (
                &[("group_by", "user_id"), ("start", "2026-11-01T00:00:00Z")][..],
                "start",
            ),
            (&[("start", "2026-12-02T00:00:00Z")][..], "start"),
            (&[("status", "a"), ("status", "b")][..], "status"),
            (&[("colour", "red")][..], "query"),
        ] {
            match parse(list) {
                Err(ApiError::InvalidParameter { parameter: named, .. }) => assert_eq!(named, parameter, "{list:?}"),
                other => panic!("{list:?}: {other:?}"),
            }
        }
        // A month grouped by the rollups' dimensions is fine; by user_id it is not.
        assert!(parse(&[("start", "2026-11-01T00:00:00Z")]).is_ok());
    }

    #[test]
    fn conditions_read_two_character_operators_whole() {
        let condition = Condition::parse("unique_users!=3").expect("valid");
        assert_eq!(
            (condition.metric, condition.comparison),
            (Metric::UniqueUsers, Comparison::NotEqual)
        );
        let condition = Condition::parse("count<=0").expect("valid");
        assert_eq!(condition.comparison, Comparison::AtMost);
        assert!(Condition::parse("count>inf").is_err());
    }
}
