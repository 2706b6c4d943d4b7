//! `GET …/monitors/{monitor_id}/stats`: a monitor's figures over the last 24 hours, 7 days and
//! 30 days, each window ending at the time of the request. Members read them.
//!
//! - Uptime is computed from the checks themselves (`monitor_checks`), not from the daily
//!   counters (`monitor_daily`): the windows are rolling (the last 24 h, not yesterday), and
//!   whole UTC days would misplace up to a day of checks at each end. One scan of the
//!   `(monitor_id, checked_at)` index over 30 days serves every window (`FILTER` per window);
//!   at a 10 s interval that is 259,200 rows at most. Uptime is passed checks over checks, in
//!   percent; every recorded check counts, those held by an open breaker (`breaker`) as
//!   failures. `null` when the window holds no check. The status page's 90 days read
//!   `monitor_daily` instead (`status_page`).
//! - Latency percentiles p50, p95, p99 are PostgreSQL's `percentile_cont` (linear
//!   interpolation) over the checks that got an answer (a status code), whether or not it
//!   passed: the time a `dns`, `connect`, `tls` or `timeout` failure took is not a response
//!   time (a timeout would pull p99 to `timeout_ms`). `null` when none did.
//! - Incidents: how many down periods overlap the window and the seconds of it they cover
//!   (an open one up to now), plus the 5 most recent incidents.

use actix_web::web;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Timestamptz};
use diesel_async::RunQueryDsl;
use pulse_shared::schema::monitor_incidents;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::{MonitorIncidentRow, MonitorIncidentView};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::ManagementState;

/// The windows, by name and length.
const WINDOWS: [(&str, i64); 3] = [("24h", 1), ("7d", 7), ("30d", 30)];
/// Recent incidents shown.
pub const RECENT_INCIDENTS: i64 = 5;

/// Latency percentiles of a window, in milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MonitorLatency)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// The figures of one window.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MonitorWindowStats)]
pub struct WindowStats {
    /// The window's start; it ends at `computed_at`.
    pub from: DateTime<Utc>,
    pub checks: i64,
    pub ok_checks: i64,
    /// `ok_checks` / `checks` in percent; `null` without checks.
    pub uptime_pct: Option<f64>,
    /// Over the checks that got an answer (a status code), passed or not.
    pub latency_ms: Latency,
    /// Incidents overlapping the window.
    pub incidents: i64,
    /// Seconds of the window the monitor was down (open incidents up to now).
    pub downtime_s: i64,
}

/// A monitor's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MonitorStats, example = json!({
    "monitor_id": "0192f0c1-7a3e-7000-8000-00000000d001",
    "computed_at": "2026-12-02T10:00:00Z",
    "windows": {
        "24h": {"from": "2026-12-01T10:00:00Z", "checks": 2880, "ok_checks": 2870, "uptime_pct": 99.65277777777777,
                "latency_ms": {"p50": 41.0, "p95": 120.0, "p99": 480.5}, "incidents": 1, "downtime_s": 300},
        "7d": {"from": "2026-11-25T10:00:00Z", "checks": 20160, "ok_checks": 20150, "uptime_pct": 99.95039682539682,
               "latency_ms": {"p50": 40.0, "p95": 110.0, "p99": 400.0}, "incidents": 1, "downtime_s": 300},
        "30d": {"from": "2026-11-02T10:00:00Z", "checks": 86400, "ok_checks": 86390, "uptime_pct": 99.98842592592592,
                "latency_ms": {"p50": 40.0, "p95": 100.0, "p99": 380.0}, "incidents": 1, "downtime_s": 300}
    },
    "recent_incidents": []
}))]
pub struct StatsView {
    pub monitor_id: Uuid,
    /// The end of every window.
    pub computed_at: DateTime<Utc>,
    pub windows: Windows,
    /// The newest incidents, at most 5.
    pub recent_incidents: Vec<MonitorIncidentView>,
}

/// The three windows.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MonitorStatsWindows)]
pub struct Windows {
    #[serde(rename = "24h")]
    pub day: WindowStats,
    #[serde(rename = "7d")]
    pub week: WindowStats,
    #[serde(rename = "30d")]
    pub month: WindowStats,
}

