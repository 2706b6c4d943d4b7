//! What a rule's window holds: the matching events, and of those the ones with status `error`,
//! over `[now − window_s, now]` by the events' own timestamps, read from what was stored (so a
//! redelivered batch never counts twice: the rollups are exact, promise 3).
//!
//! Whole minutes come from `event_rollups` (the workers' deltas and the scheduler's compacted
//! rows, one index range scan however busy the project), the partial minutes at both edges
//! from `events` (at most two minutes of rows, on the `(project_id, timestamp)` index). A
//! filter value is bound as a parameter; NULL means "any".

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::rules::Rule;

/// Parameters: project, event_type, source, status (NULL: any), window start, first whole
/// minute, end of the last whole minute (the whole minutes are `[$6, $7)`; when there are none
/// $6 = $7 and the raw part covers everything from $5).
const OBSERVE: &str = r#"
SELECT coalesce(sum(matching), 0)::int8 AS matching, coalesce(sum(errors), 0)::int8 AS errors
FROM (
    SELECT sum(r.events) AS matching, sum(r.events) FILTER (WHERE r.status = 'error') AS errors
    FROM event_rollups r
    WHERE r.project_id = $1 AND r.bucket >= $6 AND r.bucket < $7
      AND ($2::text IS NULL OR r.event_type = $2)
      AND ($3::text IS NULL OR r.source = $3)
      AND ($4::text IS NULL OR r.status = $4)
    UNION ALL
    SELECT count(*) AS matching, count(*) FILTER (WHERE e.status = 'error') AS errors
    FROM events e
    WHERE e.project_id = $1
      AND ((e."timestamp" >= $5 AND e."timestamp" < $6) OR e."timestamp" >= $7)
      AND ($2::text IS NULL OR e.event_type = $2)
      AND ($3::text IS NULL OR e.source = $3)
      AND ($4::text IS NULL OR e.status = $4)
) parts
"#;

/// Counts over a rule's window.
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    /// Events matching the rule's filter.
    #[diesel(sql_type = Int8)]
    pub matching: i64,
    /// Of those, the ones with status `error`.
    #[diesel(sql_type = Int8)]
    pub errors: i64,
}

/// The window's bounds: its start, and the whole minutes inside it `[first, last_end)`.
pub fn bounds(now: DateTime<Utc>, window_s: i32) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let start = now - TimeDelta::seconds(i64::from(window_s));
    let minute = TimeDelta::minutes(1);
    let floor_start = start.duration_trunc(minute).unwrap_or(start);
    let first = if floor_start == start {
        start
    } else {
        floor_start + minute
    };
    let last_end = now.duration_trunc(minute).unwrap_or(now);
    if first >= last_end {
        // No whole minute inside: the raw part reads all of it.
        (start, start, start)
    } else {
        (start, first, last_end)
    }
}

/// Reads the window of `rule` ending at `now`.
pub async fn observe(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Observation> {
    let (start, first, last_end) = bounds(now, rule.window_s);
    diesel::sql_query(OBSERVE)
        .bind::<SqlUuid, _>(rule.project_id)
        .bind::<Nullable<Text>, _>(rule.filter_event_type.as_deref())
        .bind::<Nullable<Text>, _>(rule.filter_source.as_deref())
        .bind::<Nullable<Text>, _>(rule.filter_status.as_deref())
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(first)
        .bind::<Timestamptz, _>(last_end)
        .get_result(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn whole_minutes_sit_between_the_raw_edges() {
        let (start, first, last_end) = bounds(at("2026-12-02T10:05:30Z"), 300);
        assert_eq!(start, at("2026-12-02T10:00:30Z"));
        assert_eq!(first, at("2026-12-02T10:01:00Z"));
        assert_eq!(last_end, at("2026-12-02T10:05:00Z"));
    }

    #[test]
    fn a_window_on_minute_boundaries_is_all_rollups_but_the_current_minute() {
        let (start, first, last_end) = bounds(at("2026-12-02T10:05:00Z"), 300);
        assert_eq!((start, first), (at("2026-12-02T10:00:00Z"), at("2026-12-02T10:00:00Z")));
        assert_eq!(last_end, at("2026-12-02T10:05:00Z"));
    }

    #[test]
    fn a_short_window_is_read_raw() {
        let (start, first, last_end) = bounds(at("2026-12-02T10:05:20Z"), 30);
        assert_eq!(start, at("2026-12-02T10:04:50Z"));
        assert_eq!((first, last_end), (start, start));
    }
}
