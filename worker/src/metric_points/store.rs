//! The transaction that writes a batch of named-metric points, and the column arrays it binds.
//!
//! One statement (`INSERT_POINTS`), every column one array parameter, with data-modifying CTEs
//! in the shape of the events statement (`persist/store.rs`):
//!
//! 1. `new_ids` inserts every id into `metric_point_ids` with `ON CONFLICT (id) DO NOTHING
//!    RETURNING id`: only ids never stored before come back (a concurrent writer of the same
//!    id waits for the other transaction, then sees the conflict).
//! 2. `stored` inserts into `metric_points` (partitioned by time) the rows whose id came back.
//! 3. `latest` upserts `metric_latest` from the same new rows: one row per (project, name, label
//!    set), the newest of the batch by (timestamp, id) (`DISTINCT ON`: an upsert may not touch
//!    one row twice), replacing the stored row only when it is newer by (timestamp, id). An
//!    older point arriving late never replaces a newer latest; a redelivered point is not new
//!    and touches nothing.
//!
//! Then, in the same transaction, the per-minute rollups of exactly the new points
//! ([`Rollups`], one insert-only row per project, name and minute of the batch), so a
//! redelivered batch counts nothing twice (promise 3).
//!
//! Rows are sorted by id before binding (the `metric_point_ids` locks), and the `latest` rows
//! are written in key order, so two transactions with overlapping points lock in the same
//! order and cannot deadlock.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::sql_types::{Array, BigInt, Bytea, Double, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::metric::MetricEnvelope;
use pulse_shared::rollup::Values;
use uuid::Uuid;

/// Writes a batch; returns the ids that were new. Parameters: the arrays of [`Columns`] in
/// field order.
pub const INSERT_POINTS: &str = r#"
WITH input AS MATERIALIZED (
    SELECT *
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::float8[], $6::jsonb[],
                $7::timestamptz[])
         AS t (id, project_id, name, ts, value, labels, received_at)
),
new_ids AS (
    INSERT INTO metric_point_ids (id, project_id, "timestamp")
    SELECT id, project_id, ts FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
fresh AS (
    SELECT input.* FROM input JOIN new_ids ON new_ids.id = input.id
),
stored AS (
    INSERT INTO metric_points (id, project_id, name, "timestamp", value, labels, received_at)
    SELECT id, project_id, name, ts, value, labels, received_at FROM fresh
),
latest AS (
    INSERT INTO metric_latest (project_id, name, labels_hash, labels, "timestamp", id, value)
    SELECT DISTINCT ON (project_id, name, md5(labels::text)::uuid)
           project_id, name, md5(labels::text)::uuid, labels, ts, id, value
    FROM fresh
    ORDER BY project_id, name, md5(labels::text)::uuid, ts DESC, id DESC
    ON CONFLICT (project_id, name, labels_hash) DO UPDATE
        SET labels = EXCLUDED.labels, "timestamp" = EXCLUDED."timestamp", id = EXCLUDED.id,
            value = EXCLUDED.value
        WHERE (metric_latest."timestamp", metric_latest.id) < (EXCLUDED."timestamp", EXCLUDED.id)
)
SELECT id FROM new_ids
"#;

/// Inserts the rollup rows of a batch. Parameters: the arrays of [`Rollups::columns`].
pub const INSERT_ROLLUPS: &str = r#"
INSERT INTO metric_rollups (project_id, name, bucket, count, sum, min, max, sketch)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int8[], $5::float8[],
                     $6::float8[], $7::float8[], $8::bytea[])
"#;

/// A batch of points as one array per column, ready to bind to [`INSERT_POINTS`].
#[derive(Debug, Default, Clone)]
pub struct Columns {
    pub ids: Vec<Uuid>,
    pub project_ids: Vec<Uuid>,
    pub names: Vec<String>,
    pub timestamps: Vec<DateTime<Utc>>,
    pub values: Vec<f64>,
    pub labels: Vec<serde_json::Value>,
    pub received_at: Vec<DateTime<Utc>>,
}

