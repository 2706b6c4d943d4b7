//! Incidents: `GET …/alerts/{alert_id}/incidents` (one rule's) and
//! `GET /v1/projects/{project_id}/incidents` (every rule's of the project). Members read them.
//! Lists page as [`super::page`] says, newest first (by `started_at`), and filter by `state`.
//! The worker writes incidents; the management routes only resolve one when a user disables a
//! rule or changes its condition ([`super::close_firing`]).

use actix_web::web;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::alert_incidents;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::page::IncidentPageRequest;
use super::views::{IncidentPage, IncidentRow, IncidentState, IncidentView};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::ManagementState;

/// The filter and the page of an incident list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListIncidents {
    /// Only incidents in this state (`firing`: what is breached right now).
    pub state: Option<IncidentState>,
    /// Incidents per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Which incidents a list shows: of a project or of one rule, in a state.
struct Selection {
    project: Uuid,
    rule: Option<Uuid>,
    state: Option<IncidentState>,
}

async fn page(
    conn: &mut AsyncPgConnection,
    selection: Selection,
    page: IncidentPageRequest,
) -> Result<IncidentPage, ApiError> {
    let mut select = alert_incidents::table
        .filter(alert_incidents::project_id.eq(selection.project))
        .order((alert_incidents::started_at.desc(), alert_incidents::id.desc()))
        .limit(page.fetch())
        .select(IncidentRow::as_select())
        .into_boxed::<Pg>();
    if let Some(rule) = selection.rule {
        select = select.filter(alert_incidents::rule_id.eq(rule));
    }
    if let Some(state) = selection.state {
        select = select.filter(alert_incidents::state.eq(state.as_str()));
    }
    if let Some((started_at, id)) = page.after {
        select = select.filter(
            alert_incidents::started_at
                .lt(started_at)
                .or(alert_incidents::started_at
                    .eq(started_at)
                    .and(alert_incidents::id.lt(id))),
        );
    }
    let rows: Vec<IncidentRow> = select.load(conn).await?;
    let (rows, next_cursor) = page.finish(rows, |row| -> (DateTime<Utc>, Uuid) { (row.started_at, row.id) });
    Ok(IncidentPage {
        data: rows.into_iter().map(IncidentView::from).collect(),
        next_cursor,
    })
}

/// One rule's incidents, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/alerts/{alert_id}/incidents",
    operation_id = "alerts_list_incidents",
    tag = "alerts",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("alert_id" = Uuid, Path, description = "Rule id"),
        ListIncidents,
    ),
    responses(
        (status = 200, description = "A page of incidents", body = IncidentPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown state or parameter, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such rule in it"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<ListIncidents>,
) -> Result<web::Json<IncidentPage>, ApiError> {
    let request = IncidentPageRequest::new(query.limit, query.cursor.as_deref())?;
    let (project_id, alert_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let rule = super::find(&mut conn, project.id, alert_id, false).await?;
    let selection = Selection {
        project: project.id,
        rule: Some(rule.id),
        state: query.state,
    };
    Ok(web::Json(page(&mut conn, selection, request).await?))
}

/// The incidents of every rule of the project, newest first (`?state=firing`: what is
/// breached right now).
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/incidents",
    operation_id = "alerts_list_project_incidents",
    tag = "alerts",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListIncidents),
    responses(
        (status = 200, description = "A page of incidents", body = IncidentPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown state or parameter, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list_project(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    query: web::Query<ListIncidents>,
) -> Result<web::Json<IncidentPage>, ApiError> {
    let request = IncidentPageRequest::new(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let selection = Selection {
        project: project.id,
        rule: None,
        state: query.state,
    };
    Ok(web::Json(page(&mut conn, selection, request).await?))
}
