//! The rollups of a batch: one row per (project, UTC minute, event_type, source, status) over
//! the batch's events that were new, written in the batch's transaction (`store.rs`), so a
//! redelivered batch adds nothing (promise 3). Rows are insert-only (see the migration):
//! concurrent workers never wait on each other's rows, and queries merge them.
//!
//! Per row: a `pulse_shared::rollup::Summary` (the count; the count, sum, min and max of
//! `duration_ms`; sketches of the distinct users and sessions and of the durations).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Array, Bytea, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::rollup::Summary;
use uuid::Uuid;

use super::store::Columns;

/// Inserts the rows of [`Rollups`], one array per column.
const INSERT_ROLLUPS: &str = r#"
INSERT INTO event_rollups (project_id, bucket, event_type, source, status, events, durations,
                           duration_sum, duration_min, duration_max, users, sessions,
                           duration_sketch)
SELECT project_id, bucket, event_type, source, status, events, durations, duration_sum::numeric,
       duration_min, duration_max, users, sessions, duration_sketch
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int8[],
            $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::bytea[], $12::bytea[],
            $13::bytea[])
    AS t (project_id, bucket, event_type, source, status, events, durations, duration_sum,
          duration_min, duration_max, users, sessions, duration_sketch)
"#;

type Key<'a> = (Uuid, DateTime<Utc>, &'a str, Option<&'a str>, Option<&'a str>);

/// The rollup rows of a batch's new events.
pub struct Rollups<'a> {
    rows: BTreeMap<Key<'a>, Summary>,
}

impl<'a> Rollups<'a> {
    /// Summarizes the events of `columns` whose id is in `new`.
    pub fn of(columns: &'a Columns, new: &HashSet<Uuid>) -> Self {
        let mut rows: BTreeMap<Key<'a>, Summary> = BTreeMap::new();
        for index in 0..columns.len() {
            if !new.contains(&columns.ids[index]) {
                continue;
            }
            let bucket = minute(columns.timestamps[index]);
            let key = (
                columns.project_ids[index],
                bucket,
                columns.event_types[index].as_str(),
                columns.sources[index].as_deref(),
                columns.statuses[index].as_deref(),
            );
            rows.entry(key).or_default().record(
                columns.durations[index],
                columns.user_ids[index].as_deref(),
                columns.session_ids[index].as_deref(),
            );
        }
        Self { rows }
    }

    /// Inserts the rows (nothing when the batch had no new event).
    pub async fn write(self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let mut projects = Vec::with_capacity(n);
        let mut buckets = Vec::with_capacity(n);
        let mut event_types = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        let mut durations = Vec::with_capacity(n);
        let mut sums = Vec::with_capacity(n);
        let mut mins = Vec::with_capacity(n);
        let mut maxs = Vec::with_capacity(n);
        let mut users = Vec::with_capacity(n);
        let mut sessions = Vec::with_capacity(n);
        let mut sketches = Vec::with_capacity(n);
        for ((project, bucket, event_type, source, status), summary) in self.rows {
            projects.push(project);
            buckets.push(bucket);
            event_types.push(event_type);
            sources.push(source);
            statuses.push(status);
            events.push(summary.events);
            durations.push(summary.durations);
            sums.push(summary.duration_sum.to_string());
            mins.push(summary.duration_min);
            maxs.push(summary.duration_max);
            users.push(summary.users.map(|sketch| sketch.encode()));
            sessions.push(summary.sessions.map(|sketch| sketch.encode()));
            sketches.push(summary.sketch.map(|sketch| sketch.encode()));
        }
        diesel::sql_query(INSERT_ROLLUPS)
            .bind::<Array<SqlUuid>, _>(&projects)
            .bind::<Array<Timestamptz>, _>(&buckets)
            .bind::<Array<Text>, _>(&event_types)
            .bind::<Array<Nullable<Text>>, _>(&sources)
            .bind::<Array<Nullable<Text>>, _>(&statuses)
            .bind::<Array<Int8>, _>(&events)
            .bind::<Array<Int8>, _>(&durations)
            .bind::<Array<Text>, _>(&sums)
            .bind::<Array<Nullable<Int8>>, _>(&mins)
            .bind::<Array<Nullable<Int8>>, _>(&maxs)
            .bind::<Array<Nullable<Bytea>>, _>(&users)
            .bind::<Array<Nullable<Bytea>>, _>(&sessions)
            .bind::<Array<Nullable<Bytea>>, _>(&sketches)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// How many rows the batch adds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.rows.len()
    }
}

/// The UTC minute `time` falls in.
fn minute(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::minutes(1)).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_shared::envelope::EventEnvelope;
    use pulse_shared::event::Event;

    fn envelope(id: Uuid, at: &str, event_type: &str, user: Option<&str>, duration: Option<i64>) -> EventEnvelope {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": id, "timestamp": at, "event_type": event_type, "user_id": user, "duration_ms": duration,
        }))
        .expect("event");
        EventEnvelope::new(Uuid::nil(), Utc::now(), event)
    }

    #[test]
    fn only_new_events_are_summed_per_minute_and_dimensions() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let columns = Columns::from_events(vec![
            envelope(ids[0], "2026-12-01T10:00:05Z", "a", Some("u1"), Some(10)),
            envelope(ids[1], "2026-12-01T10:00:59.999Z", "a", Some("u2"), Some(30)),
            envelope(ids[2], "2026-12-01T10:01:00Z", "a", Some("u1"), None),
            envelope(ids[3], "2026-12-01T10:00:10Z", "b", None, None),
            envelope(ids[4], "2026-12-01T10:00:20Z", "a", Some("u3"), Some(1000)),
        ]);
        let new: HashSet<Uuid> = ids[..4].iter().copied().collect();
        let rollups = Rollups::of(&columns, &new);
        assert_eq!(rollups.len(), 3, "(10:00, a), (10:01, a), (10:00, b)");
        let minute_a = &rollups.rows[&(Uuid::nil(), "2026-12-01T10:00:00Z".parse().expect("t"), "a", None, None)];
        assert_eq!((minute_a.events, minute_a.durations, minute_a.duration_sum), (2, 2, 40));
        assert_eq!((minute_a.duration_min, minute_a.duration_max), (Some(10), Some(30)));
        let mut users =
            pulse_shared::rollup::Distinct::decode(&minute_a.users.as_ref().expect("users").encode()).expect("decodes");
        assert_eq!(users.count(), 2);
        assert!(
            Rollups::of(&columns, &HashSet::new()).rows.is_empty(),
            "a redelivered batch adds nothing"
        );
    }
}
