//! Monitors: `GET/POST /v1/projects/{project_id}/monitors` and
//! `GET/PATCH/DELETE …/monitors/{monitor_id}`. Members read; admins create, change and delete.
//!
//! The fields and their rules are in [`super::rules`]. A PATCH is partial: any top-level field;
//! `channels` is replaced whole, and `body`, `body_contains`, `json_match` and `max_latency_ms`
//! are removed with `null`. A change of `url` starts the monitor afresh: its state goes back to
//! `pending`, its failure count to 0, and an open incident is resolved without notices (what
//! was down is no longer watched). A change of `url` or `interval_s`, and unpausing, put the
//! next check on the monitor's next slot (`spec::next_slot`). Deleting a monitor deletes its
//! checks, daily figures and incidents.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::monitor::spec::{self, MonitorState};
use pulse_shared::schema::{monitor_incidents, monitors};
use pulse_shared::whole;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::rules::{self, JsonMatch, MonitorChannels};
use super::views::{MonitorPage, MonitorRow, MonitorView};
use crate::error::ApiError;
use crate::management::alerts::rules::{check_renotify, check_webhooks};
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::fields::check_name;
use crate::management::json::Json;
use crate::management::webhooks::page::PageRequest;
use crate::management::webhooks::rules::check_url;
use crate::management::ManagementState;

/// `POST /v1/projects/{project_id}/monitors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "checkout health",
    "url": "https://shop.example.com/health",
    "interval_s": 30,
    "timeout_ms": 5000,
    "expected_status": ["2xx"],
    "json_match": {"pointer": "/status", "equals": "ok"},
    "max_latency_ms": 2000,
    "failures_before_down": 3,
    "maintenance": [{"weekday": "sunday", "start_time": "02:00", "duration_s": 3600}],
    "channels": {"emails": ["ops@example.com"], "webhook_ids": []}
}))]
pub struct CreateMonitor {
    /// 1 to 200 characters after trimming.
    pub name: String,
    /// http or https; its host must resolve to public addresses (or `PULSE_MONITOR_ALLOW_NETS`).
    pub url: String,
    /// Default `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Extra request headers, names to values (default none).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    /// Request body (default none).
    #[serde(default)]
    pub body: Option<String>,
    /// Seconds between checks, 10 to 86400 (default 60).
    #[serde(default, deserialize_with = "whole::option")]
    pub interval_s: Option<i64>,
    /// 100 to 60000 and at most the interval (default 10000).
    #[serde(default, deserialize_with = "whole::option")]
    pub timeout_ms: Option<i64>,
    /// Accepted statuses: `200`, `"2xx"`, `"200-204"` (default `["2xx"]`).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub expected_status: Option<Value>,
    /// The response body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The response body, parsed as JSON, must hold `equals` at `pointer`.
    #[serde(default)]
    pub json_match: Option<JsonMatch>,
    /// A slower answer fails with `latency`.
    #[serde(default, deserialize_with = "whole::option")]
    pub max_latency_ms: Option<i64>,
    /// Warn once per certificate expiring within this many days (HTTPS; default 14; 0: never).
    #[serde(default, deserialize_with = "whole::option")]
    pub cert_expiry_days: Option<i64>,
    /// Failed checks in a row that take the monitor down (default 3).
    #[serde(default, deserialize_with = "whole::option")]
    pub failures_before_down: Option<i64>,
    /// Seconds between reminders while down: 0 (never, the default) or 60 to 604800.
    #[serde(default, deserialize_with = "whole::option")]
    pub renotify_s: Option<i64>,
    /// Default `false`.
    #[serde(default)]
    pub paused: Option<bool>,
    /// Windows during which notifications are held back (default none).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub maintenance: Option<Value>,
    /// Default: no addresses, no endpoints.
    #[serde(default)]
    pub channels: Option<MonitorChannels>,
}

