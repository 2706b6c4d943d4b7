//! A rule and an incident as the routes show them ([`AlertView`], [`IncidentView`]), loaded as
//! [`AlertRow`] and [`IncidentRow`]. A rule's `condition` and `channels` have the shape a
//! request takes, so a rule read can be sent back as it is.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use pulse_shared::schema::{alert_incidents, alert_rules};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::rules::{plain_number, plain_number_option, AlertChannels, Condition, Kind, Op, StoredCondition};

/// A rule's stored columns (`next_evaluation_at` is the workers' business, not shown).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_rules)]
pub struct AlertRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub kind: String,
    pub filter_event_type: Option<String>,
    pub filter_source: Option<String>,
    pub filter_status: Option<String>,
    pub window_s: i32,
    pub op: String,
    pub threshold: f64,
    pub min_events: i32,
    pub cooldown_s: i32,
    pub renotify_s: i32,
    pub emails: Vec<String>,
    pub webhook_ids: Vec<Uuid>,
    pub notify_owners: bool,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    pub last_observed: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AlertRow {
    /// The condition of the flat columns.
    pub fn condition(&self) -> StoredCondition {
        let kind = match self.kind.as_str() {
            "error_ratio" => Kind::ErrorRatio,
            "absent" => Kind::Absent,
            _ => Kind::Count,
        };
        StoredCondition {
            kind,
            filter_event_type: self.filter_event_type.clone(),
            filter_source: self.filter_source.clone(),
            filter_status: self.filter_status.clone(),
            window_s: self.window_s,
            op: Op::from_stored(&self.op),
            threshold: self.threshold,
            min_events: self.min_events,
        }
    }
}

/// Whether a rule is breached right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// No firing incident.
    Ok,
    /// It has an incident in state `firing`.
    Firing,
}

/// An alert rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000a201",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "checkout errors",
    "enabled": true,
    "cooldown_s": 300,
    "renotify_s": 3600,
    "condition": {"kind": "count", "filter": {"event_type": "checkout", "status": "error"},
                  "window_s": 300, "op": "above", "threshold": 10},
    "channels": {"emails": ["ops@example.com"], "webhook_ids": [], "owners": false},
    "state": "ok",
    "last_evaluated_at": "2026-12-02T10:00:00Z",
    "last_observed": 2,
    "created_at": "2026-12-02T09:00:00Z",
    "updated_at": "2026-12-02T09:00:00Z"
}))]
pub struct AlertView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// A disabled rule is not evaluated.
    pub enabled: bool,
    /// Seconds after an incident resolves before the rule may fire again.
    pub cooldown_s: i32,
    /// Seconds between reminders while firing; 0: never.
    pub renotify_s: i32,
    pub condition: Condition,
    pub channels: AlertChannels,
    /// `firing` while the rule has an incident in state `firing`.
    pub state: AlertState,
    /// When a worker last evaluated it; `null` until then.
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// What the last evaluation saw (a count, or a share for `error_ratio`).
    #[serde(serialize_with = "plain_number_option")]
    pub last_observed: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AlertView {
    /// The view of `row`, `firing` when it has a firing incident.
    pub fn new(row: AlertRow, firing: bool) -> Self {
        let condition = row.condition().to_condition();
        Self {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            enabled: row.enabled,
            cooldown_s: row.cooldown_s,
            renotify_s: row.renotify_s,
            condition,
            channels: AlertChannels {
                emails: row.emails,
                webhook_ids: row.webhook_ids,
                owners: row.notify_owners,
            },
            state: if firing { AlertState::Firing } else { AlertState::Ok },
            last_evaluated_at: row.last_evaluated_at,
            last_observed: row.last_observed,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of rules, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub data: Vec<AlertView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    /// The breach goes on (at most one per rule).
    Firing,
    /// It ended, or the rule was disabled or its condition changed.
    Resolved,
}

impl IncidentState {
    /// The stored form (`alert_incidents.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// An incident's stored columns.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_incidents)]
pub struct IncidentRow {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub state: String,
    pub rule_name: String,
    pub kind: String,
    pub op: String,
    pub threshold: f64,
    pub window_s: i32,
    pub observed: f64,
    pub last_observed: f64,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub notifications: i32,
    pub last_notified_at: DateTime<Utc>,
}

/// One breach of a rule, from when it fired until it resolved. `alert_name`, `kind`, `op`,
/// `threshold` and `window_s` are the rule's as it was when it fired.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000a301",
    "alert_id": "0192f0c1-7a3e-7000-8000-00000000a201",
    "alert_name": "checkout errors",
    "state": "resolved",
    "kind": "count",
    "op": "above",
    "threshold": 10,
    "window_s": 300,
    "observed": 14,
    "last_observed": 3,
    "started_at": "2026-12-02T10:00:00Z",
    "resolved_at": "2026-12-02T10:12:30Z",
    "duration_s": 750,
    "notifications": 1,
    "last_notified_at": "2026-12-02T10:00:01Z"
}))]
pub struct IncidentView {
    pub id: Uuid,
    pub alert_id: Uuid,
    pub alert_name: String,
    #[schema(value_type = IncidentState)]
    pub state: String,
    #[schema(value_type = Kind)]
    pub kind: String,
    #[schema(value_type = Op)]
    pub op: String,
    #[serde(serialize_with = "plain_number")]
    pub threshold: f64,
    pub window_s: i32,
    /// The value that breached.
    #[serde(serialize_with = "plain_number")]
    pub observed: f64,
    /// The latest value seen while firing.
    #[serde(serialize_with = "plain_number")]
    pub last_observed: f64,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// `resolved_at` − `started_at` in whole seconds; `null` while firing.
    pub duration_s: Option<i64>,
    /// Notices sent for it: the first, then one per reminder.
    pub notifications: i32,
    pub last_notified_at: DateTime<Utc>,
}

impl From<IncidentRow> for IncidentView {
    fn from(row: IncidentRow) -> Self {
        Self {
            id: row.id,
            alert_id: row.rule_id,
            alert_name: row.rule_name,
            state: row.state,
            kind: row.kind,
            op: row.op,
            threshold: row.threshold,
            window_s: row.window_s,
            observed: row.observed,
            last_observed: row.last_observed,
            started_at: row.started_at,
            resolved_at: row.resolved_at,
            duration_s: row.resolved_at.map(|end| (end - row.started_at).num_seconds()),
            notifications: row.notifications,
            last_notified_at: row.last_notified_at,
        }
    }
}

/// A page of incidents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub data: Vec<IncidentView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