/// One window's figures as the query returns them.
#[derive(Debug, QueryableByName)]
struct WindowRow {
    #[diesel(sql_type = BigInt)]
    checks: i64,
    #[diesel(sql_type = BigInt)]
    ok_checks: i64,
    #[diesel(sql_type = Nullable<Array<Double>>)]
    latency: Option<Vec<f64>>,
    #[diesel(sql_type = BigInt)]
    incidents: i64,
    #[diesel(sql_type = Double)]
    downtime_s: f64,
}

/// One row per window (in [`WINDOWS`] order): the checks over one index scan, the incidents
/// over another. `$1` the monitor, `$2` now, `$3`…`$5` the windows' starts.
const STATS_SQL: &str = r#"
WITH checks AS (
    SELECT checked_at, ok, status_code, latency_ms
    FROM monitor_checks
    WHERE monitor_id = $1 AND checked_at >= $5 AND checked_at <= $2
), incidents AS (
    SELECT started_at, LEAST(COALESCE(resolved_at, $2), $2) AS ended_at
    FROM monitor_incidents
    WHERE monitor_id = $1 AND COALESCE(resolved_at, $2) > $5 AND started_at <= $2
), windows (position, start) AS (
    VALUES (1, $3), (2, $4), (3, $5)
)
SELECT
    (SELECT count(*) FROM checks WHERE checked_at >= w.start) AS checks,
    (SELECT count(*) FROM checks WHERE checked_at >= w.start AND ok) AS ok_checks,
    (SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY latency_ms)
       FROM checks WHERE checked_at >= w.start AND status_code IS NOT NULL AND latency_ms IS NOT NULL) AS latency,
    (SELECT count(*) FROM incidents WHERE ended_at > w.start) AS incidents,
    (SELECT COALESCE(sum(EXTRACT(EPOCH FROM ended_at - GREATEST(started_at, w.start))), 0)::float8
       FROM incidents WHERE ended_at > w.start) AS downtime_s
FROM windows w
ORDER BY w.position
"#;

fn window(from: DateTime<Utc>, row: WindowRow) -> WindowStats {
    let latency = row.latency.unwrap_or_default();
    let at = |index: usize| latency.get(index).copied();
    WindowStats {
        from,
        checks: row.checks,
        ok_checks: row.ok_checks,
        uptime_pct: (row.checks > 0).then(|| row.ok_checks as f64 * 100.0 / row.checks as f64),
        latency_ms: Latency {
            p50: at(0),
            p95: at(1),
            p99: at(2),
        },
        incidents: row.incidents,
        downtime_s: row.downtime_s.round() as i64,
    }
}

/// A monitor's uptime, latency and incidents over 24 h, 7 d and 30 d.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}/stats",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
    ),
    responses(
        (status = 200, description = "The figures, each window ending now", body = StatsView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn stats(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<StatsView>, ApiError> {
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let monitor = super::find(&mut conn, project.id, monitor_id, false).await?;
    let now = Utc::now();
    let starts = WINDOWS.map(|(_, days)| now - TimeDelta::days(days));
    let rows: Vec<WindowRow> = diesel::sql_query(STATS_SQL)
        .bind::<diesel::sql_types::Uuid, _>(monitor.id)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(starts[0])
        .bind::<Timestamptz, _>(starts[1])
        .bind::<Timestamptz, _>(starts[2])
        .load(&mut conn)
        .await?;
    let [day, week, month]: [WindowRow; 3] = rows
        .try_into()
        .map_err(|_| ApiError::Internal("the stats query did not return three windows".into()))?;
    let recent: Vec<MonitorIncidentRow> = monitor_incidents::table
        .filter(monitor_incidents::monitor_id.eq(monitor.id))
        .order((monitor_incidents::started_at.desc(), monitor_incidents::id.desc()))
        .limit(RECENT_INCIDENTS)
        .select(MonitorIncidentRow::as_select())
        .load(&mut conn)
        .await?;
    Ok(web::Json(StatsView {
        monitor_id: monitor.id,
        computed_at: now,
        windows: Windows {
            day: window(starts[0], day),
            week: window(starts[1], week),
            month: window(starts[2], month),
        },
        recent_incidents: recent
            .into_iter()
            .map(|row| MonitorIncidentView::new(row, now))
            .collect(),
    }))
}