impl Columns {
    /// The columns of points whose ids are unique, sorted by id.
    pub fn from_points(mut points: Vec<MetricEnvelope>) -> Self {
        points.sort_unstable_by_key(|envelope| envelope.point.id);
        let mut columns = Self::default();
        for envelope in points {
            let point = envelope.point;
            columns.ids.push(point.id);
            columns.project_ids.push(envelope.project_id);
            columns.names.push(point.name);
            columns.timestamps.push(point.timestamp);
            columns.values.push(point.value);
            columns
                .labels
                .push(serde_json::to_value(point.labels).unwrap_or_default());
            columns.received_at.push(envelope.received_at);
        }
        columns
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One rollup row: what a batch's new points of one (project, name, minute) sum up.
#[derive(Debug, Clone)]
pub struct RollupRow {
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Values,
}

/// The rollup rows of a batch, by (project, name, minute).
#[derive(Debug, Default)]
pub struct Rollups {
    rows: BTreeMap<(Uuid, String, DateTime<Utc>), RollupRow>,
}

impl Rollups {
    /// The rows of the points of `columns` whose id is in `new`.
    pub fn of(columns: &Columns, new: &HashSet<Uuid>) -> Self {
        let mut rollups = Self::default();
        for index in 0..columns.len() {
            if !new.contains(&columns.ids[index]) {
                continue;
            }
            let timestamp = columns.timestamps[index];
            let minute = timestamp.duration_trunc(TimeDelta::minutes(1)).unwrap_or(timestamp);
            let value = columns.values[index];
            let row = rollups
                .rows
                .entry((columns.project_ids[index], columns.names[index].clone(), minute))
                .or_insert_with(|| RollupRow {
                    count: 0,
                    sum: 0.0,
                    min: value,
                    max: value,
                    sketch: Values::default(),
                });
            row.count += 1;
            row.sum += value;
            row.min = row.min.min(value);
            row.max = row.max.max(value);
            row.sketch.add(value);
        }
        rollups
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, project: Uuid, name: &str, minute: DateTime<Utc>) -> Option<&RollupRow> {
        self.rows.get(&(project, name.to_owned(), minute))
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let (mut projects, mut names, mut buckets) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut counts, mut sums, mut mins, mut maxs, mut sketches) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((project, name, bucket), row) in &self.rows {
            projects.push(*project);
            names.push(name.as_str());
            buckets.push(*bucket);
            counts.push(row.count);
            sums.push(row.sum);
            mins.push(row.min);
            maxs.push(row.max);
            sketches.push(row.sketch.encode());
        }
        diesel::sql_query(INSERT_ROLLUPS)
            .bind::<Array<SqlUuid>, _>(&projects)
            .bind::<Array<Text>, _>(&names)
            .bind::<Array<Timestamptz>, _>(&buckets)
            .bind::<Array<BigInt>, _>(&counts)
            .bind::<Array<Double>, _>(&sums)
            .bind::<Array<Double>, _>(&mins)
            .bind::<Array<Double>, _>(&maxs)
            .bind::<Array<Bytea>, _>(&sketches)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// What one write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Points stored for the first time.
    pub inserted: usize,
    /// Points whose id was already stored, left untouched.
    pub duplicates: usize,
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Writes the batch, its latest rows and its rollups in one transaction (see the module
/// comment). On error nothing was stored and the same `columns` can be written again.
pub async fn write(conn: &mut AsyncPgConnection, columns: &Columns) -> diesel::QueryResult<Written> {
    write_returning_new(conn, columns).await.map(|(written, _)| written)
}

/// [`write`], also returning the ids stored for the first time (what the stored-events topic
/// announces after the commit).
pub async fn write_returning_new(
    conn: &mut AsyncPgConnection,
    columns: &Columns,
) -> diesel::QueryResult<(Written, HashSet<Uuid>)> {
    if columns.is_empty() {
        return Ok((Written::default(), HashSet::new()));
    }
    conn.transaction(|conn| {
        async move {
            let new: Vec<NewId> = diesel::sql_query(INSERT_POINTS)
                .bind::<Array<SqlUuid>, _>(&columns.ids)
                .bind::<Array<SqlUuid>, _>(&columns.project_ids)
                .bind::<Array<Text>, _>(&columns.names)
                .bind::<Array<Timestamptz>, _>(&columns.timestamps)
                .bind::<Array<Double>, _>(&columns.values)
                .bind::<Array<Jsonb>, _>(&columns.labels)
                .bind::<Array<Timestamptz>, _>(&columns.received_at)
                .load(conn)
                .await?;
            let new: HashSet<Uuid> = new.into_iter().map(|row| row.id).collect();
            Rollups::of(columns, &new).insert(conn).await?;
            let inserted = new.len().min(columns.len());
            let written = Written {
                inserted,
                duplicates: columns.len() - inserted,
            };
            Ok((written, new))
        }
        .scope_boxed()
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pulse_shared::metric::MetricPoint;

    use super::*;

    fn envelope(id: Uuid, at: &str, name: &str, value: f64) -> MetricEnvelope {
        MetricEnvelope::new(
            Uuid::nil(),
            Utc::now(),
            MetricPoint {
                id,
                name: name.into(),
                value,
                timestamp: at.parse().expect("time"),
                labels: BTreeMap::new(),
            },
        )
    }

    #[test]
    fn rollups_sum_only_the_new_points_per_name_and_minute() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let columns = Columns::from_points(vec![
            envelope(ids[0], "2026-12-01T10:00:05Z", "cpu", 2.0),
            envelope(ids[1], "2026-12-01T10:00:59.999Z", "cpu", -1.0),
            envelope(ids[2], "2026-12-01T10:01:00Z", "cpu", 7.0),
            envelope(ids[3], "2026-12-01T10:00:10Z", "mem", 3.5),
            envelope(ids[4], "2026-12-01T10:00:20Z", "cpu", 100.0),
        ]);
        let new: HashSet<Uuid> = ids[..4].iter().copied().collect();
        let rollups = Rollups::of(&columns, &new);
        assert_eq!(rollups.len(), 3, "(cpu, 10:00), (cpu, 10:01), (mem, 10:00)");
        let cpu = rollups
            .get(Uuid::nil(), "cpu", "2026-12-01T10:00:00Z".parse().expect("t"))
            .expect("row");
        assert_eq!((cpu.count, cpu.sum, cpu.min, cpu.max), (2, 1.0, -1.0, 2.0));
        assert_eq!(cpu.sketch.count(), 2);
        assert!(
            Rollups::of(&columns, &HashSet::new()).is_empty(),
            "a redelivered batch adds nothing"
        );
    }
}
