//! Raw events: `GET /v1/events` (filtered, newest first, paged by cursor) and
//! `GET /v1/events/{event_id}`. Both read the partitioned `events` table through its
//! `(project_id, timestamp DESC)` index, always bounded in time: a page by its range, one event
//! by the timestamp `event_ids` holds for its id.

use actix_web::{web, HttpRequest};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::schema::{event_ids, events};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use pulse_shared::stored_event::StoredEvent;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::cursor::Cursor;
use super::params::{query_pairs, EventFilter, EventQuery};
use crate::error::ApiError;
use crate::management::ManagementState;

/// A page of `GET /v1/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Newest first, in (timestamp, id) order.
    pub data: Vec<StoredEvent>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Events of the caller's project, newest first.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "events_list",
    tag = "events",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "INVALID_PARAMETER (details.parameter): a bad value, an unknown parameter, or a range over PULSE_QUERY_MAX_RAW_DAYS"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn list_events(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<EventPage>, ApiError> {
    let pairs = query_pairs(&req)?;
    let filter = EventQuery::from_pairs(pairs)?.check(Utc::now(), state.config.max_raw_days)?;
    let mut conn = management.conn().await?;
    let mut rows: Vec<StoredEvent> = page_query(access.project_id, &filter)
        .select(StoredEvent::as_select())
        .load(&mut conn)
        .await?;
    let next_cursor = if rows.len() as i64 > filter.limit {
        rows.truncate(filter.limit as usize);
        rows.last().map(|last| {
            Cursor {
                start: filter.start,
                end: filter.end,
                timestamp: last.timestamp,
                id: last.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(web::Json(EventPage {
        data: rows,
        next_cursor,
    }))
}

/// The filtered page, one row more than the limit (telling whether another page follows).
pub(super) fn page_query(project: Uuid, filter: &EventFilter) -> events::BoxedQuery<'_, diesel::pg::Pg> {
    let mut query = events::table
        .filter(events::project_id.eq(project))
        .filter(events::timestamp.ge(filter.start))
        .filter(events::timestamp.lt(filter.end))
        .order((events::timestamp.desc(), events::id.desc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if let Some(after) = filter.after {
        // The first conjunct repeats what the OR implies: it is what bounds the index scan, so a
        // page starts at the cursor instead of walking the partition down to it.
        query = query.filter(events::timestamp.le(after.timestamp)).filter(
            events::timestamp
                .lt(after.timestamp)
                .or(events::timestamp.eq(after.timestamp).and(events::id.lt(after.id))),
        );
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(events::event_type.eq(event_type));
    }
    if let Some(source) = &filter.source {
        query = query.filter(events::source.eq(source));
    }
    if let Some(user_id) = &filter.user_id {
        query = query.filter(events::user_id.eq(user_id));
    }
    if let Some(session_id) = &filter.session_id {
        query = query.filter(events::session_id.eq(session_id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(events::status.eq(status));
    }
    if let Some(min_priority) = filter.min_priority {
        query = query.filter(events::priority.ge(min_priority));
    }
    if !filter.tags.is_empty() {
        query = query.filter(events::tags.contains(&filter.tags));
    }
    query
}

/// One event of the caller's project.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    operation_id = "events_get",
    tag = "events",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        ("event_id" = Uuid, Path, description = "The event's id"),
        ("project_id" = Option<Uuid>, Query, description = "Only with an access token: the project to read"),
    ),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        (status = 400, description = "event_id is not a UUID"),
        (status = 404, description = "No such event in the project (or no such project among the caller's)"),
        ReadFailures,
    )
)]
pub async fn get_event(
    access: ReadAccess,
    path: web::Path<Uuid>,
    management: web::Data<ManagementState>,
) -> Result<web::Json<StoredEvent>, ApiError> {
    let id = path.into_inner();
    let mut conn = management.conn().await?;
    // event_ids knows the timestamp, which prunes `events` to one partition.
    let found: Option<StoredEvent> = event_ids::table
        .inner_join(
            events::table.on(events::id
                .eq(event_ids::id)
                .and(events::project_id.eq(event_ids::project_id))
                .and(events::timestamp.eq(event_ids::timestamp))),
        )
        .filter(event_ids::id.eq(id))
        .filter(event_ids::project_id.eq(access.project_id))
        .select(StoredEvent::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    found.map(web::Json).ok_or(ApiError::Missing("event"))
}
