//! Organizations and their members: `GET/POST /v1/organizations`,
//! `GET/PATCH /v1/organizations/{organization_id}`, `GET/POST .../members`,
//! `PATCH/DELETE .../members/{user_id}`.
//!
//! Roles: any member reads; admins rename the organization and manage members; only owners
//! grant, change or remove the owner role. A member may always leave (remove themselves).
//! The last owner can neither leave, be removed nor be demoted (409 `LAST_OWNER`); the check
//! runs with the organization's memberships locked, so two concurrent changes cannot both pass.
//! Members are added by the email of an existing account (there are no invitations).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::{allow, require_org, AuthUser, Role};
use super::fields::{check_name, normalize_email};
use super::json::Json;
use super::views::{self, OrganizationView};
use super::ManagementState;
use crate::error::ApiError;
use pulse_shared::schema::{memberships, organizations, users};

/// `POST /v1/organizations` and `PATCH /v1/organizations/{organization_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Analytical Engines"}))]
pub struct OrganizationRequest {
    pub name: String,
}

/// A member of an organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0192f0c1-7a3e-7000-8000-00000000a002", "email": "grace@example.com", "name": "Grace", "role": "admin", "joined_at": "2026-11-23T10:05:00Z"}))]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// `POST /v1/organizations/{organization_id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "grace@example.com", "role": "admin"}))]
pub struct AddMember {
    /// Email of an existing account.
    pub email: String,
    pub role: Role,
}

/// `PATCH /v1/organizations/{organization_id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "owner"}))]
pub struct UpdateMember {
    pub role: Role,
}

/// The organizations the caller belongs to.
#[utoipa::path(
    get,
    path = "/v1/organizations",
    tag = "organizations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's organizations, oldest first", body = [OrganizationView]),
        (status = 401, description = "Missing, invalid or expired access token"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
) -> Result<web::Json<Vec<OrganizationView>>, ApiError> {
    let mut conn = state.conn().await?;
    let rows: Vec<(Uuid, String, DateTime<Utc>, Role)> = organizations::table
        .inner_join(memberships::table)
        .filter(memberships::user_id.eq(caller.user_id))
        .filter(organizations::deleted_at.is_null())
        .order((organizations::created_at.asc(), organizations::id.asc()))
        .select((
            organizations::id,
            organizations::name,
            organizations::created_at,
            memberships::role,
        ))
        .load(&mut conn)
        .await?;
    let views = rows
        .into_iter()
        .map(|(id, name, created_at, role)| OrganizationView {
            id,
            name,
            created_at,
            role,
        })
        .collect();
    Ok(web::Json(views))
}

