//! The public status page of a project: `GET /v1/status/{slug}`, without sign-in, while the
//! project enables it (`PATCH /v1/projects/{project_id}` with `{"status_page": {"enabled":
//! true, "slug": "acme"}}`, [`super::projects`]).
//!
//! It shows each monitor of the project that is not paused, by name: its current state
//! (`pending`, `up`, `down`) and its uptime per UTC day over the last 90 days (today
//! included, oldest first) from the daily counters `monitor_daily` (passed checks over checks;
//! `null` for a day without checks). Nothing else: no URL, no id, no settings, no error text,
//! since anyone may read it. An unknown slug and a disabled page are the same 404.
//!
//! Answers carry `Cache-Control: public, max-age=30`: a page read by many visitors is served
//! by caches in front of the api for up to one poll interval of a typical check, and each
//! replica reads the database at most that often per cache.

use std::collections::HashMap;

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::{monitor_daily, monitors, organizations, projects};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::monitors::views::ShownState;
use super::ManagementState;
use crate::error::ApiError;

/// Days shown, today included.
pub const DAYS: i64 = 90;
/// Seconds a cache may keep a page.
pub const MAX_AGE_SECS: u32 = 30;

/// One day of a monitor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StatusPageDay)]
pub struct DayView {
    /// The UTC day.
    pub day: NaiveDate,
    /// Passed checks over checks that day, in percent; `null` without checks.
    pub uptime_pct: Option<f64>,
}

/// A monitor as the public sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StatusPageMonitor)]
pub struct MonitorStatus {
    pub name: String,
    /// `pending`, `up` or `down` (paused monitors are not shown).
    pub state: ShownState,
    /// The last 90 UTC days, oldest first, today last.
    pub days: Vec<DayView>,
}

/// A public status page.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "slug": "acme",
    "monitors": [{"name": "checkout", "state": "up", "days": [
        {"day": "2026-12-01", "uptime_pct": 99.5},
        {"day": "2026-12-02", "uptime_pct": 100.0}
    ]}]
}))]
pub struct StatusPage {
    pub slug: String,
    /// The project's monitors that are not paused, by name.
    pub monitors: Vec<MonitorStatus>,
}

/// A project's public status page.
#[utoipa::path(
    get,
    path = "/v1/status/{slug}",
    tag = "status",
    params(("slug" = String, Path, description = "The project's status page slug")),
    responses(
        (status = 200, description = "The page; `Cache-Control: public, max-age=30`", body = StatusPage),
        (status = 404, description = "No enabled status page has this slug"),
    )
)]
pub async fn show(state: web::Data<ManagementState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner();
    let mut conn = state.conn().await?;
    let project: Option<Uuid> = projects::table
        .inner_join(organizations::table)
        .filter(projects::status_page_slug.eq(&slug))
        .filter(projects::status_page_enabled.eq(true))
        .filter(projects::deleted_at.is_null())
        .filter(organizations::deleted_at.is_null())
        .select(projects::id)
        .first(&mut conn)
        .await
        .optional()?;
    let project = project.ok_or(ApiError::Missing("status page"))?;
    let shown: Vec<(Uuid, String, String)> = monitors::table
        .filter(monitors::project_id.eq(project))
        .filter(monitors::paused.eq(false))
        .order((monitors::name.asc(), monitors::id.asc()))
        .select((monitors::id, monitors::name, monitors::state))
        .load(&mut conn)
        .await?;
    let today = Utc::now().date_naive();
    let first = today - TimeDelta::days(DAYS - 1);
    let ids: Vec<Uuid> = shown.iter().map(|(id, _, _)| *id).collect();
    let daily: HashMap<(Uuid, NaiveDate), (i32, i32)> = if ids.is_empty() {
        HashMap::new()
    } else {
        monitor_daily::table
            .filter(monitor_daily::monitor_id.eq_any(&ids))
            .filter(monitor_daily::day.ge(first))
            .filter(monitor_daily::day.le(today))
            .select((
                monitor_daily::monitor_id,
                monitor_daily::day,
                monitor_daily::checks,
                monitor_daily::ok_checks,
            ))
            .load::<(Uuid, NaiveDate, i32, i32)>(&mut conn)
            .await?
            .into_iter()
            .map(|(id, day, checks, ok)| ((id, day), (checks, ok)))
            .collect()
    };
    let monitors = shown
        .into_iter()
        .map(|(id, name, stored)| MonitorStatus {
            name,
            state: ShownState::of(false, &stored),
            days: first
                .iter_days()
                .take(DAYS as usize)
                .map(|day| DayView {
                    day,
                    uptime_pct: daily
                        .get(&(id, day))
                        .filter(|(checks, _)| *checks > 0)
                        .map(|(checks, ok)| f64::from(*ok) * 100.0 / f64::from(*checks)),
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(MAX_AGE_SECS),
        ]))
        .json(StatusPage { slug, monitors }))
}
