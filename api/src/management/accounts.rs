//! Accounts and sessions: `POST /v1/auth/register`, `/login`, `/refresh`, `/logout` and
//! `/change-password`.
//!
//! A session is a refresh-token family. Login (and register) starts one; each refresh consumes
//! the presented token and issues the next in the same family, with a new access token.
//! Presenting a consumed token again means it leaked (or a client raced itself): the whole
//! family is revoked and the caller must log in again. Logout revokes the presented token's
//! family; change-password revokes every other family of the user. Access tokens are not
//! stored: one stays valid until it expires (`PULSE_ACCESS_TOKEN_TTL_SECS`, 15 min by default).
//!
//! Register also creates the user's personal organization (named by `organization_name`, or
//! "<name or email>'s organization") with the user as its owner.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authorization::{AuthUser, Role};
use super::fields::{check_name, normalize_email};
use super::json::Json;
use super::views::{self, OrganizationView, UserView};
use super::{passwords, tokens, ManagementState};
use crate::error::ApiError;
use pulse_shared::event;
use pulse_shared::schema::{memberships, organizations, refresh_tokens, users as users_table};

/// `POST /v1/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery", "name": "Ada", "organization_name": "Analytical Engines"}))]
pub struct RegisterRequest {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Name of the personal organization created with the account.
    #[serde(default)]
    pub organization_name: Option<String>,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery"}))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "rt_Zx8mQ2…"}))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /v1/auth/change-password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse battery", "new_password": "battery staple horse correct"}))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// The tokens of a session.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi…",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "rt_Zx8mQ2…",
    "refresh_expires_at": "2026-12-23T10:00:00Z"
}))]
pub struct Tokens {
    /// Send as `Authorization: Bearer <access_token>` to the management routes.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Shown once; exchange it at `/v1/auth/refresh` for new tokens (it is then consumed).
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// Answer of login and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    #[serde(flatten)]
    pub tokens: Tokens,
    pub user: UserView,
}

/// Answer of register.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    #[serde(flatten)]
    pub tokens: Tokens,
    pub user: UserView,
    /// The personal organization, owned by the new user.
    pub organization: OrganizationView,
}

/// Which sessions (refresh-token families) to end.
pub(crate) enum Sessions {
    /// One session: a reused token's, or the one logging out.
    Family(Uuid),
    /// Every session of `user` except `keep` (after a password change).
    AllOfUserBut { user: Uuid, keep: Uuid },
    /// Every session of `user` (after a password reset).
    AllOfUser(Uuid),
}

/// Revokes every live refresh token of the chosen sessions; their access tokens lapse within
/// their TTL.
pub(crate) async fn revoke_sessions(conn: &mut AsyncPgConnection, sessions: Sessions) -> QueryResult<usize> {
    let live = refresh_tokens::table
        .filter(refresh_tokens::revoked_at.is_null())
        .into_boxed();
    let chosen = match sessions {
        Sessions::Family(family) => live.filter(refresh_tokens::family_id.eq(family)),
        Sessions::AllOfUserBut { user, keep } => live
            .filter(refresh_tokens::user_id.eq(user))
            .filter(refresh_tokens::family_id.ne(keep)),
        Sessions::AllOfUser(user) => live.filter(refresh_tokens::user_id.eq(user)),
    };
    diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::id.eq_any(chosen.select(refresh_tokens::id)))
        .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
}

/// Starts a session (a new refresh-token family) for `user`.
async fn start_session(state: &ManagementState, conn: &mut AsyncPgConnection, user: Uuid) -> Result<Tokens, ApiError> {
    issue(state, conn, user, Uuid::now_v7()).await
}

/// Stores a new refresh token in `family` and signs an access token for it.
async fn issue(
    state: &ManagementState,
    conn: &mut AsyncPgConnection,
    user: Uuid,
    family: Uuid,
) -> Result<Tokens, ApiError> {
    let refresh = tokens::new_refresh_token();
    let now = Utc::now();
    let refresh_expires_at =
        now + ChronoDuration::from_std(state.refresh_token_ttl).unwrap_or(ChronoDuration::days(30));
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::user_id.eq(user),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::token_hash.eq(&refresh.hash),
            refresh_tokens::expires_at.eq(refresh_expires_at),
        ))
        .execute(conn)
        .await?;
    let ttl = state.access_token_ttl.as_secs();
    Ok(Tokens {
        access_token: state
            .jwt
            .issue(user, family, now.timestamp(), i64::try_from(ttl).unwrap_or(900))
            .map_err(|error| ApiError::Internal(format!("signing an access token: {error}")))?,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh.plain,
        refresh_expires_at,
    })
}

fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|addr| addr.ip())
}

