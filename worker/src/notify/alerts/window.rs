//! What a rule's window holds: the matching events, and of those the ones with status `error`,
//! over `[now − window_s, now]` by the events' own timestamps, read from what was stored (so a
//! redelivered batch never counts twice: the rollups are exact, promise 3).
//!
//! Whole minutes come from `event_rollups` (the workers' deltas and the scheduler's compacted
//! rows, one index range scan however busy the project), the current minute included (its
//! deltas hold what was stored so far). The one partial minute at the window's start is read
//! from `events` (on the `(project_id, timestamp)` index), whichever way scans fewer rows:
//! added (`[start, next minute)`) when the window starts late in its minute, or subtracted from
//! that minute's rollups (`[minute, start)`) when it starts early — at most 30 s of raw events,
//! so a busy project costs an evaluation little. A filter value is bound as a parameter; NULL
//! means "any".

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::rules::Rule;

/// Parameters: project, event_type, source, status (NULL: any), the rollup buckets
/// `[$5, $6]`, the raw range `[$7, $8)` and its sign $9 (1: added, -1: subtracted).
const OBSERVE: &str = r#"
SELECT coalesce(sum(matching), 0)::int8 AS matching, coalesce(sum(errors), 0)::int8 AS errors
FROM (
    SELECT sum(r.events) AS matching, sum(r.events) FILTER (WHERE r.status = 'error') AS errors
    FROM event_rollups r
    WHERE r.project_id = $1 AND r.bucket >= $5 AND r.bucket <= $6
      AND ($2::text IS NULL OR r.event_type = $2)
      AND ($3::text IS NULL OR r.source = $3)
      AND ($4::text IS NULL OR r.status = $4)
    UNION ALL
    SELECT $9 * count(*) AS matching, $9 * count(*) FILTER (WHERE e.status = 'error') AS errors
    FROM events e
    WHERE e.project_id = $1 AND e."timestamp" >= $7 AND e."timestamp" < $8
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

/// How a window is read: rollup buckets `[first_bucket, last_bucket]`, plus or minus
/// (`raw_sign`) the raw events of `[raw_from, raw_to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub first_bucket: DateTime<Utc>,
    pub last_bucket: DateTime<Utc>,
    pub raw_from: DateTime<Utc>,
    pub raw_to: DateTime<Utc>,
    pub raw_sign: i64,
}

/// The plan of the window `[now − window_s, now]`.
pub fn plan(now: DateTime<Utc>, window_s: i32) -> Plan {
    let start = now - TimeDelta::seconds(i64::from(window_s));
    let minute = TimeDelta::minutes(1);
    let floor_start = start.duration_trunc(minute).unwrap_or(start);
    let last_bucket = now.duration_trunc(minute).unwrap_or(now);
    if start - floor_start > TimeDelta::seconds(30) {
        // Late in its minute: the minute's rest, added.
        Plan {
            first_bucket: floor_start + minute,
            last_bucket,
            raw_from: start,
            raw_to: floor_start + minute,
            raw_sign: 1,
        }
    } else {
        // Early (or on the boundary): the whole minute, less what came before the start.
        Plan {
            first_bucket: floor_start,
            last_bucket,
            raw_from: floor_start,
            raw_to: start,
            raw_sign: -1,
        }
    }
}

/// Reads the window of `rule` ending at `now`.
pub async fn observe(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Observation> {
    let plan = plan(now, rule.window_s);
    diesel::sql_query(OBSERVE)
        .bind::<SqlUuid, _>(rule.project_id)
        .bind::<Nullable<Text>, _>(rule.filter_event_type.as_deref())
        .bind::<Nullable<Text>, _>(rule.filter_source.as_deref())
        .bind::<Nullable<Text>, _>(rule.filter_status.as_deref())
        .bind::<Timestamptz, _>(plan.first_bucket)
        .bind::<Timestamptz, _>(plan.last_bucket)
        .bind::<Timestamptz, _>(plan.raw_from)
        .bind::<Timestamptz, _>(plan.raw_to)
        .bind::<Int8, _>(plan.raw_sign)
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
    fn a_window_starting_late_in_its_minute_adds_the_rest_of_it() {
        let plan = plan(at("2026-12-02T10:05:20Z"), 270);
        // Starts at 10:00:50: ten seconds of raw events, added.
        assert_eq!(plan.raw_from, at("2026-12-02T10:00:50Z"));
        assert_eq!(plan.raw_to, at("2026-12-02T10:01:00Z"));
        assert_eq!(plan.raw_sign, 1);
        assert_eq!(plan.first_bucket, at("2026-12-02T10:01:00Z"));
        assert_eq!(
            plan.last_bucket,
            at("2026-12-02T10:05:00Z"),
            "the current minute from its deltas"
        );
    }

    #[test]
    fn a_window_starting_early_in_its_minute_subtracts_the_part_before_it() {
        let plan = plan(at("2026-12-02T10:05:10Z"), 300);
        assert_eq!(plan.first_bucket, at("2026-12-02T10:00:00Z"));
        assert_eq!(
            (plan.raw_from, plan.raw_to),
            (at("2026-12-02T10:00:00Z"), at("2026-12-02T10:00:10Z"))
        );
        assert_eq!(plan.raw_sign, -1);
        assert_eq!(plan.last_bucket, at("2026-12-02T10:05:00Z"));
    }

    #[test]
    fn a_window_on_a_minute_boundary_is_all_rollups() {
        let plan = plan(at("2026-12-02T10:05:00Z"), 300);
        assert_eq!(plan.raw_from, plan.raw_to, "no raw events");
        assert_eq!(plan.first_bucket, at("2026-12-02T10:00:00Z"));
    }

    #[test]
    fn a_short_window_inside_two_minutes_reads_at_most_thirty_seconds_raw() {
        for second in 0..60 {
            let now = at("2026-12-02T10:05:00Z") + TimeDelta::seconds(second);
            let plan = plan(now, 10);
            assert!(plan.raw_to - plan.raw_from <= TimeDelta::seconds(30), "{plan:?}");
            assert!(
                plan.first_bucket <= plan.last_bucket + TimeDelta::minutes(1),
                "{plan:?}"
            );
        }
    }
}
