//! Projects: `GET/POST /v1/projects`, `GET/PATCH/DELETE /v1/projects/{project_id}`.
//!
//! Settings: `retention_days` (1–3650, default 30: how long the scheduler keeps events) and
//! `ingest_rate_limit_per_sec` (requests per second per API key and api replica; `null` means
//! the api default `PULSE_INGEST_RATE_LIMIT_PER_SEC`). Members read; admins create, change and
//! delete.
//!
//! Deleting a project, in one transaction: the project is marked deleted (invisible to every
//! route at once, its name freed for reuse) and all its keys are revoked. The ingest key cache
//! of this replica forgets them at once; other replicas stop accepting them within
//! `PULSE_API_KEY_CACHE_TTL_SECS`. Its events and everything else it owns are then removed in
//! bounded batches by [`super::purge`].

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use pulse_shared::whole;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::authorization::{require_org, require_project, AuthUser, ProjectRow, Role};
use super::fields::check_name;
use super::json::Json;
use super::{tenancy, ManagementState};
use crate::error::ApiError;
use pulse_shared::schema::{memberships, organizations, projects};

/// Default `retention_days` (the column default).
pub const DEFAULT_RETENTION_DAYS: i32 = 30;
pub const MAX_RETENTION_DAYS: i32 = 3650;
pub const MAX_RATE_LIMIT: i32 = 1_000_000;

/// A project.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "organization_id": "0192f0c1-7a3e-7000-8000-00000000b001",
    "name": "checkout",
    "created_at": "2026-11-23T10:00:00Z",
    "retention_days": 30,
    "ingest_rate_limit_per_sec": null
}))]
pub struct ProjectView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Days events are kept.
    pub retention_days: i32,
    /// Ingest requests per second per API key and replica; `null`: the api default.
    pub ingest_rate_limit_per_sec: Option<i32>,
}

impl From<ProjectRow> for ProjectView {
    fn from(row: ProjectRow) -> Self {
        Self {
            id: row.id,
            organization_id: row.organization_id,
            name: row.name,
            created_at: row.created_at,
            retention_days: row.retention_days,
            ingest_rate_limit_per_sec: row.ingest_rate_limit_per_sec,
        }
    }
}

/// `POST /v1/projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"organization_id": "0192f0c1-7a3e-7000-8000-00000000b001", "name": "checkout", "retention_days": 30, "ingest_rate_limit_per_sec": 500}))]
pub struct CreateProject {
    pub organization_id: Uuid,
    pub name: String,
    #[serde(default, deserialize_with = "whole::option")]
    pub retention_days: Option<i32>,
    #[serde(default, deserialize_with = "whole::option")]
    pub ingest_rate_limit_per_sec: Option<i32>,
}

/// `PATCH /v1/projects/{project_id}`: fields to change; `"ingest_rate_limit_per_sec": null`
/// returns to the api default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"retention_days": 90, "ingest_rate_limit_per_sec": 1000}))]
pub struct UpdateProject {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "whole::option")]
    pub retention_days: Option<i32>,
    #[serde(default, deserialize_with = "whole::present")]
    #[schema(value_type = Option<i32>)]
    pub ingest_rate_limit_per_sec: Option<Option<i32>>,
}

/// `GET /v1/projects` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListProjects {
    /// Only this organization's projects.
    pub organization_id: Option<Uuid>,
}

fn check_retention(days: i32) -> Result<i32, ApiError> {
    if (1..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(ApiError::InvalidField {
            field: "retention_days",
            message: format!("retention_days must be between 1 and {MAX_RETENTION_DAYS}"),
        })
    }
}

fn check_rate(limit: i32) -> Result<i32, ApiError> {
    if (1..=MAX_RATE_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::InvalidField {
            field: "ingest_rate_limit_per_sec",
            message: format!(
                "ingest_rate_limit_per_sec must be between 1 and {MAX_RATE_LIMIT}, or null for the default"
            ),
        })
    }
}

fn name_taken() -> ApiError {
    ApiError::Conflict {
        code: "NAME_TAKEN",
        message: "the organization already has a project with this name".into(),
    }
}

