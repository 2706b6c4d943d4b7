//! The read side of named metrics (the points of `POST /v1/metrics`, stored by the metrics
//! worker), with the same credentials, limits and errors as the event reads ([`ReadAccess`]):
//!
//! - `GET /v1/metrics?name=…`: raw points of one metric, newest first, filtered by
//!   `labels.KEY=VALUE` (every given label must match), paged by the events' cursor
//!   (`cursor.rs`). `name` is required: every page is a scan of the
//!   `(project_id, name, timestamp DESC, id DESC)` index, bounded in time (at most
//!   `PULSE_QUERY_MAX_RAW_DAYS`).
//! - `GET /v1/metrics/{name}/aggregate`: count, sum, min, max, avg and p50/p90/p95/p99 per time
//!   bucket, merged from the per-minute `metric_rollups` (exact for count, sum, min, max; the
//!   percentiles from the merged DDSketch, within 0.5 % of the value at their rank, clamped to
//!   the exact min and max, as the event rollups). Rollups are per (project, name), so an
//!   aggregate covers every label set of the metric: `labels.*` is refused here (400) rather
//!   than silently ignored. A metric with no point answers 200 with empty buckets (count 0).
//! - `GET /v1/metrics/{name}/latest`: the newest point by (timestamp, id) from
//!   `metric_latest` (one row per label set, kept by the worker), optionally narrowed by
//!   `labels.KEY=VALUE`, or per distinct value of one label with `group_by=labels.KEY`. Never
//!   reads history. No point: 404 `NOT_FOUND` ("metric not found").

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Double, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use pulse_shared::metric::{valid_label_key, valid_name};
use pulse_shared::rollup::Values;
use pulse_shared::schema::metric_points;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::cursor::Cursor;
use super::params::{invalid, query_pairs, time, DEFAULT_LIMIT, DEFAULT_RANGE, MAX_LIMIT};
use super::rollups::Interval;
use crate::error::ApiError;
use crate::management::ManagementState;

/// A stored point, as the raw list shows it.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = metric_points)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-0000000e0001",
    "name": "cpu.load",
    "timestamp": "2026-12-01T10:00:00Z",
    "value": 0.73,
    "labels": {"host": "web-1"},
    "received_at": "2026-12-01T10:00:00.120Z"
}))]
pub struct StoredPoint {
    pub id: Uuid,
    pub name: String,
    pub timestamp: DateTime<Utc>,
    pub value: f64,
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// When the api received it.
    pub received_at: DateTime<Utc>,
}

/// A page of `GET /v1/metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointPage {
    /// Newest first, in (timestamp, id) order.
    pub data: Vec<StoredPoint>,
    /// Pass as `cursor` (with the same `name` and labels) for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/metrics` parameters as the document states them; read by hand ([`ListFilter`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PointQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// The metric (required).
    #[param(pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$", min_length = 1, max_length = 128)]
    pub name: String,
    /// Inclusive, RFC 3339. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339. Default: now.
    pub end: Option<DateTime<Utc>>,
    /// Points per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; the range is the first page's.
    pub cursor: Option<String>,
}

/// The checked parameters of the raw list.
#[derive(Debug)]
pub struct ListFilter {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub limit: i64,
    pub after: Option<Cursor>,
}

/// `labels.KEY=VALUE`: the key, checked, or 400 naming `labels`.
fn label_filter(name: &str, value: String, labels: &mut BTreeMap<String, String>) -> Result<bool, ApiError> {
    let Some(key) = name.strip_prefix("labels.") else {
        return Ok(false);
    };
    if !valid_label_key(key) {
        return Err(invalid(
            "labels",
            format!("{name}: a label key is 1 to 64 characters, a letter or _ then letters, digits or _"),
        ));
    }
    if value.contains('\0') {
        return Err(invalid("labels", format!("{name} must not contain NUL")));
    }
    if labels.insert(key.to_owned(), value).is_some() {
        return Err(invalid("labels", format!("{name} is given twice")));
    }
    Ok(true)
}

fn check_name(parameter: &'static str, name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(invalid(
            parameter,
            format!("{parameter} must be a metric name: 1 to 128 characters, a letter or _ then letters, digits, _, ., : or -"),
        ))
    }
}

