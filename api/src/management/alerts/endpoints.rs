//! Alert rules: `GET/POST /v1/projects/{project_id}/alerts` and
//! `GET/PATCH/DELETE …/alerts/{alert_id}`. Members read; admins create, change and delete.
//!
//! The fields and their rules are in [`super::rules`]. A creation and every PATCH set
//! `next_evaluation_at` and `updated_at` to now, so a worker evaluates the rule as it now
//! stands at its next round. A PATCH is partial: any top-level field, and `condition` and
//! `channels` are replaced whole when given. A PATCH with `enabled: false`, or one that
//! changes the condition, resolves the rule's firing incident in the same transaction,
//! without notices: what fired is no longer watched as it was, and an incident still breached
//! under the new condition opens afresh (with its notice) at the next evaluation. Deleting a
//! rule deletes its incidents.

use actix_web::{web, HttpResponse};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use pulse_shared::schema::{alert_incidents, alert_rules};
use pulse_shared::whole;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::rules::{self, AlertChannels, Condition, StoredCondition};
use super::views::{AlertPage, AlertRow, AlertView, IncidentState};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::fields::check_name;
use crate::management::json::Json;
use crate::management::webhooks::page::PageRequest;
use crate::management::ManagementState;

/// `POST /v1/projects/{project_id}/alerts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "checkout errors",
    "enabled": true,
    "cooldown_s": 300,
    "renotify_s": 3600,
    "condition": {"kind": "count", "filter": {"event_type": "checkout", "status": "error"},
                  "window_s": 300, "op": "above", "threshold": 10},
    "channels": {"emails": ["ops@example.com"], "webhook_ids": [], "owners": false}
}))]
pub struct CreateAlert {
    /// 1 to 200 characters after trimming.
    pub name: String,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Default 300.
    #[serde(default, deserialize_with = "whole::option")]
    pub cooldown_s: Option<i64>,
    /// Default 0 (never).
    #[serde(default, deserialize_with = "whole::option")]
    pub renotify_s: Option<i64>,
    pub condition: Condition,
    /// Default: no addresses, no endpoints, not the owners.
    #[serde(default)]
    pub channels: Option<AlertChannels>,
}

/// `PATCH …/alerts/{alert_id}`: the fields to change; `condition` and `channels` are replaced
/// whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateAlert {
    #[serde(default)]
    pub name: Option<String>,
    /// `false` also resolves a firing incident (without notices).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "whole::option")]
    pub cooldown_s: Option<i64>,
    #[serde(default, deserialize_with = "whole::option")]
    pub renotify_s: Option<i64>,
    /// A different condition also resolves a firing incident (without notices).
    #[serde(default)]
    pub condition: Option<Condition>,
    #[serde(default)]
    pub channels: Option<AlertChannels>,
}

/// `GET /v1/projects/{project_id}/alerts`: the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAlerts {
    /// Rules per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The columns a condition is stored in, as a changeset or insert values.
type ConditionColumns = (
    diesel::dsl::Eq<alert_rules::kind, &'static str>,
    diesel::dsl::Eq<alert_rules::filter_event_type, Option<String>>,
    diesel::dsl::Eq<alert_rules::filter_source, Option<String>>,
    diesel::dsl::Eq<alert_rules::filter_status, Option<String>>,
    diesel::dsl::Eq<alert_rules::window_s, i32>,
    diesel::dsl::Eq<alert_rules::op, &'static str>,
    diesel::dsl::Eq<alert_rules::threshold, f64>,
    diesel::dsl::Eq<alert_rules::min_events, i32>,
);

fn condition_columns(condition: StoredCondition) -> ConditionColumns {
    (
        alert_rules::kind.eq(condition.kind.as_str()),
        alert_rules::filter_event_type.eq(condition.filter_event_type),
        alert_rules::filter_source.eq(condition.filter_source),
        alert_rules::filter_status.eq(condition.filter_status),
        alert_rules::window_s.eq(condition.window_s),
        alert_rules::op.eq(condition.op.as_str()),
        alert_rules::threshold.eq(condition.threshold),
        alert_rules::min_events.eq(condition.min_events),
    )
}

/// Creates a rule (admin).
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/alerts",
    tag = "alerts",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateAlert,
    responses(
        (status = 201, description = "Created; evaluated at the workers' next round", body = AlertView),
        (status = 400, description = "INVALID_FIELD (details.field: name, cooldown_s, renotify_s, condition.window_s, condition.op, condition.threshold, condition.min_events, condition.filter.*, channels.emails, channels.webhook_ids: not an endpoint of this project), invalid JSON (an unknown kind or field, a missing one), or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<CreateAlert>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name("name", &body.name)?;
    let cooldown_s = rules::check_cooldown(body.cooldown_s.unwrap_or(rules::DEFAULT_COOLDOWN_S))?;
    let renotify_s = rules::check_renotify(body.renotify_s.unwrap_or(0))?;
    let condition = rules::check_condition(body.condition)?;
    let channels = rules::check_channels(body.channels.unwrap_or_default())?;
    let enabled = body.enabled.unwrap_or(true);
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    rules::check_webhooks(&mut conn, project.id, &channels.webhook_ids).await?;
    // next_evaluation_at, created_at and updated_at: the columns' default, now().
    let row: AlertRow = diesel::insert_into(alert_rules::table)
        .values((
            alert_rules::id.eq(Uuid::now_v7()),
            alert_rules::project_id.eq(project.id),
            alert_rules::name.eq(&name),
            alert_rules::enabled.eq(enabled),
            condition_columns(condition),
            alert_rules::cooldown_s.eq(cooldown_s),
            alert_rules::renotify_s.eq(renotify_s),
            alert_rules::emails.eq(&channels.emails),
            alert_rules::webhook_ids.eq(&channels.webhook_ids),
            alert_rules::notify_owners.eq(channels.owners),
        ))
        .returning(AlertRow::as_returning())
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project.id, alert_id = %row.id, kind = %row.kind, "Alert rule created");
    Ok(HttpResponse::Created().json(AlertView::new(row, false)))
}

