//! A monitor's history: `GET …/monitors/{monitor_id}/checks` (every check, newest first, in an
//! optional `from`/`to` time range) and `GET …/monitors/{monitor_id}/incidents` (its down
//! periods, newest first). Members read them. Both page with the management lists' `limit`
//! bounds (`webhooks::page`); their cursors carry the position in their order: a check's
//! `(checked_at, id)`, as below, and an incident's `(started_at, id)`, as `alerts::page` writes
//! it for alert incidents. Both read on the `(monitor_id, time DESC, id DESC)` indexes.
//!
//! Check cursor wire form: URL-safe base64 (no padding) of `k1.<checked_at in µs since the
//! epoch>.<id>`.

use actix_web::web;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::{monitor_checks, monitor_incidents};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::views::{CheckPage, CheckRow, CheckView, MonitorIncidentPage, MonitorIncidentRow, MonitorIncidentView};
use crate::error::ApiError;
use crate::management::alerts::page::IncidentPageRequest;
use crate::management::authorization::{require_project, AuthUser, Role};
use crate::management::webhooks::page::{checked_limit, decoded_cursor, finish_page};
use crate::management::ManagementState;

/// The range and the page of a check list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListChecks {
    /// Only checks at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only checks before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Checks per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (with the same `from` and `to`).
    pub cursor: Option<String>,
}

/// The page of an incident list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMonitorIncidents {
    /// Incidents per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn encode((checked_at, id): (DateTime<Utc>, i64)) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1.{}.{id}", checked_at.timestamp_micros()))
}

fn decode(text: &str) -> Option<(DateTime<Utc>, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let (micros, id) = std::str::from_utf8(&bytes).ok()?.strip_prefix("k1.")?.split_once('.')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

/// A monitor's checks, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}/checks",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
        ListChecks,
    ),
    responses(
        (status = 200, description = "A page of checks", body = CheckPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor, from: after to), a time that is not RFC 3339, an unknown parameter, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn checks(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<ListChecks>,
) -> Result<web::Json<CheckPage>, ApiError> {
    let limit = checked_limit(query.limit)?;
    let after = decoded_cursor(query.cursor.as_deref(), decode)?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            return Err(ApiError::InvalidParameter {
                parameter: "from",
                message: "from must not be after to".into(),
            });
        }
    }
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let monitor = super::find(&mut conn, project.id, monitor_id, false).await?;
    let mut select = monitor_checks::table
        .filter(monitor_checks::monitor_id.eq(monitor.id))
        .order((monitor_checks::checked_at.desc(), monitor_checks::id.desc()))
        .limit(limit + 1)
        .select(CheckRow::as_select())
        .into_boxed::<Pg>();
    if let Some(from) = query.from {
        select = select.filter(monitor_checks::checked_at.ge(from));
    }
    if let Some(to) = query.to {
        select = select.filter(monitor_checks::checked_at.lt(to));
    }
    if let Some((checked_at, id)) = after {
        select = select.filter(
            monitor_checks::checked_at
                .lt(checked_at)
                .or(monitor_checks::checked_at.eq(checked_at).and(monitor_checks::id.lt(id))),
        );
    }
    let rows: Vec<CheckRow> = select.load(&mut conn).await?;
    let (rows, next_cursor) = finish_page(limit, rows, |row| encode((row.checked_at, row.id)));
    Ok(web::Json(CheckPage {
        data: rows.into_iter().map(CheckView::from).collect(),
        next_cursor,
    }))
}

/// A monitor's incidents (down periods), newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/monitors/{monitor_id}/incidents",
    operation_id = "monitors_list_incidents",
    tag = "monitors",
    security(("bearer" = [])),
    params(
        ("project_id" = Uuid, Path, description = "Project id"),
        ("monitor_id" = Uuid, Path, description = "Monitor id"),
        ListMonitorIncidents,
    ),
    responses(
        (status = 200, description = "A page of incidents", body = MonitorIncidentPage),
        (status = 400, description = "INVALID_PARAMETER (limit, cursor), an unknown parameter, or a path id is not a UUID"),
        (status = 401, description = "Missing, invalid or expired access token"),
        (status = 404, description = "No such project in the caller's organizations, or no such monitor in it"),
    )
)]
pub async fn incidents(
    caller: AuthUser,
    state: web::Data<ManagementState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<ListMonitorIncidents>,
) -> Result<web::Json<MonitorIncidentPage>, ApiError> {
    let page = IncidentPageRequest::new(query.limit, query.cursor.as_deref())?;
    let (project_id, monitor_id) = path.into_inner();
    let mut conn = state.conn().await?;
    let (project, _) = require_project(&mut conn, caller.user_id, project_id, Role::Member).await?;
    let monitor = super::find(&mut conn, project.id, monitor_id, false).await?;
    let mut select = monitor_incidents::table
        .filter(monitor_incidents::monitor_id.eq(monitor.id))
        .order((monitor_incidents::started_at.desc(), monitor_incidents::id.desc()))
        .limit(page.fetch())
        .select(MonitorIncidentRow::as_select())
        .into_boxed::<Pg>();
    if let Some((started_at, id)) = page.after {
        select = select.filter(
            monitor_incidents::started_at
                .lt(started_at)
                .or(monitor_incidents::started_at
                    .eq(started_at)
                    .and(monitor_incidents::id.lt(id))),
        );
    }
    let rows: Vec<MonitorIncidentRow> = select.load(&mut conn).await?;
    let (rows, next_cursor) = page.finish(rows, |row| (row.started_at, row.id));
    let now = Utc::now();
    Ok(web::Json(MonitorIncidentPage {
        data: rows.into_iter().map(|row| MonitorIncidentView::new(row, now)).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_cursors_round_trip() {
        let position = (
            DateTime::from_timestamp_micros(1_764_583_200_123_456).expect("time"),
            4711,
        );
        assert_eq!(decode(&encode(position)), Some(position));
        for bad in [
            "",
            "nope",
            &URL_SAFE_NO_PAD.encode("k1.x.1"),
            &URL_SAFE_NO_PAD.encode("i1.1.1"),
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