/// Creates an organization owned by the caller.
#[utoipa::path(
    post,
    path = "/v1/organizations",
    tag = "organizations",
    security(("bearer" = [])),
    request_body = OrganizationRequest,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = OrganizationView),
        (status = 400, description = "INVALID_FIELD or invalid JSON"),
        (status = 401, description = "Missing, invalid or expired access token"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    body: Json<OrganizationRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = check_name("name", &body.name)?;
    let mut conn = state.conn().await?;
    let id = Uuid::now_v7();
    let view = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                // The caller must still exist (an access token outlives a deleted account).
                views::load_user(conn, caller.user_id).await?;
                diesel::insert_into(organizations::table)
                    .values((organizations::id.eq(id), organizations::name.eq(&name)))
                    .execute(conn)
                    .await?;
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::organization_id.eq(id),
                        memberships::user_id.eq(caller.user_id),
                        memberships::role.eq(Role::Owner),
                    ))
                    .execute(conn)
                    .await?;
                views::load_organization(conn, id, Role::Owner).await
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One organization of the caller's.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}",
    tag = "organizations",
    security(("bearer" = [])),
    params(("organization_id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        (status = 400, description = "organization_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such organization among the caller's"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    let organization = path.into_inner();
    let mut conn = state.conn().await?;
    let role = require_org(&mut conn, caller.user_id, organization, Role::Member).await?;
    Ok(web::Json(
        views::load_organization(&mut conn, organization, role).await?,
    ))
}

/// Renames an organization (admin).
#[utoipa::path(
    patch,
    path = "/v1/organizations/{organization_id}",
    tag = "organizations",
    security(("bearer" = [])),
    params(("organization_id" = Uuid, Path, description = "Organization id")),
    request_body = OrganizationRequest,
    responses(
        (status = 200, description = "The updated organization", body = OrganizationView),
        (status = 400, description = "INVALID_FIELD, invalid JSON, or organization_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such organization among the caller's"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<OrganizationRequest>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    let organization = path.into_inner();
    let name = check_name("name", &body.name)?;
    let mut conn = state.conn().await?;
    let role = require_org(&mut conn, caller.user_id, organization, Role::Admin).await?;
    diesel::update(organizations::table.find(organization))
        .set(organizations::name.eq(&name))
        .execute(&mut conn)
        .await?;
    Ok(web::Json(
        views::load_organization(&mut conn, organization, role).await?,
    ))
}

async fn load_members(
    conn: &mut AsyncPgConnection,
    organization: Uuid,
    only: Option<Uuid>,
) -> Result<Vec<MemberView>, ApiError> {
    let mut query = memberships::table
        .inner_join(users::table)
        .filter(memberships::organization_id.eq(organization))
        .order((memberships::created_at.asc(), users::id.asc()))
        .select((
            users::id,
            users::email,
            users::name,
            memberships::role,
            memberships::created_at,
        ))
        .into_boxed();
    if let Some(user) = only {
        query = query.filter(users::id.eq(user));
    }
    let rows: Vec<(Uuid, String, String, Role, DateTime<Utc>)> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, email, name, role, joined_at)| MemberView {
            user_id,
            email,
            name,
            role,
            joined_at,
        })
        .collect())
}

/// The members of an organization.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}/members",
    tag = "organizations",
    security(("bearer" = [])),
    params(("organization_id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Members, oldest first", body = [MemberView]),
        (status = 400, description = "organization_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such organization among the caller's"),
    )
)]
pub async fn list_members(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<Vec<MemberView>>, ApiError> {
    let organization = path.into_inner();
    let mut conn = state.conn().await?;
    require_org(&mut conn, caller.user_id, organization, Role::Member).await?;
    Ok(web::Json(load_members(&mut conn, organization, None).await?))
}

/// Adds an existing account to an organization (admin; owner to add an owner).
#[utoipa::path(
    post,
    path = "/v1/organizations/{organization_id}/members",
    tag = "organizations",
    security(("bearer" = [])),
    params(("organization_id" = Uuid, Path, description = "Organization id")),
    request_body = AddMember,
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 400, description = "INVALID_FIELD, invalid JSON, or organization_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller's role is too low (admin needed; owner to add an owner)"),
        (status = 404, description = "No such organization among the caller's, or no account with this email"),
        (status = 409, description = "ALREADY_MEMBER"),
    )
)]
pub async fn add_member(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let organization = path.into_inner();
    let body = body.into_inner();
    let email = normalize_email(&body.email)?;
    let mut conn = state.conn().await?;
    let role = require_org(&mut conn, caller.user_id, organization, Role::Admin).await?;
    if body.role == Role::Owner {
        allow(role, Role::Owner)?;
    }
    let user: Uuid = users::table
        .filter(users::email.eq(&email))
        .select(users::id)
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("user"))?;
    let inserted = diesel::insert_into(memberships::table)
        .values((
            memberships::organization_id.eq(organization),
            memberships::user_id.eq(user),
            memberships::role.eq(body.role),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    if inserted == 0 {
        return Err(ApiError::Conflict {
            code: "ALREADY_MEMBER",
            message: "this account is already a member of the organization".into(),
        });
    }
    let member = load_members(&mut conn, organization, Some(user))
        .await?
        .pop()
        .ok_or(ApiError::Missing("user"))?;
    Ok(HttpResponse::Created().json(member))
}

/// What a membership change does to the owner count.
enum Change {
    Remove,
    SetRole(Role),
}

/// Applies a membership change under lock: 404 when `target` is not a member, 409 when it would
/// leave the organization without an owner.
async fn change_membership(
    conn: &mut AsyncPgConnection,
    organization: Uuid,
    target: Uuid,
    change: Change,
) -> Result<Option<MemberView>, ApiError> {
    conn.transaction::<_, ApiError, _>(|conn| {
        async move {
            let members: Vec<(Uuid, Role)> = memberships::table
                .filter(memberships::organization_id.eq(organization))
                .select((memberships::user_id, memberships::role))
                .for_update()
                .load(conn)
                .await?;
            let target_role = members
                .iter()
                .find(|(user, _)| *user == target)
                .map(|(_, role)| *role)
                .ok_or(ApiError::Missing("member"))?;
            let owners = members.iter().filter(|(_, role)| *role == Role::Owner).count();
            let loses_owner = target_role == Role::Owner && !matches!(change, Change::SetRole(Role::Owner));
            if loses_owner && owners <= 1 {
                return Err(ApiError::Conflict {
                    code: "LAST_OWNER",
                    message: "an organization keeps at least one owner: make another member an owner first".into(),
                });
            }
            let row = memberships::table
                .filter(memberships::organization_id.eq(organization))
                .filter(memberships::user_id.eq(target));
            match change {
                Change::Remove => {
                    diesel::delete(row).execute(conn).await?;
                    Ok(None)
                }
                Change::SetRole(role) => {
                    diesel::update(row)
                        .set(memberships::role.eq(role))
                        .execute(conn)
                        .await?;
                    Ok(load_members(conn, organization, Some(target)).await?.pop())
                }
            }
        }
        .scope_boxed()
    })
    .await
}

async fn target_role(conn: &mut AsyncPgConnection, organization: Uuid, target: Uuid) -> Result<Role, ApiError> {
    memberships::table
        .filter(memberships::organization_id.eq(organization))
        .filter(memberships::user_id.eq(target))
        .select(memberships::role)
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("member"))
}