/// Creates an account, its personal organization and a first session.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created, logged in", body = Registered),
        (status = 400, description = "Invalid email, password (under 10 characters), name or JSON"),
        (status = 409, description = "EMAIL_TAKEN: an account with this email exists"),
        (status = 429, description = "RATE_LIMITED: too many attempts from this IP; see Retry-After"),
    )
)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<ManagementState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state.login_limiter.check_ip(client_ip(&req))?;
    let body = body.into_inner();
    let email = normalize_email(&body.email)?;
    passwords::check_rules(&body.password)?;
    let name = match body.name.as_deref() {
        Some(name) if !name.trim().is_empty() => check_name("name", name)?,
        _ => String::new(),
    };
    let organization_name = match body.organization_name.as_deref() {
        Some(org) => check_name("organization_name", org)?,
        None => {
            let owner = if name.is_empty() { email.as_str() } else { name.as_str() };
            let mut default: String = owner.chars().take(180).collect();
            default.push_str("'s organization");
            default
        }
    };
    let password_hash = passwords::hash(body.password).await?;

    let mut conn = state.conn().await?;
    let user_id = Uuid::now_v7();
    let organization_id = Uuid::now_v7();
    let state_ref = state.get_ref();
    let created = conn
        .transaction::<_, ApiError, _>(|conn| {
            let (email, name, organization_name) = (email.clone(), name.clone(), organization_name.clone());
            async move {
                let inserted = diesel::insert_into(users_table::table)
                    .values((
                        users_table::id.eq(user_id),
                        users_table::email.eq(&email),
                        users_table::name.eq(&name),
                        users_table::password_hash.eq(&password_hash),
                    ))
                    .execute(conn)
                    .await;
                match inserted {
                    Err(error) if super::is_unique_violation(&error, "users_email_key") => {
                        return Err(ApiError::Conflict {
                            code: "EMAIL_TAKEN",
                            message: "an account with this email already exists".into(),
                        })
                    }
                    other => other?,
                };
                diesel::insert_into(organizations::table)
                    .values((
                        organizations::id.eq(organization_id),
                        organizations::name.eq(&organization_name),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::organization_id.eq(organization_id),
                        memberships::user_id.eq(user_id),
                        memberships::role.eq(Role::Owner),
                    ))
                    .execute(conn)
                    .await?;
                let tokens = start_session(state_ref, conn, user_id).await?;
                let user = views::load_user(conn, user_id).await?;
                let organization = views::load_organization(conn, organization_id, Role::Owner).await?;
                Ok(Registered {
                    tokens,
                    user,
                    organization,
                })
            }
            .scope_boxed()
        })
        .await?;
    tracing::info!(user_id = %user_id, organization_id = %organization_id, "Account registered");
    Ok(HttpResponse::Created().json(created))
}

