//! Who may read a project's events, and how often.
//!
//! [`ReadAccess`] is the extractor every read route takes. Two ways in:
//! - a project's API key with the `read` scope (`Authorization: Bearer pk_…` or `X-Api-Key`),
//!   which names the project; an `ingest`-only key is 403, and a `project_id=` naming another
//!   project is 404;
//! - a member's access token plus `project_id=`: 404 for a project the caller cannot see, as on
//!   the management routes.
//!
//! Then one token from the caller's bucket (per key, or per user with a token): 429 with
//! `Retry-After` when it is empty.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use actix_web::{web, FromRequest, HttpRequest};
use pulse_shared::config::QueryConfig;
use uuid::Uuid;

use crate::auth::{presents_api_key, SCOPE_READ};
use crate::error::ApiError;
use crate::ingest::IngestState;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::ManagementState;
use crate::rate_limit::Limiter;

use super::params::query_pairs;

/// What the read routes share in one replica: the per-caller limiter and the query bounds.
pub struct QueryState {
    limiter: Limiter<Uuid>,
    pub config: QueryConfig,
}

impl QueryState {
    pub fn new(config: QueryConfig) -> Self {
        Self {
            limiter: Limiter::default(),
            config,
        }
    }
}

/// The failures every read route shares, for its OpenAPI `responses` (each route adds its own
/// 400 and 404).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documents responses; never constructed
pub enum ReadFailures {
    /// UNAUTHORIZED: no valid API key or access token
    #[response(status = 401)]
    Unauthorized,
    /// FORBIDDEN: the key lacks the `read` scope
    #[response(status = 403)]
    Forbidden,
    /// RATE_LIMITED: PULSE_READ_RATE_LIMIT_PER_SEC; see Retry-After
    #[response(status = 429)]
    RateLimited,
    /// DATABASE_UNAVAILABLE or AUTH_UNAVAILABLE
    #[response(status = 503)]
    Unavailable,
}

/// The project a read request may see.
#[derive(Debug, Clone, Copy)]
pub struct ReadAccess {
    pub project_id: Uuid,
}

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let user = (!presents_api_key(req.headers())).then(|| AuthUser::from_request(&req, payload));
        Box::pin(async move {
            let state = app_data::<QueryState>(&req)?;
            let asked = asked_project(&req)?;
            let (project_id, caller) = match user {
                None => {
                    let ingest = app_data::<IngestState>(&req)?;
                    let record = ingest.auth.authenticate(req.headers(), SCOPE_READ).await?;
                    if asked.is_some_and(|asked| asked != record.project_id) {
                        return Err(ApiError::Missing("project"));
                    }
                    (record.project_id, record.key_id)
                }
                Some(user) => {
                    let user = user.await?;
                    let project = asked.ok_or(ApiError::InvalidParameter {
                        parameter: "project_id",
                        message: "project_id is required with an access token (an API key names its project)".into(),
                    })?;
                    let management = app_data::<ManagementState>(&req)?;
                    let mut conn = management.conn().await?;
                    require_project(&mut conn, user.user_id, project, Role::Member).await?;
                    (project, user.user_id)
                }
            };
            let rate = f64::from(state.config.read_rate_per_sec);
            let decision = state.limiter.check(&caller, rate, rate, Instant::now());
            if !decision.allowed {
                return Err(ApiError::RateLimited {
                    retry_after_secs: decision.retry_after_secs,
                });
            }
            Ok(ReadAccess { project_id })
        })
    }
}

fn app_data<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, ApiError> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(format!("{} is not registered", std::any::type_name::<T>())))
}

/// The `project_id=` of the query string, if any.
fn asked_project(req: &HttpRequest) -> Result<Option<Uuid>, ApiError> {
    let pairs = query_pairs(req)?;
    pairs
        .iter()
        .find(|(name, _)| name == "project_id")
        .map(|(_, value)| {
            value.parse().map_err(|_| ApiError::InvalidParameter {
                parameter: "project_id",
                message: format!("project_id must be a UUID, got {value:?}"),
            })
        })
        .transpose()
}
