//! The caller's own account: `GET`, `PATCH` and `DELETE /v1/users/me`.
//!
//! Deleting an account: organizations where the caller is the only member are deleted with
//! their projects (keys revoked at once, events purged in the background); an organization
//! where the caller is the last owner but not the only member blocks the deletion (409
//! `LAST_OWNER`: promote another owner first). Memberships and sessions go with the account.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::{AuthUser, Role};
use super::fields::{check_name, normalize_email};
use super::json::Json;
use super::views::{self, UserView};
use super::{tenancy, ManagementState};
use crate::error::ApiError;
use pulse_shared::schema::{memberships, organizations, users};

/// `PATCH /v1/users/me`: fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace"}))]
pub struct UpdateMe {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "Missing, invalid or expired access token, or the account was deleted"),
    )
)]
pub async fn me(caller: AuthUser, state: web::Data<ManagementState>) -> Result<web::Json<UserView>, ApiError> {
    let mut conn = state.conn().await?;
    Ok(web::Json(views::load_user(&mut conn, caller.user_id).await?))
}

/// Changes the caller's name or email.
#[utoipa::path(
    patch,
    path = "/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated account", body = UserView),
        (status = 400, description = "INVALID_FIELD or invalid JSON"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 409, description = "EMAIL_TAKEN"),
    )
)]
pub async fn update_me(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    body: Json<UpdateMe>,
) -> Result<web::Json<UserView>, ApiError> {
    let body = body.into_inner();
    let name = body.name.as_deref().map(|name| check_name("name", name)).transpose()?;
    let email = body.email.as_deref().map(normalize_email).transpose()?;
    let mut conn = state.conn().await?;
    let updated = diesel::update(users::table.find(caller.user_id))
        .set((
            name.map(|name| users::name.eq(name)),
            email.map(|email| users::email.eq(email)),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(&mut conn)
        .await;
    match updated {
        Err(error) if super::is_unique_violation(&error, "users_email_key") => {
            return Err(ApiError::Conflict {
                code: "EMAIL_TAKEN",
                message: "an account with this email already exists".into(),
            })
        }
        other => other?,
    };
    Ok(web::Json(views::load_user(&mut conn, caller.user_id).await?))
}

/// Deletes the caller's account.
#[utoipa::path(
    delete,
    path = "/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Account deleted, with the organizations where the caller was the only member"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 409, description = "LAST_OWNER: the caller is the last owner of an organization that has other members"),
    )
)]
pub async fn delete_me(caller: AuthUser, state: web::Data<ManagementState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.conn().await?;
    let user = caller.user_id;
    let evicted = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                // Lock the caller's memberships' organizations so that concurrent membership
                // changes cannot leave an organization without an owner.
                let orgs: Vec<(Uuid, Role)> = memberships::table
                    .filter(memberships::user_id.eq(user))
                    .select((memberships::organization_id, memberships::role))
                    .for_update()
                    .load(conn)
                    .await?;
                let mut alone_in = Vec::new();
                for (organization, role) in orgs {
                    let members: Vec<Role> = memberships::table
                        .filter(memberships::organization_id.eq(organization))
                        .select(memberships::role)
                        .for_update()
                        .load(conn)
                        .await?;
                    if members.len() == 1 {
                        alone_in.push(organization);
                    } else if role == Role::Owner && members.iter().filter(|r| **r == Role::Owner).count() == 1 {
                        return Err(ApiError::Conflict {
                            code: "LAST_OWNER",
                            message: format!(
                                "you are the last owner of organization {organization}, which has other members: make one of them an owner first"
                            ),
                        });
                    }
                }
                diesel::update(organizations::table.filter(organizations::id.eq_any(&alone_in)))
                    .set(organizations::deleted_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                let hashes = tenancy::mark_deleted_in_organizations(conn, &alone_in).await?;
                diesel::delete(users::table.find(user)).execute(conn).await?;
                Ok(hashes)
            }
            .scope_boxed()
        })
        .await?;
    state.evict_keys(&evicted).await;
    tracing::info!(user_id = %user, "Account deleted");
    Ok(HttpResponse::NoContent().finish())
}
