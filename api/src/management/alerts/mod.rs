//! Alert rules of a project and their incidents: the management side of issue 13. The notify
//! worker (`pulse-worker notify`) evaluates enabled rules when `next_evaluation_at` is due,
//! opens an incident on a breach (one firing incident per rule), writes the notices to the
//! channels, and resolves the incident when the breach ends; these routes manage the rules
//! and show the incidents. The user guide is docs/management.md ("Alert rules").
//!
//! Modules, one job each: [`endpoints`] (create, list, read, change, delete rules),
//! [`incidents`] (a rule's incidents, and all of a project's), [`rules`] (the request shape
//! and the field checks), [`schema`] (the OpenAPI schema of a condition and the bodies'
//! bounds), [`views`] (a rule and an incident as the routes show them), [`page`] (the incident
//! cursor; the rule list pages like the webhook lists).
//!
//! Roles: members read rules and incidents; admins (and owners) create, change and delete
//! rules. A rule of a project the caller cannot see is 404, like the project.
//!
//! Every project gets a default rule ([`insert_default`]) in the transaction that creates it.

pub(crate) mod endpoints;
pub(crate) mod incidents;
pub(crate) mod page;
pub(crate) mod rules;
pub(crate) mod schema;
pub(crate) mod views;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{alert_incidents, alert_rules};
use uuid::Uuid;

use self::rules::{Kind, Op, DEFAULT_COOLDOWN_S};
use self::views::{AlertRow, IncidentState};
use crate::error::ApiError;

/// Name of the rule every new project starts with.
pub const DEFAULT_RULE_NAME: &str = "Errors";
/// Window of the default rule, in seconds.
pub const DEFAULT_RULE_WINDOW_S: i32 = 300;

/// Gives a new project its default rule: more than `threshold` events with status `error` in
/// 5 minutes (`PULSE_ALERT_ERROR_THRESHOLD`), mailed to the owners of its organization, with a
/// cooldown of 5 minutes and no reminders. Run it in the transaction that creates the project.
pub async fn insert_default(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    threshold: u32,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(alert_rules::table)
        .values((
            alert_rules::id.eq(Uuid::now_v7()),
            alert_rules::project_id.eq(project),
            alert_rules::name.eq(DEFAULT_RULE_NAME),
            alert_rules::enabled.eq(true),
            alert_rules::kind.eq(Kind::Count.as_str()),
            alert_rules::filter_status.eq("error"),
            alert_rules::window_s.eq(DEFAULT_RULE_WINDOW_S),
            alert_rules::op.eq(Op::Above.as_str()),
            alert_rules::threshold.eq(f64::from(threshold)),
            alert_rules::min_events.eq(0),
            alert_rules::cooldown_s.eq(DEFAULT_COOLDOWN_S as i32),
            alert_rules::renotify_s.eq(0),
            alert_rules::notify_owners.eq(true),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The rule `alert` of `project`, or 404; `FOR UPDATE` when `lock`, so a change and an
/// evaluation of the same rule take turns.
pub async fn find(conn: &mut AsyncPgConnection, project: Uuid, alert: Uuid, lock: bool) -> Result<AlertRow, ApiError> {
    let select = alert_rules::table
        .filter(alert_rules::id.eq(alert))
        .filter(alert_rules::project_id.eq(project))
        .select(AlertRow::as_select());
    let found = if lock {
        select.for_update().first(conn).await.optional()?
    } else {
        select.first(conn).await.optional()?
    };
    found.ok_or(ApiError::Missing("alert rule"))
}

/// Whether the rule has a firing incident.
pub async fn is_firing(conn: &mut AsyncPgConnection, rule: Uuid) -> Result<bool, ApiError> {
    let firing = diesel::select(diesel::dsl::exists(
        alert_incidents::table
            .filter(alert_incidents::rule_id.eq(rule))
            .filter(alert_incidents::state.eq(IncidentState::Firing.as_str())),
    ))
    .get_result(conn)
    .await?;
    Ok(firing)
}

/// Resolves the rule's firing incident, if any, now, without notices (a rule disabled or
/// changed by a user: the breach as it was defined is no longer watched). Returns whether
/// there was one.
pub async fn close_firing(conn: &mut AsyncPgConnection, rule: Uuid) -> Result<bool, ApiError> {
    let closed = diesel::update(
        alert_incidents::table
            .filter(alert_incidents::rule_id.eq(rule))
            .filter(alert_incidents::state.eq(IncidentState::Firing.as_str())),
    )
    .set((
        alert_incidents::state.eq(IncidentState::Resolved.as_str()),
        alert_incidents::resolved_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(closed > 0)
}
