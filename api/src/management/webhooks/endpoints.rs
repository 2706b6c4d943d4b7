//! Webhook endpoints: `GET/POST /v1/projects/{project_id}/webhooks` and
//! `GET/PATCH/DELETE …/webhooks/{webhook_id}`. Members read; admins create, change and delete.
//!
//! The fields and their rules are in [`super::rules`]. The signing secret is made here (or
//! taken from the caller, once, at creation) and shown only in the creation answer and by
//! `GET …/secret`. Nothing is sent to a disabled endpoint (`enabled: false`, set by a user or
//! by the worker); `enabled: true` on a disabled endpoint also clears `disabled_reason`,
//! `disabled_at` and `failing_since`, so the auto-disable clock starts afresh. Deleting an
//! endpoint deletes its deliveries and their attempts.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::webhooks;
use pulse_shared::webhook::secret::Secret;
use pulse_shared::whole;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::page::PageRequest;
use super::rules::{self, Filter};
use super::views::{CreatedWebhook, WebhookPage, WebhookRow, WebhookView};
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::fields::check_name;
use crate::management::json::Json;
use crate::management::{is_unique_violation, ManagementState};

/// `disabled_reason` of an endpoint a user disabled.
pub const DISABLED_BY_USER: &str = "disabled through the management API (enabled: false)";

/// `POST /v1/projects/{project_id}/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "orders",
    "url": "https://hooks.example.com/pulse",
    "event_types": ["event.created"],
    "filter": {"event_types": ["checkout.completed"]},
    "headers": {"X-Team": "orders"},
    "max_attempts": 9
}))]
pub struct CreateWebhook {
    /// 1 to 200 characters after trimming.
    pub name: String,
    /// `http` or `https`, to a public address (or one in `PULSE_WEBHOOK_ALLOW_NETS`).
    pub url: String,
    /// At most 1000 characters; default empty.
    #[serde(default)]
    pub description: Option<String>,
    /// One or more of `event.created`, `alert.fired`, `alert.resolved`, `monitor.down`,
    /// `monitor.up`, `webhook.disabled`.
    pub event_types: Vec<String>,
    /// For `event.created`: only events with one of these `event_types` and `sources`.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Extra request headers (at most 20; not `content-type`, `host`, `user-agent`, … nor
    /// `webhook-*`).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Attempts of one delivery, the first included, 1 to 50. Default: the retry schedule's
    /// length plus one (`PULSE_WEBHOOK_RETRY_SCHEDULE`).
    #[serde(default, deserialize_with = "whole::option")]
    pub max_attempts: Option<i32>,
    /// Bring your own signing secret (`whsec_` + base64 of 24 to 64 bytes); default: a new
    /// one of 32 random bytes.
    #[serde(default)]
    pub secret: Option<String>,
}

/// `PATCH …/webhooks/{webhook_id}`: the fields to change; `"filter": null` removes the filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "url": "https://hooks.example.com/v2"}))]
pub struct UpdateWebhook {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "rules::present")]
    #[schema(value_type = Option<Filter>)]
    pub filter: Option<Option<Filter>>,
    /// Replaces every custom header.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// `true` on a disabled endpoint also clears `disabled_reason`, `disabled_at` and
    /// `failing_since`.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "whole::option")]
    pub max_attempts: Option<i32>,
}

/// `GET /v1/projects/{project_id}/webhooks`: the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooks {
    /// Endpoints per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Creates an endpoint (admin); the answer carries its signing secret.
