//! The views of accounts and organizations that several resources answer with (register,
//! login, `/v1/users/me`, `/v1/organizations`), and their loaders. Views never carry secrets.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::Role;
use crate::error::ApiError;
use pulse_shared::schema::{organizations, users};

/// An organization, with the caller's role in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c1-7a3e-7000-8000-00000000b001", "name": "Analytical Engines", "created_at": "2026-11-23T10:00:00Z", "role": "owner"}))]
pub struct OrganizationView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The caller's role.
    pub role: Role,
}

/// A user as the api shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = users)]
#[schema(example = json!({"id": "0192f0c1-7a3e-7000-8000-00000000a001", "email": "ada@example.com", "name": "Ada", "created_at": "2026-11-23T10:00:00Z"}))]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Loads an organization's view for a caller holding `role`.
pub async fn load_organization(
    conn: &mut AsyncPgConnection,
    organization: Uuid,
    role: Role,
) -> Result<OrganizationView, ApiError> {
    let (id, name, created_at): (Uuid, String, DateTime<Utc>) = organizations::table
        .find(organization)
        .filter(organizations::deleted_at.is_null())
        .select((organizations::id, organizations::name, organizations::created_at))
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::Missing("organization"))?;
    Ok(OrganizationView {
        id,
        name,
        created_at,
        role,
    })
}

/// Loads a user's public view.
pub async fn load_user(conn: &mut AsyncPgConnection, user: Uuid) -> Result<UserView, ApiError> {
    users::table
        .find(user)
        .select(UserView::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::Unauthorized("this account no longer exists"))
}
