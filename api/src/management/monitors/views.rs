//! A monitor, a check and an incident as the routes show them ([`MonitorView`], [`CheckView`],
//! [`MonitorIncidentView`]), loaded as [`MonitorRow`], [`CheckRow`] and [`MonitorIncidentRow`].
//! A monitor's settings have the shape a request takes (`expected_status` as `"2xx"`, `"200"`,
//! `"200-204"`), so a monitor read can be sent back as it is. The scheduling lease and the
//! certificate warning bookkeeping are the check engine's business, not shown.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use pulse_shared::monitor::spec::{self, BreakerState, MonitorState};
use pulse_shared::schema::{monitor_checks, monitor_incidents};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::rules::{JsonMatch, MonitorChannels};

/// A monitor's stored columns: the check's own row type.
pub use pulse_shared::monitor::record::MonitorRow;

/// What a monitor shows as its state: the stored verdict, or `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShownState {
    /// No verdict yet (new, or its URL changed).
    Pending,
    Up,
    /// Failed `failures_before_down` checks in a row; an incident is open.
    Down,
    /// Not checked until unpaused.
    Paused,
}

impl ShownState {
    pub fn of(paused: bool, stored: &str) -> Self {
        if paused {
            return Self::Paused;
        }
        match MonitorState::parse(stored) {
            MonitorState::Pending => Self::Pending,
            MonitorState::Up => Self::Up,
            MonitorState::Down => Self::Down,
        }
    }
}

/// The circuit breaker of the monitor's target (host and port), shared by every monitor of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = MonitorBreaker)]
pub enum ShownBreaker {
    /// Checks run.
    Closed,
    /// The target failed too often: its checks are held (recorded with error_class `breaker`).
    Open,
    /// One probe is let through; its result closes or reopens the breaker.
    HalfOpen,
}

impl From<BreakerState> for ShownBreaker {
    fn from(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed => Self::Closed,
            BreakerState::Open => Self::Open,
            BreakerState::HalfOpen => Self::HalfOpen,
        }
    }
}

/// One stored check.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = monitor_checks)]
pub struct CheckRow {
    pub id: i64,
    pub monitor_id: Uuid,
    pub checked_at: DateTime<Utc>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub ok: bool,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub cert_expires_at: Option<DateTime<Utc>>,
    pub manual: bool,
}

/// A check of a monitor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MonitorCheck, example = json!({
    "id": 4711,
    "checked_at": "2026-12-02T10:00:00.120Z",
    "scheduled_at": "2026-12-02T10:00:00Z",
    "ok": false,
    "status_code": 503,
    "latency_ms": 42,
    "error_class": "status",
    "error": "status 503 is not expected (2xx)",
    "cert_expires_at": null,
    "manual": false
}))]
pub struct CheckView {
    pub id: i64,
    pub checked_at: DateTime<Utc>,
    /// When it was due; `null` for a manual check.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Whether it passed every condition.
    pub ok: bool,
    /// The response's status, when one came.
    pub status_code: Option<i32>,
    /// Time to the whole response, when one came.
    pub latency_ms: Option<i32>,
    /// Why it failed: `dns`, `connect`, `tls`, `timeout`, `status`, `body`, `latency`,
    /// `breaker` (not checked: the target's breaker is open) or `refused` (the SSRF guard).
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// The HTTPS certificate's expiry.
    pub cert_expires_at: Option<DateTime<Utc>>,
    /// Run through `POST …/check`.
    pub manual: bool,
}

impl From<CheckRow> for CheckView {
    fn from(row: CheckRow) -> Self {
        Self {
            id: row.id,
            checked_at: row.checked_at,
            scheduled_at: row.scheduled_at,
            ok: row.ok,
            status_code: row.status_code,
            latency_ms: row.latency_ms,
            error_class: row.error_class,
            error: row.error,
            cert_expires_at: row.cert_expires_at,
            manual: row.manual,
        }
    }
}

