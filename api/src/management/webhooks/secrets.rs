//! The signing secret of an endpoint: `GET …/webhooks/{webhook_id}/secret` and
//! `POST …/webhooks/{webhook_id}/secret/rotate` (admins only: the secret lets anyone forge
//! deliveries).
//!
//! Rotation starts a new secret at once (Pulse's or the caller's) and keeps the old one as
//! `previous_secret` until `previous_secret_expires_at` = now + the grace period
//! (`grace_period_secs`, default `PULSE_WEBHOOK_SECRET_GRACE_SECS` = 24 h; 0 drops the old one
//! now). Meanwhile every delivery carries both signatures, space separated, so receivers switch
//! without losing a message. Only two secrets sign at a time: rotating again during a grace
//! period drops the older previous secret.

use actix_web::web::{self, Bytes};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::webhooks;
use pulse_shared::webhook::secret::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::rules;
use crate::error::ApiError;
use crate::management::api_keys::MAX_GRACE_SECS;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::json;
use crate::management::{is_unique_violation, ManagementState};

/// The secrets that sign an endpoint's deliveries now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "previous_secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "previous_secret_expires_at": "2026-12-02T10:00:00Z"
}))]
pub struct SecretView {
    pub secret: String,
    /// While a rotation's grace period runs: the old secret, which signs too.
    pub previous_secret: Option<String>,
    /// When `previous_secret` stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl SecretView {
    fn new(secret: String, previous: Option<String>, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match (previous, expires_at) {
            (Some(previous), Some(expires_at)) if expires_at > now => Self {
                secret,
                previous_secret: Some(previous),
                previous_secret_expires_at: Some(expires_at),
            },
            _ => Self {
                secret,
                previous_secret: None,
                previous_secret_expires_at: None,
            },
        }
    }
}

/// `POST …/secret/rotate` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_period_secs": 3600}))]
pub struct RotateSecret {
    /// The new secret (`whsec_` + base64 of 24 to 64 bytes); default: a new random one.
    #[serde(default)]
    pub secret: Option<String>,
    /// How long the old secret keeps signing, 0 to 2592000. Default
    /// `PULSE_WEBHOOK_SECRET_GRACE_SECS`.
    #[serde(default, deserialize_with = "pulse_shared::whole::option")]
    pub grace_period_secs: Option<u64>,
}

type SecretColumns = (String, Option<String>, Option<DateTime<Utc>>);

/// The endpoint's secret (admin), and the previous one while its grace period runs.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/secret",
    operation_id = "webhooks_get_secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    responses(
        (status = 200, description = "The signing secret(s)", body = SecretView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
    )
)]
pub async fn show(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<SecretView>, ApiError> {
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let (secret, previous, expires_at): SecretColumns = webhooks::table
        .filter(webhooks::id.eq(webhook_id))
        .filter(webhooks::project_id.eq(project.id))
        .select((
            webhooks::secret,
            webhooks::previous_secret,
            webhooks::previous_secret_expires_at,
        ))
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("webhook"))?;
    Ok(web::Json(SecretView::new(secret, previous, expires_at, Utc::now())))
}

/// Starts a new signing secret (admin); the old one signs too until the grace period ends.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/secret/rotate",
    operation_id = "webhooks_rotate_secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    request_body(content = Option<RotateSecret>, description = "Optional"),
    responses(
        (status = 200, description = "The new secret, and the old one with when it stops signing (null: it stopped now)", body = SecretView),
        (status = 400, description = "INVALID_FIELD (secret, grace_period_secs), invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
        (status = 409, description = "SECRET_IN_USE: another endpoint has the secret given"),
    )
)]
pub async fn rotate(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Bytes,
) -> Result<web::Json<SecretView>, ApiError> {
    let request: RotateSecret = json::optional_object(&body)?.unwrap_or_default();
    let grace_secs = request
        .grace_period_secs
        .unwrap_or(state.webhooks.secret_grace.as_secs());
    if grace_secs > MAX_GRACE_SECS {
        return Err(ApiError::InvalidField {
            field: "grace_period_secs",
            message: format!("grace_period_secs must be between 0 and {MAX_GRACE_SECS}"),
        });
    }
    let new = match request.secret.as_deref() {
        Some(text) => rules::check_secret(text)?,
        None => Secret::generate(),
    };
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let now = Utc::now();
    let endpoint = webhooks::table
        .filter(webhooks::id.eq(webhook_id))
        .filter(webhooks::project_id.eq(project.id));
    let current: String = endpoint
        .select(webhooks::secret)
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("webhook"))?;
    if current == new.as_str() {
        return Err(ApiError::InvalidField {
            field: "secret",
            message: "the new secret must differ from the current one".into(),
        });
    }
    let grace = i64::try_from(grace_secs)
        .map(ChronoDuration::seconds)
        .unwrap_or_default();
    let keep = grace_secs > 0;
    let updated = diesel::update(endpoint)
        .set((
            webhooks::previous_secret.eq(keep.then_some(current)),
            webhooks::previous_secret_expires_at.eq(keep.then_some(now + grace)),
            webhooks::secret.eq(new.as_str()),
            webhooks::updated_at.eq(now),
        ))
        .returning((
            webhooks::secret,
            webhooks::previous_secret,
            webhooks::previous_secret_expires_at,
        ))
        .get_result::<SecretColumns>(&mut conn)
        .await
        .optional();
    let (secret, previous, expires_at) = match updated {
        Err(error) if is_unique_violation(&error, rules::SECRET_UNIQUE) => return Err(rules::secret_in_use()),
        other => other?.ok_or(ApiError::Missing("webhook"))?,
    };
    tracing::info!(project_id = %project.id, webhook_id = %webhook_id, grace_secs, "Webhook secret rotated");
    Ok(web::Json(SecretView::new(secret, previous, expires_at, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_secret_shows_only_while_its_grace_runs() {
        let now = Utc::now();
        let later = now + ChronoDuration::hours(1);
        let running = SecretView::new("new".into(), Some("old".into()), Some(later), now);
        assert_eq!(running.previous_secret.as_deref(), Some("old"));
        assert_eq!(running.previous_secret_expires_at, Some(later));
        let over = SecretView::new("new".into(), Some("old".into()), Some(now), now);
        assert_eq!((over.previous_secret, over.previous_secret_expires_at), (None, None));
    }
}
