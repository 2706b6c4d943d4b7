//! Who is calling and what they may touch.
//!
//! - [`AuthUser`] extracts the caller from `Authorization: Bearer <access token>` (a JWT, see
//!   [`super::tokens`]); API keys (`pk_…`) are for ingest and are refused here.
//! - Roles are ordered `member < admin < owner`; each route asks for the least role it needs
//!   (the table is in docs/management.md).
//! - The "404, not 403" rule: an object of an organization the caller does not belong to (or a
//!   deleted one, or one that does not exist) is answered 404, so a caller never learns that
//!   another tenant's object exists. 403 is only for members whose role is too low.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ManagementState;
use crate::error::ApiError;
use pulse_shared::schema::{memberships, organizations, projects};

/// A role in an organization, stored in `memberships.role` as its lower-case name (the column's
/// CHECK constraint lists the same three): queries read and write the enum, never the text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the organization, its members, projects and keys.
    Member,
    /// Also manages projects, keys and members (but not owners).
    Admin,
    /// Also manages owners.
    Owner,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

impl ToSql<Text, Pg> for Role {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for Role {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse().map_err(Into::into)
    }
}

/// The authenticated caller of a management route.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    /// The session (refresh-token family) the access token belongs to.
    pub session_id: Uuid,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let result = authenticate(req);
        Box::pin(async move { result })
    }
}

fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let state = req
        .app_data::<web::Data<ManagementState>>()
        .ok_or_else(|| ApiError::Internal("ManagementState is not registered".into()))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing access token: send `Authorization: Bearer <access token>`",
        ))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("invalid access token"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <access token>`",
            ))
        }
    };
    if token.starts_with(pulse_shared::keys::KEY_PREFIX) {
        return Err(ApiError::Unauthorized(
            "API keys are for ingest; management routes take an access token from /v1/auth/login",
        ));
    }
    let claims = state
        .jwt
        .verify(token, Utc::now().timestamp())
        .map_err(|_| ApiError::Unauthorized("invalid or expired access token"))?;
    Ok(AuthUser {
        user_id: claims.sub,
        session_id: claims.sid,
    })
}

/// The caller's role in a live organization, if they belong to it.
pub async fn role_in(conn: &mut AsyncPgConnection, user: Uuid, organization: Uuid) -> Result<Option<Role>, ApiError> {
    let role: Option<Role> = memberships::table
        .inner_join(organizations::table)
        .filter(memberships::user_id.eq(user))
        .filter(memberships::organization_id.eq(organization))
        .filter(organizations::deleted_at.is_null())
        .select(memberships::role)
        .first(conn)
        .await
        .optional()?;
    Ok(role)
}

/// The caller's role in `organization`, at least `needed`: 404 for non-members, 403 for members
/// whose role is too low.
pub async fn require_org(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    organization: Uuid,
    needed: Role,
) -> Result<Role, ApiError> {
    let role = role_in(conn, user, organization)
        .await?
        .ok_or(ApiError::Missing("organization"))?;
    allow(role, needed)?;
    Ok(role)
}

/// 403 unless `role` is at least `needed`.
pub fn allow(role: Role, needed: Role) -> Result<(), ApiError> {
    if role >= needed {
        Ok(())
    } else {
        Err(ApiError::RoleRequired(needed.as_str()))
    }
}

/// A live project as the management routes see it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
pub struct ProjectRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub retention_days: i32,
    pub ingest_rate_limit_per_sec: Option<i32>,
    pub status_page_enabled: bool,
    pub status_page_slug: Option<String>,
}

/// The project and the caller's role in its organization (at least `needed`): 404 when the
/// project does not exist, is deleted, or belongs to an organization the caller is not in.
pub async fn require_project(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    project: Uuid,
    needed: Role,
) -> Result<(ProjectRow, Role), ApiError> {
    let found: Option<(ProjectRow, Role)> = projects::table
        .inner_join(organizations::table)
        .inner_join(
            memberships::table.on(memberships::organization_id
                .eq(projects::organization_id)
                .and(memberships::user_id.eq(user))),
        )
        .filter(projects::id.eq(project))
        .filter(projects::deleted_at.is_null())
        .filter(organizations::deleted_at.is_null())
        .select((ProjectRow::as_select(), memberships::role))
        .first(conn)
        .await
        .optional()?;
    let (row, role) = found.ok_or(ApiError::Missing("project"))?;
    allow(role, needed)?;
    Ok((row, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        for role in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(allow(Role::Admin, Role::Member).is_ok());
        assert_eq!(
            allow(Role::Member, Role::Admin).expect_err("403").status().as_u16(),
            403
        );
    }
}
