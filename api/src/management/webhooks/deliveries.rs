//! The delivery log: `GET …/webhooks/{webhook_id}/deliveries` (one endpoint's),
//! `GET …/webhooks/{webhook_id}/deliveries/{delivery_id}` (one delivery with its attempts) and
//! `GET /v1/projects/{project_id}/webhooks/deliveries` (every endpoint of the project, or the
//! one `webhook_id` names). Members read it. Lists page as [`super::page`] says, newest
//! first, and filter by `status`.

use actix_web::web;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::webhook_deliveries;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::log::{self, DeliveryDetail, DeliveryPage, DeliveryRow, DeliveryStatus, DeliveryView};
use super::page::PageRequest;
use crate::error::ApiError;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::ManagementState;

/// `GET …/webhooks/{webhook_id}/deliveries`: the filter and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveries {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Deliveries per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/projects/{project_id}/webhooks/deliveries`: the filters and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListProjectDeliveries {
    /// Only this endpoint's deliveries.
    pub webhook_id: Option<Uuid>,
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Deliveries per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Which deliveries a list shows: of a project, of an endpoint, in a state.
#[derive(Debug, Default)]
struct Selection {
    project: Option<Uuid>,
    webhook: Option<Uuid>,
    status: Option<DeliveryStatus>,
}

async fn page(conn: &mut AsyncPgConnection, selection: Selection, page: PageRequest) -> Result<DeliveryPage, ApiError> {
    let mut select: webhook_deliveries::BoxedQuery<'_, Pg, _> = webhook_deliveries::table
        .order(webhook_deliveries::id.desc())
        .limit(page.fetch())
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(project) = selection.project {
        select = select.filter(webhook_deliveries::project_id.eq(project));
    }
    if let Some(webhook) = selection.webhook {
        select = select.filter(webhook_deliveries::webhook_id.eq(webhook));
    }
    if let Some(status) = selection.status {
        select = select.filter(webhook_deliveries::status.eq(status.as_str()));
    }
    if let Some(before) = page.before {
        select = select.filter(webhook_deliveries::id.lt(before));
    }
    let rows: Vec<DeliveryRow> = select.load(conn).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.id);
    Ok(DeliveryPage {
        data: rows.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    })
}

/// One endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries",
    operation_id = "webhooks_list_deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
        ListDeliveries,
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown status or parameter, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such endpoint in it"),
    )
)]
pub async fn list(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<ListDeliveries>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    let request = PageRequest::new(query.limit, query.cursor.as_deref())?;
    let (project_id, webhook_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let webhook = super::find(&mut conn, project.id, webhook_id).await?;
    let selection = Selection {
        webhook: Some(webhook.id),
        status: query.status,
        ..Selection::default()
    };
    let answer = page(&mut conn, selection, request).await?;
    Ok(web::Json(answer))
}

/// The deliveries of every endpoint of the project (or of `webhook_id`), newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks/deliveries",
    operation_id = "webhooks_list_project_deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), ListProjectDeliveries),
    responses(
        (status = 200, description = "A page of deliveries (empty for a webhook_id that is not the project's)", body = DeliveryPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), webhook_id is not a UUID, an unknown status or parameter, or project_id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations"),
    )
)]
pub async fn list_project(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<Uuid>,
    query: web::Query<ListProjectDeliveries>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    let request = PageRequest::new(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, path.into_inner(), Role::Member).await?;
    let selection = Selection {
        project: Some(project.id),
        webhook: query.webhook_id,
        status: query.status,
    };
    let answer = page(&mut conn, selection, request).await?;
    Ok(web::Json(answer))
}

/// One delivery with its attempt log.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}",
    operation_id = "webhooks_get_delivery",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("webhook_id" = Uuid, Path, description = "Endpoint id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    responses(
        (status = 200, description = "The delivery and every attempt, in order", body = DeliveryDetail),
        (status = 400, description = "A path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project, endpoint or delivery"),
    )
)]
pub async fn get(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<web::Json<DeliveryDetail>, ApiError> {
    let (project_id, webhook_id, delivery_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let webhook = super::find(&mut conn, project.id, webhook_id).await?;
    let delivery = log::load(&mut conn, webhook.id, delivery_id).await?;
    let attempt_log = log::attempts(&mut conn, delivery.id).await?;
    Ok(web::Json(DeliveryDetail {
        delivery: delivery.into(),
        attempt_log,
    }))
}