/// The project's rules, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/alerts",
    tag = "alerts",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListAlerts),
    responses(
        (status = 200, description = "A page of rules", body = AlertPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown parameter, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    query: web::Query<ListAlerts>,
) -> Result<web::Json<AlertPage>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    // At most one firing incident per rule (a unique index), so the join never repeats a rule.
    let mut select = alert_rules::table
        .left_join(
            alert_incidents::table.on(alert_incidents::rule_id
                .eq(alert_rules::id)
                .and(alert_incidents::state.eq(IncidentState::Firing.as_str()))),
        )
        .filter(alert_rules::project_id.eq(project.id))
        .order(alert_rules::id.desc())
        .limit(page.fetch())
        .select((AlertRow::as_select(), alert_incidents::id.nullable()))
        .into_boxed::<Pg>();
    if let Some(before) = page.before {
        select = select.filter(alert_rules::id.lt(before));
    }
    let rows: Vec<(AlertRow, Option<Uuid>)> = select.load(&mut conn).await?;
    let (rows, next_cursor) = page.finish(rows, |(row, _)| row.id);
    Ok(web::Json(AlertPage {
        data: rows
            .into_iter()
            .map(|(row, firing)| AlertView::new(row, firing.is_some()))
            .collect(),
        next_cursor,
    }))
}

/// One rule.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/alerts/{alert_id}",
    tag = "alerts",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("alert_id" = Uuid, Path, description = "Rule id"),
    ),
    responses(
        (status = 200, description = "The rule", body = AlertView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such rule in it"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<AlertView>, ApiError> {
    let (project_id, alert_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let row = super::find(&mut conn, project.id, alert_id, false).await?;
    let firing = super::is_firing(&mut conn, row.id).await?;
    Ok(web::Json(AlertView::new(row, firing)))
}

/// Changes a rule (admin).
#[utoipa::path(
    patch,
    path = "/v1/projects/{project_id}/alerts/{alert_id}",
    tag = "alerts",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("alert_id" = Uuid, Path, description = "Rule id"),
    ),
    request_body = UpdateAlert,
    responses(
        (status = 200, description = "The updated rule; evaluated afresh at the workers' next round", body = AlertView),
        (status = 400, description = "INVALID_FIELD (details.field, as for creation), an unknown field, invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such rule in it"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateAlert>,
) -> Result<web::Json<AlertView>, ApiError> {
    let body = body.into_inner();
    let name = body.name.as_deref().map(|name| check_name("name", name)).transpose()?;
    let cooldown_s = body.cooldown_s.map(rules::check_cooldown).transpose()?;
    let renotify_s = body.renotify_s.map(rules::check_renotify).transpose()?;
    let condition = body.condition.map(rules::check_condition).transpose()?;
    let channels = body.channels.map(rules::check_channels).transpose()?;
    let enabled = body.enabled;
    let (project_id, alert_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let (row, resolved, firing) = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                let current = super::find(conn, project.id, alert_id, true).await?;
                if let Some(channels) = &channels {
                    rules::check_webhooks(conn, project.id, &channels.webhook_ids).await?;
                }
                let changed = condition.as_ref().is_some_and(|new| *new != current.condition());
                let row: AlertRow = diesel::update(alert_rules::table.find(current.id))
                    .set((
                        name.map(|name| alert_rules::name.eq(name)),
                        enabled.map(|enabled| alert_rules::enabled.eq(enabled)),
                        cooldown_s.map(|cooldown| alert_rules::cooldown_s.eq(cooldown)),
                        renotify_s.map(|renotify| alert_rules::renotify_s.eq(renotify)),
                        condition.map(condition_columns),
                        channels.map(|channels| {
                            (
                                alert_rules::emails.eq(channels.emails),
                                alert_rules::webhook_ids.eq(channels.webhook_ids),
                                alert_rules::notify_owners.eq(channels.owners),
                            )
                        }),
                        alert_rules::next_evaluation_at.eq(diesel::dsl::now),
                        alert_rules::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(AlertRow::as_returning())
                    .get_result(conn)
                    .await?;
                let resolved = if enabled == Some(false) || changed {
                    super::close_firing(conn, row.id).await?
                } else {
                    false
                };
                let firing = super::is_firing(conn, row.id).await?;
                Ok((row, resolved, firing))
            }
            .scope_boxed()
        })
        .await?;
    tracing::info!(
        project_id = %project.id,
        alert_id = %row.id,
        enabled = row.enabled,
        incident_resolved = resolved,
        "Alert rule updated"
    );
    Ok(web::Json(AlertView::new(row, firing)))
}

/// Deletes a rule (admin) with its incidents.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project_id}/alerts/{alert_id}",
    tag = "alerts",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("alert_id" = Uuid, Path, description = "Rule id"),
    ),
    responses(
        (status = 204, description = "Deleted, with its incidents"),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such rule in it"),
    )
)]
pub async fn delete(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, alert_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let deleted = diesel::delete(
        alert_rules::table
            .filter(alert_rules::id.eq(alert_id))
            .filter(alert_rules::project_id.eq(project.id)),
    )
    .execute(&mut conn)
    .await?;
    if deleted == 0 {
        return Err(ApiError::Missing("alert rule"));
    }
    tracing::info!(project_id = %project.id, alert_id = %alert_id, "Alert rule deleted");
    Ok(HttpResponse::NoContent().finish())
}
