//! API keys of a project: `GET/POST /v1/projects/{project_id}/api-keys`,
//! `DELETE .../api-keys/{key_id}` (revoke) and `POST .../api-keys/{key_id}/rotate`.
//!
//! A key is `pk_` + 43 characters (`pulse_shared::keys`), shown once when created; only its
//! SHA-256 is stored, with an 11-character prefix to tell keys apart. Scopes: `ingest` (send
//! events) and `read` (read them back); a key without `ingest` is refused by the ingest routes
//! (403). Keys may expire (`expires_at`).
//!
//! Revocation and expiry reach the ingest path through its key cache: this replica forgets a
//! revoked key at once; every other replica within `PULSE_API_KEY_CACHE_TTL_SECS` (30 s by
//! default). `expires_at` is checked on every request, cached or not.
//!
//! Rotation creates a new key with the same name, scopes and expiry, pointing at the old one
//! (`rotated_from`), and makes the old key expire at the end of a grace period
//! (`grace_period_secs`, default `PULSE_API_KEY_ROTATION_GRACE_SECS` = 24 h; 0 revokes it now),
//! so producers can switch without losing events. Members list keys; admins create, revoke and
//! rotate them.

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::{require_project, AuthUser, Role};
use super::fields::check_name;
use super::json::{self, Json};
use super::ManagementState;
use crate::error::ApiError;
use pulse_shared::keys;
use pulse_shared::schema::api_keys;

/// The scopes a key can hold.
pub const SCOPES: [&str; 2] = ["ingest", "read"];
/// Longest grace period of a rotation (30 days).
pub const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

/// A key as listed (never the key itself).
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = api_keys)]
#[schema(example = json!({
    "id": "0192f0c1-7a3e-7000-8000-00000000d001",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "web",
    "prefix": "pk_3fJ9a0Qx",
    "scopes": ["ingest"],
    "created_at": "2026-11-23T10:00:00Z",
    "last_used_at": "2026-11-23T10:02:00Z",
    "expires_at": null,
    "revoked_at": null,
    "rotated_from": null
}))]
pub struct KeyView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// The key's first 11 characters.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Last use by ingest, written at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when it was made by a rotation.
    pub rotated_from: Option<Uuid>,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "key": "pk_3fJ9a0QxV1m2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q",
    "id": "0192f0c1-7a3e-7000-8000-00000000d001",
    "project_id": "0192f0c1-7a3e-7000-8000-00000000c001",
    "name": "web",
    "prefix": "pk_3fJ9a0Qx",
    "scopes": ["ingest"],
    "created_at": "2026-11-23T10:00:00Z",
    "last_used_at": null,
    "expires_at": null,
    "revoked_at": null,
    "rotated_from": null
}))]
pub struct CreatedKey {
    /// The whole key. It is not stored and cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyView,
    /// For a rotation: when the replaced key stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_key_expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/projects/{project_id}/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "web", "scopes": ["ingest"], "expires_at": "2027-01-01T00:00:00Z"}))]
pub struct CreateKey {
    /// Default `default`.
    #[serde(default)]
    pub name: Option<String>,
    /// Default `["ingest"]`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// When the key stops working; must be in the future. Default: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST .../api-keys/{key_id}/rotate` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_period_secs": 3600}))]
pub struct RotateKey {
    /// How long the old key keeps working (0 to 2592000). Default
    /// `PULSE_API_KEY_ROTATION_GRACE_SECS`.
    #[serde(default, deserialize_with = "pulse_shared::whole::option")]
    pub grace_period_secs: Option<u64>,
}

/// name, scopes, hash, expiry, revocation of the key being rotated.
type RotatedRow = (
    String,
    Vec<String>,
    Vec<u8>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn check_scopes(scopes: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let Some(requested) = scopes else {
        return Ok(vec!["ingest".to_owned()]);
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested {
        if !SCOPES.contains(&scope.as_str()) {
            return Err(ApiError::InvalidField {
                field: "scopes",
                message: format!("unknown scope {scope:?}: scopes are \"ingest\" and \"read\""),
            });
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::InvalidField {
            field: "scopes",
            message: "a key needs at least one scope".into(),
        });
    }
    Ok(scopes)
}

/// The project's keys, newest first, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "Keys (never the keys themselves)", body = [KeyView]),
        (status = 400, description = "project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let keys: Vec<KeyView> = api_keys::table
        .filter(api_keys::project_id.eq(project.id))
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(KeyView::as_select())
        .load(&mut conn)
        .await?;
    Ok(web::Json(keys))
}

/// Creates a key (admin); the answer is the only time the key is shown.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = CreatedKey),
        (status = 400, description = "INVALID_FIELD (scopes, name, expires_at in the past), invalid JSON, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = match body.name.as_deref() {
        Some(name) => check_name("name", name)?,
        None => "default".to_owned(),
    };
    let scopes = check_scopes(body.scopes)?;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::InvalidField {
            field: "expires_at",
            message: "expires_at must be in the future".into(),
        });
    }
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    let generated = keys::generate();
    let details: KeyView = diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(Uuid::now_v7()),
            api_keys::project_id.eq(project.id),
            api_keys::name.eq(&name),
            api_keys::prefix.eq(&generated.prefix),
            api_keys::key_hash.eq(&generated.hash),
            api_keys::scopes.eq(&scopes),
            api_keys::expires_at.eq(body.expires_at),
        ))
        .returning(KeyView::as_returning())
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project.id, key_id = %details.id, prefix = %details.prefix, "API key created");
    Ok(HttpResponse::Created().json(CreatedKey {
        key: generated.plain,
        details,
        old_key_expires_at: None,
    }))
}