/// A monitor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000d001",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "checkout health",
    "url": "https://shop.example.com/health",
    "method": "GET",
    "headers": {},
    "body": null,
    "interval_s": 30,
    "timeout_ms": 5000,
    "expected_status": ["2xx"],
    "body_contains": null,
    "json_match": {"pointer": "/status", "equals": "ok"},
    "max_latency_ms": 2000,
    "cert_expiry_days": 14,
    "failures_before_down": 3,
    "renotify_s": 0,
    "paused": false,
    "maintenance": [{"weekday": "sunday", "start_time": "02:00", "duration_s": 3600}],
    "channels": {"emails": ["ops@example.com"], "webhook_ids": []},
    "state": "up",
    "breaker": "closed",
    "consecutive_failures": 0,
    "state_changed_at": "2026-12-02T09:00:30Z",
    "last_check": null,
    "next_check_at": "2026-12-02T10:00:30Z",
    "cert_expires_at": "2027-02-01T00:00:00Z",
    "created_at": "2026-12-02T09:00:00Z",
    "updated_at": "2026-12-02T09:00:00Z"
}))]
pub struct MonitorView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    pub method: String,
    /// Extra request headers.
    #[schema(value_type = Object)]
    pub headers: Value,
    pub body: Option<String>,
    pub interval_s: i32,
    pub timeout_ms: i32,
    /// Accepted statuses: `"200"`, `"2xx"`, `"200-204"`.
    pub expected_status: Vec<String>,
    pub body_contains: Option<String>,
    pub json_match: Option<JsonMatch>,
    pub max_latency_ms: Option<i32>,
    pub cert_expiry_days: i32,
    pub failures_before_down: i32,
    /// Seconds between reminders while down; 0: never.
    pub renotify_s: i32,
    pub paused: bool,
    /// Maintenance windows: `{"start", "end"}` and `{"weekday", "start_time", "duration_s"}`.
    #[schema(value_type = Vec<Object>)]
    pub maintenance: Value,
    pub channels: MonitorChannels,
    pub state: ShownState,
    pub breaker: ShownBreaker,
    /// Failed checks in a row.
    pub consecutive_failures: i32,
    /// When the state last changed; `null` until the first verdict.
    pub state_changed_at: Option<DateTime<Utc>>,
    /// The newest check; `null` until the first.
    pub last_check: Option<CheckView>,
    /// When the next scheduled check is due (spread over the interval by the monitor's id).
    pub next_check_at: DateTime<Utc>,
    /// The HTTPS certificate's expiry seen last.
    pub cert_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MonitorView {
    pub fn new(row: MonitorRow, breaker: BreakerState, last_check: Option<CheckRow>) -> Self {
        let json_match = match (row.json_pointer, row.json_equals) {
            (Some(pointer), Some(equals)) => Some(JsonMatch { pointer, equals }),
            _ => None,
        };
        Self {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            url: row.url,
            method: row.method,
            headers: row.headers,
            body: row.body,
            interval_s: row.interval_s,
            timeout_ms: row.timeout_ms,
            expected_status: spec::StatusRanges::from_value(&row.expected_status).describe(),
            body_contains: row.body_contains,
            json_match,
            max_latency_ms: row.max_latency_ms,
            cert_expiry_days: row.cert_expiry_days,
            failures_before_down: row.failures_before_down,
            renotify_s: row.renotify_s,
            paused: row.paused,
            maintenance: row.maintenance,
            channels: MonitorChannels {
                emails: row.emails,
                webhook_ids: row.webhook_ids,
            },
            state: ShownState::of(row.paused, &row.state),
            breaker: breaker.into(),
            consecutive_failures: row.consecutive_failures,
            state_changed_at: row.state_changed_at,
            last_check: last_check.map(CheckView::from),
            next_check_at: row.next_check_at,
            cert_expires_at: row.cert_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of monitors.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorPage {
    pub data: Vec<MonitorView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A page of checks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MonitorCheckPage)]
pub struct CheckPage {
    pub data: Vec<CheckView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// One stored down period.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = monitor_incidents)]
pub struct MonitorIncidentRow {
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub in_maintenance: bool,
    pub notifications: i32,
}

/// A down period of a monitor: opened by the check that took it down, resolved by the one
/// that brought it up.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000e101",
    "monitor_id": "0192f0c1-7a3e-7000-8000-00000000d001",
    "started_at": "2026-12-02T10:00:00Z",
    "resolved_at": "2026-12-02T10:05:00Z",
    "duration_s": 300,
    "error_class": "timeout",
    "error": "no answer within 5000 ms",
    "in_maintenance": false,
    "notifications": 2
}))]
pub struct MonitorIncidentView {
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub started_at: DateTime<Utc>,
    /// `null` while down.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Seconds down so far (to now while open).
    pub duration_s: i64,
    /// What the check that opened it failed with.
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// Opened inside a maintenance window (no notices were sent).
    pub in_maintenance: bool,
    /// Notices sent for it (down, reminders, up).
    pub notifications: i32,
}

impl MonitorIncidentView {
    pub fn new(row: MonitorIncidentRow, now: DateTime<Utc>) -> Self {
        let end = row.resolved_at.unwrap_or(now);
        Self {
            id: row.id,
            monitor_id: row.monitor_id,
            started_at: row.started_at,
            resolved_at: row.resolved_at,
            duration_s: (end - row.started_at).num_seconds().max(0),
            error_class: row.error_class,
            error: row.error,
            in_maintenance: row.in_maintenance,
            notifications: row.notifications,
        }
    }
}

/// A page of incidents.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MonitorIncidentPage)]
pub struct MonitorIncidentPage {
    pub data: Vec<MonitorIncidentView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