#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id")),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created, with its secret", body = CreatedWebhook),
        (status = 400, description = "INVALID_FIELD (details.field: url refused by the SSRF guard or not http(s), event_types, filter.*, headers, max_attempts, secret, name, description), invalid JSON, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations"),
        (status = 409, description = "SECRET_IN_USE: another endpoint has the secret given"),
    )
)]
pub async fn create(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    body: Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name("name", &body.name)?;
    let description = rules::check_description(body.description.as_deref().unwrap_or(""))?;
    let event_types = rules::check_event_types(&body.event_types)?;
    let filter = rules::check_filter(body.filter)?;
    let headers = rules::check_headers(body.headers.unwrap_or_default())?;
    let max_attempts = rules::check_max_attempts(body.max_attempts.unwrap_or(state.webhooks.default_max_attempts))?;
    let secret = match body.secret.as_deref() {
        Some(text) => rules::check_secret(text)?,
        None => Secret::generate(),
    };
    let enabled = body.enabled.unwrap_or(true);
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Admin).await?;
    // After the role check: resolving names for callers who may not create is no service.
    let url = rules::check_url(&state.webhooks.guard, &body.url).await?;
    let now = Utc::now();
    let inserted = diesel::insert_into(webhooks::table)
        .values((
            webhooks::id.eq(Uuid::now_v7()),
            webhooks::project_id.eq(project.id),
            webhooks::name.eq(&name),
            webhooks::url.eq(&url),
            webhooks::description.eq(&description),
            webhooks::event_types.eq(&event_types),
            webhooks::filter_event_types.eq(&filter.event_types),
            webhooks::filter_sources.eq(&filter.sources),
            webhooks::headers.eq(&headers),
            webhooks::enabled.eq(enabled),
            webhooks::disabled_reason.eq((!enabled).then_some(DISABLED_BY_USER)),
            webhooks::disabled_at.eq((!enabled).then_some(now)),
            webhooks::max_attempts.eq(max_attempts),
            webhooks::secret.eq(secret.as_str()),
            webhooks::created_at.eq(now),
            webhooks::updated_at.eq(now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(&mut conn)
        .await;
    let row = match inserted {
        Err(error) if is_unique_violation(&error, rules::SECRET_UNIQUE) => return Err(rules::secret_in_use()),
        other => other?,
    };
    tracing::info!(project_id = %project.id, webhook_id = %row.id, "Webhook endpoint created");
    Ok(HttpResponse::Created().json(CreatedWebhook {
        secret: secret.as_str().to_owned(),
        webhook: WebhookView::new(row, now),
    }))
}

/// The project's endpoints, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListWebhooks),
    responses(
        (status = 200, description = "A page of endpoints (never their secrets)", body = WebhookPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown parameter, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    query: web::Query<ListWebhooks>,
) -> Result<web::Json<WebhookPage>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let mut select = webhooks::table
        .filter(webhooks::project_id.eq(project.id))
        .order(webhooks::id.desc())
        .limit(page.fetch())
        .select(WebhookRow::as_select())
        .into_boxed();
    if let Some(before) = page.before {
        select = select.filter(webhooks::id.lt(before));
    }
    let rows: Vec<WebhookRow> = select.load(&mut conn).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.id);
    let now = Utc::now();
    Ok(web::Json(WebhookPage {
        data: rows.into_iter().map(|row| WebhookView::new(row, now)).collect(),
        next_cursor,
    }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    responses(
        (status = 200, description = "The endpoint (never its secret)", body = WebhookView),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let row = super::find(&mut conn, project.id, webhook_id).await?;
    Ok(web::Json(WebhookView::new(row, Utc::now())))
}

/// Changes an endpoint (admin).
#[utoipa::path(
    patch,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The updated endpoint", body = WebhookView),
        (status = 400, description = "INVALID_FIELD (details.field), an unknown field, invalid JSON, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
    )
)]
pub async fn update(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateWebhook>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let body = body.into_inner();
    let name = body.name.as_deref().map(|name| check_name("name", name)).transpose()?;
    let description = body.description.as_deref().map(rules::check_description).transpose()?;
    let event_types = body.event_types.as_deref().map(rules::check_event_types).transpose()?;
    let filter = body.filter.map(rules::check_filter).transpose()?;
    let headers = body.headers.map(rules::check_headers).transpose()?;
    let max_attempts = body.max_attempts.map(rules::check_max_attempts).transpose()?;
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let current = super::find(&mut conn, project.id, webhook_id).await?;
    let url = match body.url.as_deref() {
        Some(url) => Some(rules::check_url(&state.webhooks.guard, url).await?),
        None => None,
    };
    let now = Utc::now();
    let enable = (body.enabled == Some(true) && !current.enabled).then_some((
        webhooks::enabled.eq(true),
        webhooks::disabled_reason.eq(None::<String>),
        webhooks::disabled_at.eq(None::<chrono::DateTime<Utc>>),
        webhooks::failing_since.eq(None::<chrono::DateTime<Utc>>),
    ));
    let disable = (body.enabled == Some(false) && current.enabled).then_some((
        webhooks::enabled.eq(false),
        webhooks::disabled_reason.eq(Some(DISABLED_BY_USER)),
        webhooks::disabled_at.eq(Some(now)),
    ));
    let row: WebhookRow = diesel::update(webhooks::table.find(current.id))
        .set((
            name.map(|name| webhooks::name.eq(name)),
            url.map(|url| webhooks::url.eq(url)),
            description.map(|description| webhooks::description.eq(description)),
            event_types.map(|types| webhooks::event_types.eq(types)),
            filter.map(|filter| {
                (
                    webhooks::filter_event_types.eq(filter.event_types),
                    webhooks::filter_sources.eq(filter.sources),
                )
            }),
            headers.map(|headers| webhooks::headers.eq(headers)),
            max_attempts.map(|attempts| webhooks::max_attempts.eq(attempts)),
            enable,
            disable,
            webhooks::updated_at.eq(now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(&mut conn)
        .await?;
    tracing::info!(project_id = %project.id, webhook_id = %row.id, enabled = row.enabled, "Webhook endpoint updated");
    Ok(web::Json(WebhookView::new(row, now)))
}

/// Deletes an endpoint (admin) with its deliveries and their attempts.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
    ),
    responses(
        (status = 204, description = "Deleted, with its delivery log"),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 403, description = "The caller is a member but not an admin"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
    )
)]
pub async fn delete(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Admin).await?;
    let deleted = diesel::delete(
        webhooks::table
            .filter(webhooks::id.eq(webhook_id))
            .filter(webhooks::project_id.eq(project.id)),
    )
    .execute(&mut conn)
    .await?;
    if deleted == 0 {
        return Err(ApiError::Missing("webhook"));
    }
    tracing::info!(project_id = %project.id, webhook_id = %webhook_id, "Webhook endpoint deleted");
    Ok(HttpResponse::NoContent().finish())
}