/// The projects of the caller's organizations.
#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    security(("bearer" = [])),
    params(ListProjects),
    responses(
        (status = 200, description = "Projects, oldest first", body = [ProjectView]),
        (status = 400, description = "organization_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "organization_id is not one of the caller's organizations"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    query: web::Query<ListProjects>,
) -> Result<web::Json<Vec<ProjectView>>, ApiError> {
    let mut conn = state.conn().await?;
    let mut select = projects::table
        .inner_join(organizations::table)
        .inner_join(
            memberships::table.on(memberships::organization_id
                .eq(projects::organization_id)
                .and(memberships::user_id.eq(caller.user_id))),
        )
        .filter(projects::deleted_at.is_null())
        .filter(organizations::deleted_at.is_null())
        .order((projects::created_at.asc(), projects::id.asc()))
        .select(ProjectRow::as_select())
        .into_boxed();
    if let Some(organization) = query.organization_id {
        require_org(&mut conn, caller.user_id, organization, Role::Member).await?;
        select = select.filter(projects::organization_id.eq(organization));
    }
    let rows: Vec<ProjectRow> = select.load(&mut conn).await?;
    Ok(web::Json(rows.into_iter().map(ProjectView::from).collect()))
}

/// Creates a project in one of the caller's organizations (admin).
#[utoipa::path(
    post,
    path = "/v1/projects",
    tag = "projects",
    security(("bearer" = [])),
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectView),
        (status = 400, description = "INVALID_FIELD or invalid JSON"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member of the organization but not an admin"),
        (status = 404, description = "organization_id is not one of the caller's organizations"),
        (status = 409, description = "NAME_TAKEN: the organization has a project with this name"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    body: Json<CreateProject>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name("name", &body.name)?;
    let retention_days = check_retention(body.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS))?;
    let rate = body.ingest_rate_limit_per_sec.map(check_rate).transpose()?;
    let mut conn = state.conn().await?;
    require_org(&mut conn, caller.user_id, body.organization_id, Role::Admin).await?;
    let organization = body.organization_id;
    let threshold = state.default_error_threshold;
    let row = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                let inserted = diesel::insert_into(projects::table)
                    .values((
                        projects::id.eq(Uuid::now_v7()),
                        projects::organization_id.eq(organization),
                        projects::name.eq(&name),
                        projects::retention_days.eq(retention_days),
                        projects::ingest_rate_limit_per_sec.eq(rate),
                    ))
                    .returning(ProjectRow::as_returning())
                    .get_result(conn)
                    .await;
                let row = match inserted {
                    Err(error) if super::is_unique_violation(&error, "projects_organization_id_name_key") => {
                        return Err(name_taken())
                    }
                    other => other?,
                };
                super::alerts::insert_default(conn, row.id, threshold).await?;
                Ok(row)
            }
            .scope_boxed()
        })
        .await?;
    tracing::info!(project_id = %row.id, organization_id = %row.organization_id, "Project created");
    Ok(HttpResponse::Created().json(ProjectView::from(row)))
}

/// One project.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}",
    tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        (status = 400, description = "project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<ProjectView>, ApiError> {
    let mut conn = state.conn().await?;
    let (row, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    Ok(web::Json(row.into()))
}

/// Changes a project's name or settings (admin).
#[utoipa::path(
    patch,
    path = "/v1/projects/{project_id}",
    tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = UpdateProject,
    responses(
        (status = 200, description = "The updated project (a new rate limit applies to cached keys within PULSE_API_KEY_CACHE_TTL_SECS)", body = ProjectView),
        (status = 400, description = "INVALID_FIELD, invalid JSON, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
        (status = 409, description = "NAME_TAKEN"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<UpdateProject>,
) -> Result<web::Json<ProjectView>, ApiError> {
    let body = body.into_inner();
    let name = body.name.as_deref().map(|name| check_name("name", name)).transpose()?;
    let retention_days = body.retention_days.map(check_retention).transpose()?;
    let rate = body
        .ingest_rate_limit_per_sec
        .map(|limit| limit.map(check_rate).transpose())
        .transpose()?;
    let mut conn = state.conn().await?;
    let (row, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    let updated = diesel::update(projects::table.find(row.id))
        .set((
            name.map(|name| projects::name.eq(name)),
            retention_days.map(|days| projects::retention_days.eq(days)),
            rate.map(|rate| projects::ingest_rate_limit_per_sec.eq(rate)),
        ))
        .returning(ProjectRow::as_returning())
        .get_result(&mut conn)
        .await;
    let row = match updated {
        Err(error) if super::is_unique_violation(&error, "projects_organization_id_name_key") => {
            return Err(name_taken())
        }
        // Nothing to change: diesel refuses an empty SET.
        Err(diesel::result::Error::QueryBuilderError(_)) => row,
        other => other?,
    };
    Ok(web::Json(row.into()))
}

/// Deletes a project (admin): keys stop at once, events are purged in the background.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project_id}",
    tag = "projects",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted: its keys are revoked, its events are being purged"),
        (status = 400, description = "project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn delete(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.conn().await?;
    let (row, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    let project = row.id;
    let hashes = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move { tenancy::mark_deleted(conn, &[project]).await }.scope_boxed()
        })
        .await?;
    state.evict_keys(&hashes).await;
    tracing::info!(project_id = %project, keys_revoked = hashes.len(), "Project deleted; purge pending");
    Ok(HttpResponse::NoContent().finish())
}