/// `PATCH …/monitors/{monitor_id}`: the fields to change; `null` removes `body`,
/// `body_contains`, `json_match` and `max_latency_ms`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"paused": true}))]
pub struct UpdateMonitor {
    #[serde(default)]
    pub name: Option<String>,
    /// A different URL puts the monitor back to `pending`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    #[serde(default, deserialize_with = "rules::present")]
    #[schema(value_type = Option<String>)]
    pub body: Option<Option<String>>,
    #[serde(default, deserialize_with = "whole::option")]
    pub interval_s: Option<i64>,
    #[serde(default, deserialize_with = "whole::option")]
    pub timeout_ms: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub expected_status: Option<Value>,
    #[serde(default, deserialize_with = "rules::present")]
    #[schema(value_type = Option<String>)]
    pub body_contains: Option<Option<String>>,
    #[serde(default, deserialize_with = "rules::present")]
    #[schema(value_type = Option<JsonMatch>)]
    pub json_match: Option<Option<JsonMatch>>,
    #[serde(default, deserialize_with = "whole::present")]
    #[schema(value_type = Option<i64>)]
    pub max_latency_ms: Option<Option<i64>>,
    #[serde(default, deserialize_with = "whole::option")]
    pub cert_expiry_days: Option<i64>,
    #[serde(default, deserialize_with = "whole::option")]
    pub failures_before_down: Option<i64>,
    #[serde(default, deserialize_with = "whole::option")]
    pub renotify_s: Option<i64>,
    /// `false` on a paused monitor puts its next check on its next slot.
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub maintenance: Option<Value>,
    #[serde(default)]
    pub channels: Option<MonitorChannels>,
}

/// `GET /v1/projects/{project_id}/monitors`: the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMonitors {
    /// Monitors per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The URL to store: at most [`rules::MAX_URL_CHARS`], then the SSRF guard.
async fn checked_url(state: &ManagementState, raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > rules::MAX_URL_CHARS {
        return Err(rules::invalid(
            "url",
            format!("url must be at most {} characters", rules::MAX_URL_CHARS),
        ));
    }
    check_url(&state.monitors.guard, raw).await
}

/// Creates a monitor (admin); its first check is due at its first slot.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/monitors",
    tag = "monitors",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateMonitor,
    responses(
        (status = 201, description = "Created, `pending` until its first checks", body = MonitorView),
        (status = 400, description = "INVALID_FIELD (details.field: name, url (also when the SSRF guard refuses its addresses), method, headers, body, interval_s, timeout_ms, expected_status, body_contains, json_match.pointer, json_match.equals, max_latency_ms, cert_expiry_days, failures_before_down, renotify_s, maintenance, channels.emails, channels.webhook_ids: not an endpoint of this project), invalid JSON (an unknown field, a wrong type), or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<CreateMonitor>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name("name", &body.name)?;
    let method = rules::check_method(body.method.as_deref().unwrap_or("GET"))?;
    let headers = rules::check_headers(body.headers.as_ref().unwrap_or(&Value::Object(Default::default())))?;
    let request_body = body.body.map(rules::check_body).transpose()?;
    let interval_s = rules::check_interval(body.interval_s.unwrap_or(rules::DEFAULT_INTERVAL_S))?;
    let timeout_ms = rules::check_timeout(body.timeout_ms.unwrap_or(rules::DEFAULT_TIMEOUT_MS), interval_s)?;
    let expected_status = match &body.expected_status {
        Some(value) => rules::check_expected_status(value)?,
        None => spec::StatusRanges::default().to_value(),
    };
    let body_contains = body.body_contains.map(rules::check_body_contains).transpose()?;
    let json_match = body.json_match.map(rules::check_json_match).transpose()?;
    let max_latency_ms = body.max_latency_ms.map(rules::check_max_latency).transpose()?;
    let cert_expiry_days = rules::check_cert_expiry(body.cert_expiry_days.unwrap_or(rules::DEFAULT_CERT_EXPIRY_DAYS))?;
    let failures = rules::check_failures(body.failures_before_down.unwrap_or(rules::DEFAULT_FAILURES_BEFORE_DOWN))?;
    let renotify_s = check_renotify(body.renotify_s.unwrap_or(0))?;
    let maintenance = match &body.maintenance {
        Some(value) => rules::check_maintenance(value)?,
        None => Value::Array(Vec::new()),
    };
    let channels = rules::check_monitor_channels(body.channels.unwrap_or_default())?;
    let paused = body.paused.unwrap_or(false);
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    let url = checked_url(&state, &body.url).await?;
    check_webhooks(&mut conn, project.id, &channels.webhook_ids).await?;
    let id = Uuid::now_v7();
    let (json_pointer, json_equals) =
        json_match.map_or((None, None), |found| (Some(found.pointer), Some(found.equals)));
    let row: MonitorRow = diesel::insert_into(monitors::table)
        .values((
            monitors::id.eq(id),
            monitors::project_id.eq(project.id),
            monitors::name.eq(&name),
            monitors::url.eq(&url),
            monitors::method.eq(method),
            monitors::headers.eq(headers),
            monitors::body.eq(request_body),
            monitors::interval_s.eq(interval_s),
            monitors::timeout_ms.eq(timeout_ms),
            monitors::expected_status.eq(expected_status),
            monitors::body_contains.eq(body_contains),
            monitors::json_pointer.eq(json_pointer),
            monitors::json_equals.eq(json_equals),
            monitors::max_latency_ms.eq(max_latency_ms),
            monitors::cert_expiry_days.eq(cert_expiry_days),
            monitors::failures_before_down.eq(failures),
            monitors::renotify_s.eq(renotify_s),
            monitors::paused.eq(paused),
            monitors::maintenance.eq(maintenance),
            monitors::emails.eq(&channels.emails),
            monitors::webhook_ids.eq(&channels.webhook_ids),
            monitors::next_check_at.eq(spec::next_slot(id, interval_s, Utc::now())),
        ))
        .returning(MonitorRow::as_returning())
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project.id, monitor_id = %row.id, interval_s, "Monitor created");
    Ok(HttpResponse::Created().json(super::view(&mut conn, row).await?))
}

