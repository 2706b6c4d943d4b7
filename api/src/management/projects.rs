//! Projects: `GET/POST /v1/projects`, `GET/PATCH/DELETE /v1/projects/{project_id}`.
//!
//! Settings: `retention_days` (1–3650, default 30: how long the scheduler keeps events) and
//! `ingest_rate_limit_per_sec` (requests per second per API key and api replica; `null` means
//! the api default `PULSE_INGEST_RATE_LIMIT_PER_SEC`), and `status_page` (`{"enabled",
//! "slug"}`: the public status page `GET /v1/status/{slug}`, off by default; a slug is
//! `^[a-z0-9][a-z0-9-]{1,62}$`, unique across projects, 409 `SLUG_TAKEN` otherwise; enabling
//! needs one, given or kept from before). Members read; admins create, change and delete.
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
    "ingest_rate_limit_per_sec": null,
    "status_page": {"enabled": false, "slug": null}
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
    /// The public status page.
    pub status_page: StatusPageView,
}

/// A project's public status page: `GET /v1/status/{slug}` while enabled.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"enabled": true, "slug": "acme"}))]
pub struct StatusPageView {
    pub enabled: bool,
    /// `null` until one is set.
    pub slug: Option<String>,
}

/// `status_page` of `PATCH /v1/projects/{project_id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "slug": "acme"}))]
pub struct UpdateStatusPage {
    /// Whether `GET /v1/status/{slug}` answers; enabling needs a slug.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `^[a-z0-9][a-z0-9-]{1,62}$`, unique across projects.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A status page slug: lower-case letters, digits and `-`, 2 to 63, not starting with `-`.
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9-]{1,62}$";

fn check_slug(slug: &str) -> Result<String, ApiError> {
    let mut chars = slug.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && (2..=63).contains(&slug.len()) {
        Ok(slug.to_owned())
    } else {
        Err(ApiError::InvalidField {
            field: "status_page.slug",
            message: format!(
                "status_page.slug must be 2 to 63 lower-case letters, digits and hyphens, not starting with a hyphen ({SLUG_PATTERN})"
            ),
        })
    }
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
            status_page: StatusPageView {
                enabled: row.status_page_enabled,
                slug: row.status_page_slug,
            },
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
#[schema(example = json!({"retention_days": 90, "ingest_rate_limit_per_sec": 1000, "status_page": {"enabled": true, "slug": "acme"}}))]
pub struct UpdateProject {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "whole::option")]
    pub retention_days: Option<i32>,
    #[serde(default, deserialize_with = "whole::present")]
    #[schema(value_type = Option<i32>)]
    pub ingest_rate_limit_per_sec: Option<Option<i32>>,
    /// The public status page's settings.
    #[serde(default)]
    pub status_page: Option<UpdateStatusPage>,
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

fn slug_taken() -> ApiError {
    ApiError::Conflict {
        code: "SLUG_TAKEN",
        message: "another project's status page has this slug".into(),
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
        (status = 400, description = "INVALID_FIELD (name, retention_days, ingest_rate_limit_per_sec, status_page.slug: its pattern, or none when enabling), invalid JSON, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
        (status = 409, description = "NAME_TAKEN, or SLUG_TAKEN: another project's status page has this slug"),
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
    let page_enabled = body.status_page.as_ref().and_then(|page| page.enabled);
    let slug = body
        .status_page
        .as_ref()
        .and_then(|page| page.slug.as_deref())
        .map(check_slug)
        .transpose()?;
    let mut conn = state.conn().await?;
    let (row, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    if page_enabled == Some(true) && slug.is_none() && row.status_page_slug.is_none() {
        return Err(ApiError::InvalidField {
            field: "status_page.slug",
            message: "a status page needs a slug to be enabled: send status_page.slug too".into(),
        });
    }
    let updated = diesel::update(projects::table.find(row.id))
        .set((
            name.map(|name| projects::name.eq(name)),
            retention_days.map(|days| projects::retention_days.eq(days)),
            rate.map(|rate| projects::ingest_rate_limit_per_sec.eq(rate)),
            page_enabled.map(|enabled| projects::status_page_enabled.eq(enabled)),
            slug.map(|slug| projects::status_page_slug.eq(slug)),
        ))
        .returning(ProjectRow::as_returning())
        .get_result(&mut conn)
        .await;
    let row = match updated {
        Err(error) if super::is_unique_violation(&error, "projects_organization_id_name_key") => {
            return Err(name_taken())
        }
        Err(error) if super::is_unique_violation(&error, "projects_status_page_slug_key") => return Err(slug_taken()),
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