fn once<T>(slot: &mut Option<T>, parameter: &'static str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(invalid(parameter, format!("{parameter} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

impl ListFilter {
    pub fn from_pairs(pairs: Vec<(String, String)>, now: DateTime<Utc>, max_raw_days: u32) -> Result<Self, ApiError> {
        let (mut name, mut start, mut end, mut limit, mut cursor) = (None, None, None, None, None);
        let mut project = None;
        let mut labels = BTreeMap::new();
        for (parameter, value) in pairs {
            match parameter.as_str() {
                "project_id" => once(&mut project, "project_id", ())?,
                "name" => {
                    check_name("name", &value)?;
                    once(&mut name, "name", value)?
                }
                "start" => once(&mut start, "start", time("start", &value)?)?,
                "end" => once(&mut end, "end", time("end", &value)?)?,
                "limit" => once(
                    &mut limit,
                    "limit",
                    value
                        .parse()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| invalid("limit", format!("limit must be an integer from 1 to {MAX_LIMIT}")))?,
                )?,
                "cursor" => once(
                    &mut cursor,
                    "cursor",
                    Cursor::decode(&value).ok_or_else(|| {
                        invalid(
                            "cursor",
                            "cursor is not one this api returned (use next_cursor as given)",
                        )
                    })?,
                )?,
                other => {
                    if !label_filter(other, value, &mut labels)? {
                        return Err(invalid(
                            "query",
                            format!("unknown parameter {other:?}; parameters: project_id, name, start, end, labels.KEY, limit, cursor"),
                        ));
                    }
                }
            }
        }
        let name = name.ok_or_else(|| invalid("name", "name is required"))?;
        let (start, end) = match cursor {
            Some(cursor) => (cursor.start, cursor.end),
            None => {
                let end = end.unwrap_or(now);
                (start.unwrap_or(end - DEFAULT_RANGE), end)
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
        Ok(Self {
            name,
            start,
            end,
            labels,
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            after: cursor,
        })
    }
}

/// Raw points of one metric, newest first.
#[utoipa::path(
    get,
    path = "/v1/metrics",
    operation_id = "metrics_list",
    tag = "metrics",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        PointQuery,
        ("labels.KEY" = Option<String>, Query, description = "Repeatable with different keys: only points whose label KEY has this value (e.g. `labels.host=web-1`)"),
    ),
    responses(
        (status = 200, description = "A page of points", body = PointPage),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): name missing or not a metric name, a bad value, an unknown parameter, or a range over PULSE_QUERY_MAX_RAW_DAYS"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn list_points(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<PointPage>, ApiError> {
    let filter = ListFilter::from_pairs(query_pairs(&req)?, Utc::now(), state.config.max_raw_days)?;
    let mut query = metric_points::table
        .filter(metric_points::project_id.eq(access.project_id))
        .filter(metric_points::name.eq(&filter.name))
        .filter(metric_points::timestamp.ge(filter.start))
        .filter(metric_points::timestamp.lt(filter.end))
        .order((metric_points::timestamp.desc(), metric_points::id.desc()))
        .limit(filter.limit + 1)
        .select(StoredPoint::as_select())
        .into_boxed();
    if let Some(after) = filter.after {
        // The first conjunct bounds the index scan at the cursor (as for events).
        query = query.filter(metric_points::timestamp.le(after.timestamp)).filter(
            metric_points::timestamp.lt(after.timestamp).or(metric_points::timestamp
                .eq(after.timestamp)
                .and(metric_points::id.lt(after.id))),
        );
    }
    if !filter.labels.is_empty() {
        let wanted = serde_json::to_value(&filter.labels).unwrap_or_default();
        query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>("labels @> ").bind::<Jsonb, _>(wanted));
    }
    let mut conn = management.conn().await?;
    let mut rows: Vec<StoredPoint> = query.load(&mut conn).await?;
    let next_cursor = if rows.len() as i64 > filter.limit {
        rows.truncate(filter.limit as usize);
        rows.last().map(|last| {
            Cursor {
                start: filter.start,
                end: filter.end,
                timestamp: last.timestamp,
                id: last.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(web::Json(PointPage {
        data: rows,
        next_cursor,
    }))
}

/// `GET /v1/metrics/{name}/aggregate` parameters as the document states them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AggregateQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// Bucket width: `1m`, `5m`, `15m`, `1h` or `1d` (default `1h`).
    #[param(inline)]
    pub interval: Option<Interval>,
    /// Inclusive, RFC 3339, rounded down to the interval. Default: 24 hours before `end`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive, RFC 3339, rounded up to the interval. Default: now.
    pub end: Option<DateTime<Utc>>,
}

/// The checked parameters of an aggregate.
#[derive(Debug)]
pub struct AggregateFilter {
    pub interval: Interval,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl AggregateFilter {
    pub fn from_pairs(pairs: Vec<(String, String)>, now: DateTime<Utc>, max_buckets: u32) -> Result<Self, ApiError> {
        let (mut project, mut interval, mut start, mut end) = (None, None, None, None);
        for (parameter, value) in pairs {
            match parameter.as_str() {
                "project_id" => once(&mut project, "project_id", ())?,
                "interval" => once(
                    &mut interval,
                    "interval",
                    Interval::parse(&value).ok_or_else(|| {
                        invalid("interval", format!("interval must be 1m, 5m, 15m, 1h or 1d, got {value:?}"))
                    })?,
                )?,
                "start" => once(&mut start, "start", time("start", &value)?)?,
                "end" => once(&mut end, "end", time("end", &value)?)?,
                other if other.starts_with("labels.") => {
                    return Err(invalid(
                        "labels",
                        "an aggregate covers every label set of the metric (rollups are per name); labels.KEY filters are for the raw list and latest",
                    ))
                }
                other => {
                    return Err(invalid(
                        "query",
                        format!("unknown parameter {other:?}; parameters: project_id, interval, start, end"),
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
        Ok(Self { interval, start, end })
    }

    pub fn buckets(&self) -> usize {
        ((self.end - self.start).num_seconds() / self.interval.width().num_seconds()) as usize
    }
}

/// One bucket of an aggregate. Empty buckets have a count of 0 and `null` statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    pub count: i64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// sum / count.
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Answer of `GET /v1/metrics/{name}/aggregate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricAggregate {
    pub name: String,
    #[schema(inline)]
    pub interval: Interval,
    /// The range answered, widened to whole buckets.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Every bucket of the range, oldest first.
    pub buckets: Vec<MetricBucket>,
}

#[derive(QueryableByName)]
struct RollupRow {
    #[diesel(sql_type = Timestamptz)]
    bucket: DateTime<Utc>,
    #[diesel(sql_type = Int8)]
    count: i64,
    #[diesel(sql_type = Double)]
    sum: f64,
    #[diesel(sql_type = Double)]
    min: f64,
    #[diesel(sql_type = Double)]
    max: f64,
    #[diesel(sql_type = Bytea)]
    sketch: Vec<u8>,
}

/// A bucket being merged.
#[derive(Default)]
struct Merged {
    count: i64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    sketch: Option<Values>,
}

impl Merged {
    fn add(&mut self, row: RollupRow) -> Result<(), ApiError> {
        let sketch =
            Values::decode(&row.sketch).map_err(|error| ApiError::Internal(format!("metric rollup: {error}")))?;
        self.count += row.count;
        self.sum += row.sum;
        self.min = Some(self.min.map_or(row.min, |min| min.min(row.min)));
        self.max = Some(self.max.map_or(row.max, |max| max.max(row.max)));
        match &mut self.sketch {
            Some(mine) => mine.merge(&sketch),
            None => self.sketch = Some(sketch),
        }
        Ok(())
    }

    fn bucket(self, start: DateTime<Utc>) -> MetricBucket {
        // A sketch answers a bin's representative value; the true quantile lies within the
        // exact min and max, so clamping only brings it closer.
        let quantile = |q: f64| -> Option<f64> {
            let (low, high) = (self.min?, self.max?);
            self.sketch.as_ref()?.quantile(q).map(|value| value.clamp(low, high))
        };
        MetricBucket {
            start,
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            avg: (self.count > 0).then(|| self.sum / self.count as f64),
            p50: quantile(0.5),
            p90: quantile(0.9),
            p95: quantile(0.95),
            p99: quantile(0.99),
        }
    }
}

const SELECT_ROLLUPS: &str = "SELECT bucket, count, sum, min, max, sketch FROM metric_rollups
     WHERE project_id = $1 AND name = $2 AND bucket >= $3 AND bucket < $4";

/// Statistics of one metric per time bucket, over every label set.
#[utoipa::path(
    get,
    path = "/v1/metrics/{name}/aggregate",
    operation_id = "metrics_aggregate",
    tag = "metrics",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        ("name" = String, Path, description = "The metric", pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$", min_length = 1, max_length = 128),
        AggregateQuery,
    ),
    responses(
        (status = 200, description = "Every bucket of the range, oldest first (count 0 where no point fell, also for a metric never seen)", body = MetricAggregate),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): a bad name or value, an unknown parameter, labels.KEY (not supported here), or more than PULSE_QUERY_MAX_BUCKETS buckets"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn aggregate(
    access: ReadAccess,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<MetricAggregate>, ApiError> {
    let name = path.into_inner();
    check_name("name", &name)?;
    let filter = AggregateFilter::from_pairs(query_pairs(&req)?, Utc::now(), state.config.max_buckets)?;
    let mut conn = management.conn().await?;
    let rows: Vec<RollupRow> = diesel::sql_query(SELECT_ROLLUPS)
        .bind::<SqlUuid, _>(access.project_id)
        .bind::<Text, _>(&name)
        .bind::<Timestamptz, _>(filter.start)
        .bind::<Timestamptz, _>(filter.end)
        .load(&mut conn)
        .await?;
    let width = filter.interval.width();
    let mut merged: Vec<Merged> = (0..filter.buckets()).map(|_| Merged::default()).collect();
    for row in rows {
        let index = ((filter.interval.floor(row.bucket) - filter.start).num_seconds() / width.num_seconds()) as usize;
        if let Some(bucket) = merged.get_mut(index) {
            bucket.add(row)?;
        }
    }
    let buckets = merged
        .into_iter()
        .enumerate()
        .map(|(index, bucket)| bucket.bucket(filter.start + width * index as i32))
        .collect();
    Ok(web::Json(MetricAggregate {
        name,
        interval: filter.interval,
        start: filter.start,
        end: filter.end,
        buckets,
    }))
}

/// `GET /v1/metrics/{name}/latest` parameters as the document states them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LatestQuery {
    /// Only with an access token: the project to read.
    pub project_id: Option<Uuid>,
    /// `labels.KEY`: the latest point per distinct value of that label (points without it
    /// form one group with a `null` value).
    #[param(pattern = r"^labels\.[A-Za-z_][A-Za-z0-9_]*$", max_length = 71)]
    pub group_by: Option<String>,
}

/// The latest point of a label set.
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct LatestPoint {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub timestamp: DateTime<Utc>,
    #[diesel(sql_type = Double)]
    pub value: f64,
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
}

/// One group of a `group_by` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestGroup {
    /// The label's value; `null` for the points without that label.
    pub value: Option<String>,
    pub point: LatestPoint,
}

/// Answer of `GET /v1/metrics/{name}/latest`: `point` without `group_by`, `group_by` and
/// `groups` (ordered by value, `null` last) with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Latest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<LatestPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<LatestGroup>>,
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Nullable<Text>)]
    group_value: Option<String>,
    #[diesel(embed)]
    point: LatestPoint,
}

/// The checked parameters of `latest`.
#[derive(Debug, Default)]
pub struct LatestFilter {
    /// The label key of `group_by=labels.KEY`.
    pub group_by: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl LatestFilter {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        let mut project = None;
        for (parameter, value) in pairs {
            match parameter.as_str() {
                "project_id" => once(&mut project, "project_id", ())?,
                "group_by" => {
                    let key = value
                        .strip_prefix("labels.")
                        .filter(|key| valid_label_key(key))
                        .ok_or_else(|| {
                            invalid(
                                "group_by",
                                format!("group_by must be labels.KEY with a valid label key, got {value:?}"),
                            )
                        })?;
                    once(&mut filter.group_by, "group_by", key.to_owned())?
                }
                other => {
                    if !label_filter(other, value, &mut filter.labels)? {
                        return Err(invalid(
                            "query",
                            format!("unknown parameter {other:?}; parameters: project_id, group_by, labels.KEY"),
                        ));
                    }
                }
            }
        }
        Ok(filter)
    }
}

const SELECT_LATEST: &str = "SELECT id, \"timestamp\", value, labels FROM metric_latest
     WHERE project_id = $1 AND name = $2 AND labels @> $3
     ORDER BY \"timestamp\" DESC, id DESC LIMIT 1";

const SELECT_LATEST_GROUPS: &str = "SELECT DISTINCT ON (labels ->> $4) labels ->> $4 AS group_value,
            id, \"timestamp\", value, labels
     FROM metric_latest
     WHERE project_id = $1 AND name = $2 AND labels @> $3
     ORDER BY labels ->> $4, \"timestamp\" DESC, id DESC";

/// The newest point of one metric, or the newest per value of one label.
#[utoipa::path(
    get,
    path = "/v1/metrics/{name}/latest",
    operation_id = "metrics_latest",
    tag = "metrics",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        ("name" = String, Path, description = "The metric", pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$", min_length = 1, max_length = 128),
        LatestQuery,
        ("labels.KEY" = Option<String>, Query, description = "Repeatable with different keys: only label sets where KEY has this value"),
    ),
    responses(
        (status = 200, description = "The newest point (by timestamp, then id), or the newest per group", body = Latest),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): a bad name, group_by or labels.KEY, or an unknown parameter"),
        (status = 404, description = "NOT_FOUND: no point of this metric (with these labels), or no such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn latest(
    access: ReadAccess,
    path: web::Path<String>,
    req: HttpRequest,
    management: web::Data<ManagementState>,
) -> Result<web::Json<Latest>, ApiError> {
    let name = path.into_inner();
    check_name("name", &name)?;
    let filter = LatestFilter::from_pairs(query_pairs(&req)?)?;
    let wanted = serde_json::to_value(&filter.labels).unwrap_or_default();
    let mut conn = management.conn().await?;
    let answer = match filter.group_by {
        None => {
            let point: Option<LatestPoint> = diesel::sql_query(SELECT_LATEST)
                .bind::<SqlUuid, _>(access.project_id)
                .bind::<Text, _>(&name)
                .bind::<Jsonb, _>(&wanted)
                .get_result(&mut conn)
                .await
                .optional()?;
            Latest {
                name,
                point: Some(point.ok_or(ApiError::Missing("metric"))?),
                group_by: None,
                groups: None,
            }
        }
        Some(key) => {
            let rows: Vec<GroupRow> = diesel::sql_query(SELECT_LATEST_GROUPS)
                .bind::<SqlUuid, _>(access.project_id)
                .bind::<Text, _>(&name)
                .bind::<Jsonb, _>(&wanted)
                .bind::<Text, _>(&key)
                .load(&mut conn)
                .await?;
            if rows.is_empty() {
                return Err(ApiError::Missing("metric"));
            }
            Latest {
                name,
                point: None,
                group_by: Some(format!("labels.{key}")),
                groups: Some(
                    rows.into_iter()
                        .map(|row| LatestGroup {
                            value: row.group_value,
                            point: row.point,
                        })
                        .collect(),
                ),
            }
        }
    };
    Ok(web::Json(answer))
}

#[cfg(test)]
mod tests {
    use super::super::params::tests::pairs;
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().expect("now")
    }

    fn parameter(error: ApiError) -> &'static str {
        match error {
            ApiError::InvalidParameter { parameter, .. } => parameter,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_list_needs_a_name_and_reads_label_filters() {
        let filter = ListFilter::from_pairs(
            pairs(&[("name", "cpu"), ("labels.host", "a"), ("labels.dc", "")]),
            now(),
            7,
        )
        .expect("valid");
        assert_eq!(filter.labels.len(), 2);
        assert_eq!(
            (filter.start, filter.end, filter.limit),
            (now() - DEFAULT_RANGE, now(), DEFAULT_LIMIT)
        );
        for (list, expected) in [
            (&[][..], "name"),
            (&[("name", "cpu load")][..], "name"),
            (&[("name", "cpu"), ("labels.a-b", "x")][..], "labels"),
            (&[("name", "cpu"), ("labels.a", "x"), ("labels.a", "y")][..], "labels"),
            (&[("name", "cpu"), ("limit", "0")][..], "limit"),
            (&[("name", "cpu"), ("colour", "red")][..], "query"),
            (&[("name", "cpu"), ("start", "2026-11-01T00:00:00Z")][..], "start"),
        ] {
            assert_eq!(
                parameter(ListFilter::from_pairs(pairs(list), now(), 7).expect_err("invalid")),
                expected,
                "{list:?}"
            );
        }
    }

    #[test]
    fn aggregates_refuse_label_filters_and_widen_to_buckets() {
        let filter = AggregateFilter::from_pairs(
            pairs(&[
                ("interval", "5m"),
                ("start", "2026-12-01T10:03:00Z"),
                ("end", "2026-12-01T10:11:00Z"),
            ]),
            now(),
            10_000,
        )
        .expect("valid");
        assert_eq!(filter.buckets(), 3);
        assert_eq!(
            parameter(AggregateFilter::from_pairs(pairs(&[("labels.host", "a")]), now(), 10_000).expect_err("labels")),
            "labels"
        );
        assert_eq!(
            parameter(AggregateFilter::from_pairs(pairs(&[("interval", "2h")]), now(), 10_000).expect_err("interval")),
            "interval"
        );
    }

    #[test]
    fn latest_groups_by_one_label() {
        let filter =
            LatestFilter::from_pairs(pairs(&[("group_by", "labels.host"), ("labels.dc", "eu")])).expect("valid");
        assert_eq!(filter.group_by.as_deref(), Some("host"));
        assert_eq!(
            parameter(LatestFilter::from_pairs(pairs(&[("group_by", "host")])).expect_err("bare key")),
            "group_by"
        );
    }
}