/// Logs in with email and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 400, description = "Invalid JSON"),
        (status = 401, description = "INVALID_CREDENTIALS: unknown email or wrong password (the answer does not say which)"),
        (status = 429, description = "RATE_LIMITED: too many attempts from this IP or for this account; see Retry-After"),
    )
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<ManagementState>,
    body: Json<LoginRequest>,
) -> Result<web::Json<Session>, ApiError> {
    state.login_limiter.check_ip(client_ip(&req))?;
    let body = body.into_inner();
    // A malformed email cannot have an account; it still costs a verification below.
    let email = body.email.trim().to_lowercase();
    state.login_limiter.check_account(&email)?;
    let mut conn = state.conn().await?;
    // An email with a NUL cannot have an account (register refuses control characters), and
    // PostgreSQL text cannot even hold one: no lookup, the same answer as an unknown email.
    let found: Option<(Uuid, String)> = if event::has_nul(&email) {
        None
    } else {
        users_table::table
            .filter(users_table::email.eq(&email))
            .select((users_table::id, users_table::password_hash))
            .first(&mut conn)
            .await
            .optional()?
    };
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let matches = passwords::verify(body.password, stored).await?;
    let Some(user_id) = user_id.filter(|_| matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    let tokens = start_session(&state, &mut conn, user_id).await?;
    let user = views::load_user(&mut conn, user_id).await?;
    Ok(web::Json(Session { tokens, user }))
}

/// id, user, family, expiry, use, revocation.
type RefreshRow = (
    Uuid,
    Uuid,
    Uuid,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// What the presented refresh token turned out to be.
enum RefreshOutcome {
    Rotated(Uuid, Tokens),
    Reused,
    Invalid(&'static str),
}

/// Exchanges a refresh token for new tokens (the presented one is consumed).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens; the presented refresh token is consumed", body = Session),
        (status = 400, description = "Invalid JSON"),
        (status = 401, description = "INVALID_REFRESH_TOKEN (unknown, expired, revoked) or REFRESH_TOKEN_REUSED (already consumed: the whole session is revoked)"),
    )
)]
pub async fn refresh(
    state: web::Data<ManagementState>,
    body: Json<RefreshRequest>,
) -> Result<web::Json<Session>, ApiError> {
    let presented = body.into_inner().refresh_token;
    if !tokens::looks_like_refresh_token(&presented) {
        return Err(ApiError::InvalidRefreshToken("invalid refresh token"));
    }
    let hash = tokens::hash_refresh_token(&presented);
    let mut conn = state.conn().await?;
    let state_ref = state.get_ref();
    // The transaction commits in every outcome: a detected reuse must stay revoked.
    let outcome = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                let row: Option<RefreshRow> = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .select((
                        refresh_tokens::id,
                        refresh_tokens::user_id,
                        refresh_tokens::family_id,
                        refresh_tokens::expires_at,
                        refresh_tokens::used_at,
                        refresh_tokens::revoked_at,
                    ))
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let Some((id, user_id, family, expires_at, used_at, revoked_at)) = row else {
                    return Ok(RefreshOutcome::Invalid("invalid refresh token"));
                };
                if revoked_at.is_some() {
                    return Ok(RefreshOutcome::Invalid("this session has ended; log in again"));
                }
                if used_at.is_some() {
                    revoke_sessions(conn, Sessions::Family(family)).await?;
                    tracing::warn!(user_id = %user_id, session = %family, "Refresh token reused; session revoked");
                    return Ok(RefreshOutcome::Reused);
                }
                if expires_at <= Utc::now() {
                    return Ok(RefreshOutcome::Invalid("refresh token has expired; log in again"));
                }
                diesel::update(refresh_tokens::table.find(id))
                    .set(refresh_tokens::used_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                let tokens = issue(state_ref, conn, user_id, family).await?;
                Ok(RefreshOutcome::Rotated(user_id, tokens))
            }
            .scope_boxed()
        })
        .await?;
    match outcome {
        RefreshOutcome::Rotated(user_id, tokens) => {
            let user = views::load_user(&mut conn, user_id).await?;
            Ok(web::Json(Session { tokens, user }))
        }
        RefreshOutcome::Reused => Err(ApiError::RefreshTokenReused),
        RefreshOutcome::Invalid(message) => Err(ApiError::InvalidRefreshToken(message)),
    }
}

/// Ends the session of a refresh token (its whole family). Idempotent: an unknown or already
/// revoked token also answers 204.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Session ended; its refresh tokens no longer work (access tokens expire on their own)"),
        (status = 400, description = "Invalid JSON"),
    )
)]
pub async fn logout(state: web::Data<ManagementState>, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let presented = body.into_inner().refresh_token;
    if tokens::looks_like_refresh_token(&presented) {
        let hash = tokens::hash_refresh_token(&presented);
        let mut conn = state.conn().await?;
        let family: Option<Uuid> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .select(refresh_tokens::family_id)
            .first(&mut conn)
            .await
            .optional()?;
        if let Some(family) = family {
            revoke_sessions(&mut conn, Sessions::Family(family)).await?;
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the caller's password and ends every other session of theirs.
#[utoipa::path(
    post,
    path = "/v1/auth/change-password",
    tag = "accounts",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Password changed; the caller's other sessions are revoked"),
        (status = 400, description = "INVALID_FIELD: current_password is wrong or new_password breaks the rules"),
        (status = 401, description = "Missing, invalid or expired access token"),
    )
)]
pub async fn change_password(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    passwords::check_rules(&body.new_password).map_err(|_| ApiError::InvalidField {
        field: "new_password",
        message: format!(
            "new_password must be {} to {} characters",
            passwords::MIN_PASSWORD_CHARS,
            passwords::MAX_PASSWORD_CHARS
        ),
    })?;
    let mut conn = state.conn().await?;
    let stored: Option<String> = users_table::table
        .find(caller.user_id)
        .select(users_table::password_hash)
        .first(&mut conn)
        .await
        .optional()?;
    let Some(stored) = stored else {
        return Err(ApiError::Unauthorized("this account no longer exists"));
    };
    if !passwords::verify(body.current_password, Some(stored)).await? {
        return Err(ApiError::InvalidField {
            field: "current_password",
            message: "current_password is wrong".into(),
        });
    }
    let new_hash = passwords::hash(body.new_password).await?;
    conn.transaction::<_, ApiError, _>(|conn| {
        async move {
            diesel::update(users_table::table.find(caller.user_id))
                .set((
                    users_table::password_hash.eq(&new_hash),
                    users_table::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            revoke_sessions(
                conn,
                Sessions::AllOfUserBut {
                    user: caller.user_id,
                    keep: caller.session_id,
                },
            )
            .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await?;
    tracing::info!(user_id = %caller.user_id, "Password changed; other sessions revoked");
    Ok(HttpResponse::NoContent().finish())
}