/// Revokes a key (admin). Idempotent.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project_id}/api-keys/{key_id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("key_id" = Uuid, Path, description = "Key id"),
    ),
    responses(
        (status = 204, description = "Revoked: refused by this replica at once, by every replica within PULSE_API_KEY_CACHE_TTL_SECS"),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such key in it"),
    )
)]
pub async fn revoke(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, key_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let hash: Vec<u8> = api_keys::table
        .filter(api_keys::id.eq(key_id))
        .filter(api_keys::project_id.eq(project.id))
        .select(api_keys::key_hash)
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("API key"))?;
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(key_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(diesel::dsl::now))
    .execute(&mut conn)
    .await?;
    state.evict_keys(&[hash]).await;
    tracing::info!(project_id = %project.id, key_id = %key_id, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces a key (admin): a new key now, the old one until the grace period ends.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/api-keys/{key_id}/rotate",
    tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("key_id" = Uuid, Path, description = "The key to replace"),
    ),
    request_body(content = Option<RotateKey>, description = "Optional"),
    responses(
        (status = 201, description = "The new key (shown only now) and when the old one stops", body = CreatedKey),
        (status = 400, description = "INVALID_FIELD (grace_period_secs), invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such key in it"),
        (status = 409, description = "KEY_INACTIVE: the key is revoked or expired"),
    )
)]
pub async fn rotate(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: RotateKey = json::optional_object(&body)?.unwrap_or_default();
    let grace_secs = request.grace_period_secs.unwrap_or(state.rotation_grace.as_secs());
    if grace_secs > MAX_GRACE_SECS {
        return Err(ApiError::InvalidField {
            field: "grace_period_secs",
            message: format!("grace_period_secs must be between 0 and {MAX_GRACE_SECS}"),
        });
    }
    let (project_id, key_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let generated = keys::generate();
    let (created, old_hash, old_expires_at) = conn
        .transaction::<_, ApiError, _>(|conn| {
            let generated = &generated;
            async move {
                let old: RotatedRow = api_keys::table
                    .filter(api_keys::id.eq(key_id))
                    .filter(api_keys::project_id.eq(project.id))
                    .select((
                        api_keys::name,
                        api_keys::scopes,
                        api_keys::key_hash,
                        api_keys::expires_at,
                        api_keys::revoked_at,
                    ))
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or(ApiError::Missing("API key"))?;
                let (name, scopes, old_hash, expires_at, revoked_at) = old;
                let now = Utc::now();
                if revoked_at.is_some() || expires_at.is_some_and(|at| at <= now) {
                    return Err(ApiError::Conflict {
                        code: "KEY_INACTIVE",
                        message: "this key is revoked or expired; create a new one instead".into(),
                    });
                }
                let grace = ChronoDuration::seconds(i64::try_from(grace_secs).unwrap_or(0));
                let old_expires_at = expires_at.map_or(now + grace, |at| at.min(now + grace));
                let created: KeyView = diesel::insert_into(api_keys::table)
                    .values((
                        api_keys::id.eq(Uuid::now_v7()),
                        api_keys::project_id.eq(project.id),
                        api_keys::name.eq(&name),
                        api_keys::prefix.eq(&generated.prefix),
                        api_keys::key_hash.eq(&generated.hash),
                        api_keys::scopes.eq(&scopes),
                        api_keys::expires_at.eq(expires_at),
                        api_keys::rotated_from.eq(Some(key_id)),
                    ))
                    .returning(KeyView::as_returning())
                    .get_result(conn)
                    .await?;
                if grace_secs == 0 {
                    diesel::update(api_keys::table.find(key_id))
                        .set(api_keys::revoked_at.eq(now))
                        .execute(conn)
                        .await?;
                } else {
                    diesel::update(api_keys::table.find(key_id))
                        .set(api_keys::expires_at.eq(old_expires_at))
                        .execute(conn)
                        .await?;
                }
                Ok((created, old_hash, old_expires_at))
            }
            .scope_boxed()
        })
        .await?;
    // The cached record holds the old expiry: forget it so the new one applies here at once.
    state.evict_keys(&[old_hash]).await;
    tracing::info!(project_id = %project.id, old_key_id = %key_id, key_id = %created.id, "API key rotated");
    Ok(HttpResponse::Created().json(CreatedKey {
        key: generated.plain,
        details: created,
        old_key_expires_at: Some(old_expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_default_dedupe_and_refuse_unknown() {
        assert_eq!(check_scopes(None).expect("default"), vec!["ingest"]);
        assert_eq!(
            check_scopes(Some(vec!["read".into(), "ingest".into(), "read".into()])).expect("valid"),
            vec!["read", "ingest"]
        );
        assert!(check_scopes(Some(vec![])).is_err());
        assert!(check_scopes(Some(vec!["admin".into()])).is_err());
    }
}
