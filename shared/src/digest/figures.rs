//! What a project's UTC day held, for its digest: events, unique users, the top event types,
//! the error ratio, the alert incidents that fired or were open, and each monitor's downtime.
//!
//! Event figures come from the rollups, never from a day of raw events: a day is whole hours,
//! so its rows are `event_rollups_hourly` (or `event_rollups_hourly_totals`) for the hours plus
//! the minute deltas of `event_rollups` the compaction has not folded yet (each delta is in
//! exactly one of the two: the compaction moves it in one transaction), as the api's
//! `GET /v1/events/aggregated` reads whole hours. Counts add up in SQL; unique users are the
//! union of the hourly totals' HyperLogLog sketches and the deltas' (`pulse_shared::rollup`,
//! 0.8 % standard error, exact-ish for small sets). The error ratio is the share of events
//! whose `status` is `error`.
//!
//! Incidents are read from `alert_incidents` (started before the day ended and not resolved
//! before it began) and `monitor_incidents` (the same overlap), a monitor's downtime being the
//! seconds of its incidents inside the day (clipped to the day, and to now for one still open).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{day_range, TOP_EVENT_TYPES};
use crate::rollup::Distinct;

/// Most incidents a digest lists one by one (the count says how many there were).
pub const LISTED_INCIDENTS: i64 = 20;

/// The figures of one project's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub project_id: Uuid,
    pub day: NaiveDate,
    pub events: i64,
    /// Events whose `status` is `error`.
    pub errors: i64,
    pub unique_users: u64,
    /// The busiest event types, most events first (ties by name), at most [`TOP_EVENT_TYPES`].
    pub top_event_types: Vec<(String, i64)>,
    /// Alert incidents that fired during the day or were still firing in it.
    pub incident_count: i64,
    /// The first [`LISTED_INCIDENTS`] of them, oldest first.
    pub incidents: Vec<AlertIncident>,
    /// Monitors that were down during the day, longest downtime first.
    pub downtime: Vec<MonitorDowntime>,
}

impl DayFigures {
    /// The share of events with `status = 'error'` (`None` without events).
    pub fn error_ratio(&self) -> Option<f64> {
        (self.events > 0).then(|| self.errors as f64 / self.events as f64)
    }
}

/// An alert incident as a digest lists it.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct AlertIncident {
    #[diesel(sql_type = Text)]
    pub rule_name: String,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One monitor's downtime inside the day.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct MonitorDowntime {
    #[diesel(sql_type = SqlUuid)]
    pub monitor_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Its incidents that overlapped the day.
    #[diesel(sql_type = BigInt)]
    pub incidents: i64,
    /// Seconds down within the day.
    #[diesel(sql_type = BigInt)]
    pub down_s: i64,
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = BigInt)]
    errors: i64,
}

#[derive(QueryableByName)]
struct TypeCount {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = BigInt)]
    events: i64,
}

#[derive(QueryableByName)]
struct UserSketch {
    #[diesel(sql_type = Bytea)]
    users: Vec<u8>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The rollup rows by dimensions of the project's day `[$2, $3)`: the hourly rows and the
/// deltas not folded yet.
const DAY_ROWS: &str = "(SELECT event_type, status, events FROM event_rollups_hourly
                         WHERE project_id = $1 AND bucket >= $2 AND bucket < $3
                     UNION ALL
                     SELECT event_type, status, events FROM event_rollups
                         WHERE project_id = $1 AND bucket >= $2 AND bucket < $3 AND NOT compacted) AS day_rows";

/// Alert incidents overlapping `[$2, $3)`.
const INCIDENTS_OF_DAY: &str = "FROM alert_incidents
     WHERE project_id = $1 AND started_at < $3 AND (resolved_at IS NULL OR resolved_at >= $2)";

/// Gathers the figures of `project` for the UTC day `day`.
pub async fn gather(conn: &mut AsyncPgConnection, project: Uuid, day: NaiveDate) -> QueryResult<DayFigures> {
    let (start, end) = day_range(day);
    let totals: Totals = diesel::sql_query(format!(
        "SELECT coalesce(sum(events), 0)::int8 AS events,
                coalesce(sum(events) FILTER (WHERE status = 'error'), 0)::int8 AS errors
         FROM {DAY_ROWS}"
    ))
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .get_result(conn)
    .await?;
    let top: Vec<TypeCount> = diesel::sql_query(format!(
        "SELECT event_type, sum(events)::int8 AS events FROM {DAY_ROWS}
         GROUP BY event_type ORDER BY 2 DESC, 1 LIMIT $4"
    ))
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .bind::<BigInt, _>(TOP_EVENT_TYPES)
    .load(conn)
    .await?;
    let sketches: Vec<UserSketch> = diesel::sql_query(
        "SELECT users FROM event_rollups_hourly_totals
             WHERE project_id = $1 AND bucket >= $2 AND bucket < $3 AND users IS NOT NULL
         UNION ALL
         SELECT users FROM event_rollups
             WHERE project_id = $1 AND bucket >= $2 AND bucket < $3 AND NOT compacted AND users IS NOT NULL",
    )
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .load(conn)
    .await?;
    let mut users = Distinct::default();
    for sketch in sketches {
        let decoded = Distinct::decode(&sketch.users)
            .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
        users.merge(&decoded);
    }
    let incident_count: Count = diesel::sql_query(format!("SELECT count(*) AS count {INCIDENTS_OF_DAY}"))
        .bind::<SqlUuid, _>(project)
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .get_result(conn)
        .await?;
    let incidents: Vec<AlertIncident> = diesel::sql_query(format!(
        "SELECT rule_name, started_at, resolved_at {INCIDENTS_OF_DAY} ORDER BY started_at, id LIMIT $4"
    ))
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .bind::<BigInt, _>(LISTED_INCIDENTS)
    .load(conn)
    .await?;
    let downtime: Vec<MonitorDowntime> = diesel::sql_query(
        "SELECT m.id AS monitor_id, m.name, count(*)::int8 AS incidents,
                round(sum(greatest(0, extract(epoch FROM
                    least(coalesce(i.resolved_at, now()), $3) - greatest(i.started_at, $2)))))::int8 AS down_s
         FROM monitor_incidents i JOIN monitors m ON m.id = i.monitor_id
         WHERE i.project_id = $1 AND i.started_at < $3 AND (i.resolved_at IS NULL OR i.resolved_at > $2)
         GROUP BY m.id, m.name
         ORDER BY down_s DESC, m.name, m.id",
    )
    .bind::<SqlUuid, _>(project)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .load(conn)
    .await?;
    Ok(DayFigures {
        project_id: project,
        day,
        events: totals.events,
        errors: totals.errors,
        unique_users: users.count(),
        top_event_types: top.into_iter().map(|row| (row.event_type, row.events)).collect(),
        incident_count: incident_count.count,
        incidents,
        downtime,
    })
}
