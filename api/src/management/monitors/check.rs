//! `POST …/monitors/{monitor_id}/check`: checks a monitor now (admin) through
//! `pulse_shared::monitor::check_now`, the path scheduled checks take: the check is recorded
//! (`manual: true`, no `scheduled_at`) with the day's counters, the state, the target's breaker
//! and, on a state change, the incident and its notices; the change is then announced on the
//! live stream (`type: "monitor"`). The answer waits for the check (at most the monitor's
//! `timeout_ms`). A paused monitor is checked too: it was asked for. The schedule is not moved.

use actix_web::web;
use pulse_shared::monitor::{check_now, MonitorError};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::{CheckView, ShownState};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::ManagementState;

/// What a check now did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MonitorCheckResult, example = json!({
    "check": {"id": 4712, "checked_at": "2026-12-02T10:00:03Z", "scheduled_at": null, "ok": true,
              "status_code": 200, "latency_ms": 38, "error_class": null, "error": null,
              "cert_expires_at": null, "manual": true},
    "state": "up",
    "state_changed": true
}))]
pub struct CheckResult {
    /// The recorded check.
    pub check: CheckView,
    /// The monitor's state after it.
    pub state: ShownState,
    /// Whether this check changed the state (announced on the live stream, notified when
    /// it went down or up).
    pub state_changed: bool,
}

fn api_error(error: MonitorError) -> ApiError {
    match error {
        MonitorError::NotFound(_) => ApiError::Missing("monitor"),
        MonitorError::Database(error) => error.into(),
        MonitorError::Pool(reason) => {
            tracing::warn!(error = %reason, "No database connection for a manual check");
            ApiError::DatabaseUnavailable { retry_after_secs: 2 }
        }
        MonitorError::Client(reason) => ApiError::Internal(format!("monitor HTTP client: {reason}")),
    }
}

/// Checks a monitor now (admin) and returns the recorded check.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}/check",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
    ),
    responses(
        (status = 200, description = "Checked and recorded; a failed check is a 200 with `ok: false` and its error_class", body = CheckResult),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn check(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<CheckResult>, ApiError> {
    let (project_id, monitor_id) = path.into_inner();
    let monitor = {
        let mut conn = state.conn().await?;
        let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
        super::find(&mut conn, project.id, monitor_id, false).await?
    };
    let checker = state
        .monitors
        .checker
        .as_ref()
        .ok_or_else(|| ApiError::Internal("this app has no monitor checker".into()))?;
    // No connection is held while the check runs.
    let recorded = check_now(&state.pool, checker, monitor.id).await.map_err(api_error)?;
    if let (Some(change), Some(announcer)) = (&recorded.change, &state.monitors.announcer) {
        announcer.announce(change).await;
    }
    let after = {
        let mut conn = state.conn().await?;
        super::find(&mut conn, monitor.project_id, monitor.id, false).await?
    };
    tracing::info!(
        project_id = %monitor.project_id,
        monitor_id = %monitor.id,
        ok = recorded.check.ok,
        state_changed = recorded.change.is_some(),
        "Monitor checked on demand"
    );
    let stored = recorded.check;
    Ok(web::Json(CheckResult {
        check: CheckView {
            id: stored.id,
            checked_at: stored.checked_at,
            scheduled_at: None,
            ok: stored.ok,
            status_code: stored.status_code,
            latency_ms: stored.latency_ms,
            error_class: stored.error_class,
            error: stored.error,
            cert_expires_at: stored.cert_expires_at,
            manual: stored.manual,
        },
        state: ShownState::of(after.paused, &after.state),
        state_changed: recorded.change.is_some(),
    }))
}
