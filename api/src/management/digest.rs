//! The daily digest subscription of the caller: `GET/PUT /v1/projects/{project_id}/digest`.
//! Any member who can read the project turns it on or off for themselves (a row of
//! `digest_subscriptions`, upserted); `enabled` is `false` while there is no row. The digest
//! itself is written by the scheduler's `digest` job (`pulse_shared::digest`, docs/digest.md).

use actix_web::web;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::digest_subscriptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::{require_project, AuthUser, Role};
use super::json::Json;
use super::ManagementState;
use crate::error::ApiError;

/// `PUT /v1/projects/{project_id}/digest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateDigest {
    /// Whether the caller gets the project's daily digest.
    pub enabled: bool,
}

/// The caller's digest subscription of a project.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "project_id": "0192f0c1-7a3e-7000-8000-0000000000a1",
    "enabled": true,
    "updated_at": "2026-12-01T09:00:00.000Z"
}))]
pub struct DigestView {
    pub project_id: Uuid,
    /// `false` when the caller never turned it on.
    pub enabled: bool,
    /// When the caller last changed it; `null` when never.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The caller's digest subscription (any member).
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/digest",
    operation_id = "get",
    tag = "digest",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The caller's subscription", body = DigestView),
        (status = 400, description = "project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<DigestView>, ApiError> {
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let row: Option<(bool, DateTime<Utc>)> = digest_subscriptions::table
        .find((project.id, caller.user_id))
        .select((digest_subscriptions::enabled, digest_subscriptions::updated_at))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(web::Json(DigestView {
        project_id: project.id,
        enabled: row.is_some_and(|(enabled, _)| enabled),
        updated_at: row.map(|(_, updated_at)| updated_at),
    }))
}

/// Turns the caller's daily digest of the project on or off (any member).
#[utoipa::path(
    put,
    path = "/v1/projects/{project_id}/digest",
    operation_id = "update",
    tag = "digest",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = UpdateDigest,
    responses(
        (status = 200, description = "The caller's subscription as it now stands", body = DigestView),
        (status = 400, description = "INVALID_JSON: not an object, `enabled` missing or not a boolean, an unknown field; or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<UpdateDigest>,
) -> Result<web::Json<DigestView>, ApiError> {
    let enabled = body.into_inner().enabled;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let now = Utc::now();
    let (enabled, updated_at): (bool, DateTime<Utc>) = diesel::insert_into(digest_subscriptions::table)
        .values((
            digest_subscriptions::project_id.eq(project.id),
            digest_subscriptions::user_id.eq(caller.user_id),
            digest_subscriptions::enabled.eq(enabled),
            digest_subscriptions::updated_at.eq(now),
        ))
        .on_conflict((digest_subscriptions::project_id, digest_subscriptions::user_id))
        .do_update()
        .set((
            digest_subscriptions::enabled.eq(excluded(digest_subscriptions::enabled)),
            digest_subscriptions::updated_at.eq(excluded(digest_subscriptions::updated_at)),
        ))
        .returning((digest_subscriptions::enabled, digest_subscriptions::updated_at))
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project.id, user_id = %caller.user_id, enabled, "Digest subscription changed");
    Ok(web::Json(DigestView {
        project_id: project.id,
        enabled,
        updated_at: Some(updated_at),
    }))
}
