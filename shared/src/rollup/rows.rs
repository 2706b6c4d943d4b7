//! The rollup rows of a set of events: one per (project, UTC minute, event_type, source,
//! status), each a [`Summary`], and the statement that inserts them at a [`Level`]: deltas
//! into `event_rollups` (insert-only: see its migrations), or the compaction's merged rows
//! into `event_rollups` and `event_rollups_hourly`. Used by the persist worker (a batch's new events, in the
//! batch's transaction) and by `pulse-api admin rebuild-rollups` (a range recomputed from raw
//! events). Keys borrow from the events where they can ([`Cow`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Array, Bytea, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::Summary;

/// Where rows go: the table, and whether they are deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `event_rollups`, as the persist worker and `rebuild-rollups` write them: to be folded.
    MinuteDeltas,
    /// `event_rollups`, one row per minute and dimensions (the compaction's output).
    MinuteCompacted,
    /// `event_rollups_hourly` (the compaction's output).
    Hour,
    /// `event_rollups_hourly_totals`: one row per project and hour, the key's dimensions
    /// ignored (the compaction's output).
    HourTotal,
}

impl Level {
    fn insert_statement(self) -> String {
        let (table, compacted) = match self {
            Self::MinuteDeltas => ("event_rollups", Some("false")),
            Self::MinuteCompacted => ("event_rollups", Some("true")),
            Self::Hour => ("event_rollups_hourly", None),
            Self::HourTotal => ("event_rollups_hourly_totals", None),
        };
        let (flag_column, flag_value) = compacted.map_or((String::new(), String::new()), |value| {
            (", compacted".to_owned(), format!(", {value}"))
        });
        let dimensions = if self == Self::HourTotal {
            ""
        } else {
            " event_type, source, status,"
        };
        format!(
            r#"
INSERT INTO {table} (project_id, bucket,{dimensions} events, durations,
                     duration_sum, duration_min, duration_max, users, sessions,
                     duration_sketch{flag_column})
SELECT project_id, bucket,{dimensions} events, durations, duration_sum::numeric,
       duration_min, duration_max, users, sessions, duration_sketch{flag_value}
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int8[],
            $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::bytea[], $12::bytea[],
            $13::bytea[])
    AS t (project_id, bucket, event_type, source, status, events, durations, duration_sum,
          duration_min, duration_max, users, sessions, duration_sketch)
"#
        )
    }
}

/// The persist worker's statement, built once.
static INSERT_DELTAS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| Level::MinuteDeltas.insert_statement());

/// (project, bucket, event_type, source, status).
pub type Key<'a> = (
    Uuid,
    DateTime<Utc>,
    Cow<'a, str>,
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
);

/// One event as a rollup sees it: `'a` is what the row keys may borrow, `'b` what is only
/// read (hashed into the sketches).
pub struct RollupEvent<'a, 'b> {
    pub project_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub event_type: Cow<'a, str>,
    pub source: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub duration_ms: Option<i64>,
    pub user_id: Option<&'b str>,
    pub session_id: Option<&'b str>,
}

/// Rollup rows being built.
#[derive(Default)]
pub struct RollupRows<'a> {
    rows: BTreeMap<Key<'a>, Summary>,
}

/// The UTC minute `time` falls in.
pub fn minute(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::minutes(1)).unwrap_or(time)
}

/// The UTC hour `time` falls in.
pub fn hour(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::hours(1)).unwrap_or(time)
}

/// The hourly totals of `rows` (any bucket width up to an hour): one per project and hour, keyed
/// with an empty event type and no source or status, as [`Level::HourTotal`] stores them.
pub fn hourly_totals<'r>(
    rows: impl IntoIterator<Item = (&'r Key<'r>, &'r Summary)>,
) -> BTreeMap<Key<'static>, Summary> {
    let mut totals: BTreeMap<Key<'static>, Summary> = BTreeMap::new();
    for ((project, bucket, ..), summary) in rows {
        let key = (*project, hour(*bucket), Cow::Borrowed(""), None, None);
        match totals.get_mut(&key) {
            Some(total) => total.merge(summary.clone()),
            None => {
                totals.insert(key, summary.clone());
            }
        }
    }
    totals
}

impl<'a> RollupRows<'a> {
    /// Adds one event to its row.
    pub fn record(&mut self, event: RollupEvent<'a, '_>) {
        let key = (
            event.project_id,
            minute(event.timestamp),
            event.event_type,
            event.source,
            event.status,
        );
        self.rows
            .entry(key)
            .or_default()
            .record(event.duration_ms, event.user_id, event.session_id);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of a key, if any event fell in it.
    pub fn get(&self, project: Uuid, bucket: DateTime<Utc>, event_type: &str) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|((p, b, t, _, _), _)| *p == project && *b == bucket && t == event_type)
            .map(|(_, summary)| summary)
    }

    /// Rows whose bucket is before `bucket`, taken out (for writing as they complete).
    pub fn take_before(&mut self, bucket: DateTime<Utc>) -> RollupRows<'a> {
        let (done, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.rows)
            .into_iter()
            .partition(|(key, _)| key.1 < bucket);
        self.rows = rest;
        RollupRows { rows: done }
    }

    /// Inserts the rows as deltas (nothing when there is none).
    pub async fn insert(self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
        insert(conn, &INSERT_DELTAS, self.rows).await
    }

    /// The rows, by key.
    pub fn into_rows(self) -> BTreeMap<Key<'a>, Summary> {
        self.rows
    }
}

/// Inserts `rows` at `level` (nothing when there is none).
pub async fn insert_at<'a>(
    conn: &mut AsyncPgConnection,
    level: Level,
    rows: impl IntoIterator<Item = (Key<'a>, Summary)>,
) -> diesel::QueryResult<()> {
    insert(conn, &level.insert_statement(), rows).await
}

async fn insert<'a>(
    conn: &mut AsyncPgConnection,
    statement: &str,
    rows: impl IntoIterator<Item = (Key<'a>, Summary)>,
) -> diesel::QueryResult<()> {
    let rows = rows.into_iter();
    let n = rows.size_hint().0;
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
    for ((project, bucket, event_type, source, status), summary) in rows {
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
    if projects.is_empty() {
        return Ok(());
    }
    diesel::sql_query(statement)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(project_id: Uuid, at: &str) -> RollupEvent<'static, 'static> {
        RollupEvent {
            project_id,
            timestamp: at.parse().expect("time"),
            event_type: Cow::Borrowed("page_view"),
            source: None,
            status: None,
            duration_ms: Some(5),
            user_id: Some("u"),
            session_id: None,
        }
    }

    #[test]
    fn rows_before_a_bucket_are_taken_out_whole() {
        let project = Uuid::now_v7();
        let mut rows = RollupRows::default();
        for at in [
            "2026-12-01T09:59:30Z",
            "2026-12-01T09:59:59Z",
            "2026-12-01T10:00:00Z",
            "2026-12-01T11:30:00Z",
        ] {
            rows.record(event(project, at));
        }
        let done = rows.take_before(hour("2026-12-01T10:15:00Z".parse().expect("time")));
        let done = done.into_rows();
        assert_eq!(done.len(), 1, "the 09:59 minute, both its events");
        assert_eq!(done.values().next().map(|summary| summary.events), Some(2));
        assert_eq!(rows.len(), 2, "10:00 and 11:30 stay");
    }
}