/// Changes a member's role (admin; owner when the owner role is granted or taken).
#[utoipa::path(
    patch,
    path = "/v1/organizations/{organization_id}/members/{user_id}",
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("organization_id" = Uuid, Path, description = "Organization id"),
        ("user_id" = Uuid, Path, description = "The member's user id"),
    ),
    request_body = UpdateMember,
    responses(
        (status = 200, description = "The member with the new role", body = MemberView),
        (status = 400, description = "Invalid JSON or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller's role is too low"),
        (status = 404, description = "No such organization among the caller's, or no such member"),
        (status = 409, description = "LAST_OWNER: the last owner cannot be demoted"),
    )
)]
pub async fn update_member(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateMember>,
) -> Result<web::Json<MemberView>, ApiError> {
    let (organization, target) = path.into_inner();
    let new_role = body.into_inner().role;
    let mut conn = state.conn().await?;
    let role = require_org(&mut conn, caller.user_id, organization, Role::Admin).await?;
    let current = target_role(&mut conn, organization, target).await?;
    if current == Role::Owner || new_role == Role::Owner {
        allow(role, Role::Owner)?;
    }
    let member = change_membership(&mut conn, organization, target, Change::SetRole(new_role))
        .await?
        .ok_or(ApiError::Missing("member"))?;
    Ok(web::Json(member))
}

/// Removes a member (admin; owner to remove an owner); any member may remove themselves.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{organization_id}/members/{user_id}",
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("organization_id" = Uuid, Path, description = "Organization id"),
        ("user_id" = Uuid, Path, description = "The member's user id (the caller's own to leave)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller's role is too low"),
        (status = 404, description = "No such organization among the caller's, or no such member"),
        (status = 409, description = "LAST_OWNER: the last owner cannot leave or be removed"),
    )
)]
pub async fn remove_member(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (organization, target) = path.into_inner();
    let mut conn = state.conn().await?;
    if target == caller.user_id {
        require_org(&mut conn, caller.user_id, organization, Role::Member).await?;
    } else {
        let role = require_org(&mut conn, caller.user_id, organization, Role::Admin).await?;
        if target_role(&mut conn, organization, target).await? == Role::Owner {
            allow(role, Role::Owner)?;
        }
    }
    change_membership(&mut conn, organization, target, Change::Remove).await?;
    Ok(HttpResponse::NoContent().finish())
}