/// The project's monitors, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/monitors",
    tag = "monitors",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListMonitors),
    responses(
        (status = 200, description = "A page of monitors", body = MonitorPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown parameter, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    query: web::Query<ListMonitors>,
) -> Result<web::Json<MonitorPage>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let mut select = monitors::table
        .filter(monitors::project_id.eq(project.id))
        .order(monitors::id.desc())
        .limit(page.fetch())
        .select(MonitorRow::as_select())
        .into_boxed::<Pg>();
    if let Some(before) = page.before {
        select = select.filter(monitors::id.lt(before));
    }
    let rows: Vec<MonitorRow> = select.load(&mut conn).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.id);
    Ok(web::Json(MonitorPage {
        data: super::views(&mut conn, rows).await?,
        next_cursor,
    }))
}

/// One monitor.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
    ),
    responses(
        (status = 200, description = "The monitor, its state, its breaker and its newest check", body = MonitorView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<MonitorView>, ApiError> {
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let row = super::find(&mut conn, project.id, monitor_id, false).await?;
    Ok(web::Json(super::view(&mut conn, row).await?))
}

/// Resolves the monitor's open incident, if any, now, without notices. Returns whether there
/// was one.
async fn close_open(conn: &mut AsyncPgConnection, monitor: Uuid) -> Result<bool, ApiError> {
    let closed = diesel::update(
        monitor_incidents::table
            .filter(monitor_incidents::monitor_id.eq(monitor))
            .filter(monitor_incidents::resolved_at.is_null()),
    )
    .set(monitor_incidents::resolved_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(closed > 0)
}

/// Changes a monitor (admin).
#[utoipa::path(
    patch,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
    ),
    request_body = UpdateMonitor,
    responses(
        (status = 200, description = "The updated monitor", body = MonitorView),
        (status = 400, description = "INVALID_FIELD (details.field, as for creation), an unknown field, invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateMonitor>,
) -> Result<web::Json<MonitorView>, ApiError> {
    let body = body.into_inner();
    let name = body.name.as_deref().map(|name| check_name("name", name)).transpose()?;
    let method = body.method.as_deref().map(rules::check_method).transpose()?;
    let headers = body.headers.as_ref().map(rules::check_headers).transpose()?;
    let request_body = body
        .body
        .map(|text| text.map(rules::check_body).transpose())
        .transpose()?;
    let interval_s = body.interval_s.map(rules::check_interval).transpose()?;
    let expected_status = body
        .expected_status
        .as_ref()
        .map(rules::check_expected_status)
        .transpose()?;
    let body_contains = body
        .body_contains
        .map(|text| text.map(rules::check_body_contains).transpose())
        .transpose()?;
    let json_match = body
        .json_match
        .map(|found| found.map(rules::check_json_match).transpose())
        .transpose()?;
    let max_latency_ms = body
        .max_latency_ms
        .map(|latency| latency.map(rules::check_max_latency).transpose())
        .transpose()?;
    let cert_expiry_days = body.cert_expiry_days.map(rules::check_cert_expiry).transpose()?;
    let failures = body.failures_before_down.map(rules::check_failures).transpose()?;
    let renotify_s = body.renotify_s.map(check_renotify).transpose()?;
    let maintenance = body.maintenance.as_ref().map(rules::check_maintenance).transpose()?;
    let channels = body.channels.map(rules::check_monitor_channels).transpose()?;
    let paused = body.paused;
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let url = match &body.url {
        Some(raw) => Some(checked_url(&state, raw).await?),
        None => None,
    };
    let timeout_ms = body.timeout_ms;
    let (row, reset, resolved) = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                let current = super::find(conn, project.id, monitor_id, true).await?;
                if let Some(channels) = &channels {
                    check_webhooks(conn, project.id, &channels.webhook_ids).await?;
                }
                let interval = interval_s.unwrap_or(current.interval_s);
                // The timeout, new or kept, must fit the interval, new or kept.
                let timeout = if timeout_ms.is_some() || interval_s.is_some() {
                    let checked = rules::check_timeout(timeout_ms.unwrap_or(current.timeout_ms.into()), interval)?;
                    timeout_ms.map(|_| checked)
                } else {
                    None
                };
                let url_changed = url.as_ref().is_some_and(|url| *url != current.url);
                let unpaused = current.paused && paused == Some(false);
                let reschedule = url_changed || interval != current.interval_s || unpaused;
                let next_check_at = reschedule.then(|| spec::next_slot(current.id, interval, Utc::now()));
                let row: MonitorRow = diesel::update(monitors::table.find(current.id))
                    .set((
                        (
                            name.map(|name| monitors::name.eq(name)),
                            url.map(|url| monitors::url.eq(url)),
                            method.map(|method| monitors::method.eq(method)),
                            headers.map(|headers| monitors::headers.eq(headers)),
                            request_body.map(|text| monitors::body.eq(text)),
                            interval_s.map(|interval| monitors::interval_s.eq(interval)),
                            timeout.map(|timeout| monitors::timeout_ms.eq(timeout)),
                            expected_status.map(|statuses| monitors::expected_status.eq(statuses)),
                            body_contains.map(|text| monitors::body_contains.eq(text)),
                            json_match.map(|found| {
                                let (pointer, equals) =
                                    found.map_or((None, None), |found| (Some(found.pointer), Some(found.equals)));
                                (monitors::json_pointer.eq(pointer), monitors::json_equals.eq(equals))
                            }),
                        ),
                        (
                            max_latency_ms.map(|latency| monitors::max_latency_ms.eq(latency)),
                            cert_expiry_days.map(|days| monitors::cert_expiry_days.eq(days)),
                            failures.map(|failures| monitors::failures_before_down.eq(failures)),
                            renotify_s.map(|renotify| monitors::renotify_s.eq(renotify)),
                            paused.map(|paused| monitors::paused.eq(paused)),
                            maintenance.map(|windows| monitors::maintenance.eq(windows)),
                            channels.map(|channels| {
                                (
                                    monitors::emails.eq(channels.emails),
                                    monitors::webhook_ids.eq(channels.webhook_ids),
                                )
                            }),
                            url_changed.then(|| {
                                (
                                    monitors::state.eq(MonitorState::Pending.as_str()),
                                    monitors::consecutive_failures.eq(0),
                                    monitors::state_changed_at.eq(None::<chrono::DateTime<Utc>>),
                                    monitors::cert_expires_at.eq(None::<chrono::DateTime<Utc>>),
                                )
                            }),
                            next_check_at.map(|at| monitors::next_check_at.eq(at)),
                            monitors::updated_at.eq(diesel::dsl::now),
                        ),
                    ))
                    .returning(MonitorRow::as_returning())
                    .get_result(conn)
                    .await?;
                let resolved = if url_changed {
                    close_open(conn, row.id).await?
                } else {
                    false
                };
                Ok((row, url_changed, resolved))
            }
            .scope_boxed()
        })
        .await?;
    tracing::info!(
        project_id = %project.id,
        monitor_id = %row.id,
        paused = row.paused,
        state_reset = reset,
        incident_resolved = resolved,
        "Monitor updated"
    );
    Ok(web::Json(super::view(&mut conn, row).await?))
}

/// Deletes a monitor (admin) with its checks, daily figures and incidents.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
    ),
    responses(
        (status = 204, description = "Deleted, with its history"),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn delete(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let deleted = diesel::delete(
        monitors::table
            .filter(monitors::id.eq(monitor_id))
            .filter(monitors::project_id.eq(project.id)),
    )
    .execute(&mut conn)
    .await?;
    if deleted == 0 {
        return Err(ApiError::Missing("monitor"));
    }
    tracing::info!(project_id = %project.id, monitor_id = %monitor_id, "Monitor deleted");
    Ok(HttpResponse::NoContent().finish())
}
