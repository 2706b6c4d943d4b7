//! The transaction that writes a batch, and the column arrays it binds.
//!
//! A batch's events are written by a single `INSERT … SELECT FROM unnest(…)` statement with two
//! data-modifying CTEs, in a transaction with the batch's rollups (`rollups.rs`), so either the
//! whole batch and its rollups are stored or none of it is:
//!
//! 1. `new_ids` inserts every id into `event_ids` with `ON CONFLICT (id) DO NOTHING RETURNING
//!    id`: only ids never stored before come back. A concurrent writer of the same id (two
//!    workers during a rebalance) makes PostgreSQL wait for the other transaction and then
//!    report a conflict, so each id comes back from exactly one committed statement.
//! 2. the second CTE inserts into `events` only the rows whose id came back. `events` is
//!    partitioned by time and cannot have a unique index on `id` alone, which is why
//!    `event_ids` exists (see the migration).
//! 3. the statement returns those new ids, and the rollups are built from exactly those rows
//!    and inserted in the same transaction (promise 3), with the batch's webhook messages
//!    (`outbox.rs`).
//!
//! Every column is one binary-encoded array parameter (14 parameters whatever the batch size),
//! which PostgreSQL unnests in one pass: close to `COPY` and far cheaper than multi-row
//! `VALUES` (see docs/worker.md for the measurement). `tags` is `text[]` per row and PostgreSQL
//! arrays cannot be jagged, so each row's tags travel as one array literal (`{"a","b"}`,
//! elements quoted and escaped by [`text_array_literal`]) that the statement casts to `text[]`.
//!
//! Rows are sorted by id before binding, so two workers writing overlapping ids take the row
//! locks of `event_ids` in the same order and cannot deadlock each other.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::envelope::EventEnvelope;
use uuid::Uuid;

use super::{outbox, rollups};

/// Writes a batch; returns the ids that were new (the rollups are built from those rows).
/// Parameters are the arrays of [`Columns`] in field order.
pub const INSERT_EVENTS: &str = r#"
WITH input AS MATERIALIZED (
    SELECT *
    FROM unnest(
        $1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::int8[], $10::int4[], $11::text[], $12::text[],
        $13::jsonb[], $14::jsonb[]
    ) AS t (id, project_id, ts, received_at, event_type, source,
            user_id, session_id, duration_ms, priority, status, tags,
            data, metadata)
),
new_ids AS (
    INSERT INTO event_ids (id, project_id, "timestamp")
    SELECT id, project_id, ts FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
stored AS (
    INSERT INTO events (id, project_id, "timestamp", received_at, event_type, source,
                        user_id, session_id, duration_ms, priority, status, tags,
                        data, metadata)
    SELECT input.id, input.project_id, input.ts, input.received_at, input.event_type, input.source,
           input.user_id, input.session_id, input.duration_ms, input.priority, input.status,
           input.tags::text[], input.data, input.metadata
    FROM input JOIN new_ids ON new_ids.id = input.id
)
SELECT id FROM new_ids
"#;

/// A batch of events as one array per column, ready to bind to [`INSERT_EVENTS`].
#[derive(Debug, Default, Clone)]
pub struct Columns {
    pub(super) ids: Vec<Uuid>,
    pub(super) project_ids: Vec<Uuid>,
    pub(super) timestamps: Vec<DateTime<Utc>>,
    pub(super) received_at: Vec<DateTime<Utc>>,
    pub(super) event_types: Vec<String>,
    pub(super) sources: Vec<Option<String>>,
    pub(super) user_ids: Vec<Option<String>>,
    pub(super) session_ids: Vec<Option<String>>,
    pub(super) durations: Vec<Option<i64>>,
    pub(super) priorities: Vec<Option<i32>>,
    pub(super) statuses: Vec<Option<String>>,
    pub(super) tags: Vec<String>,
    pub(super) data: Vec<serde_json::Value>,
    pub(super) metadata: Vec<serde_json::Value>,
}

impl Columns {
    /// Builds the columns from events whose ids are unique (see `batch::dedup_by_id`),
    /// sorted by id.
    pub fn from_events(mut events: Vec<EventEnvelope>) -> Self {
        events.sort_unstable_by_key(|envelope| envelope.event.id);
        let n = events.len();
        let mut columns = Self {
            ids: Vec::with_capacity(n),
            project_ids: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            event_types: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            user_ids: Vec::with_capacity(n),
            session_ids: Vec::with_capacity(n),
            durations: Vec::with_capacity(n),
            priorities: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            tags: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
        };
        for envelope in events {
            let event = envelope.event;
            columns.ids.push(event.id);
            columns.project_ids.push(envelope.project_id);
            columns.timestamps.push(event.timestamp);
            columns.received_at.push(envelope.received_at);
            columns.event_types.push(event.event_type);
            columns.sources.push(event.source);
            columns.user_ids.push(event.user_id);
            columns.session_ids.push(event.session_id);
            columns.durations.push(event.duration_ms);
            columns.priorities.push(event.priority);
            columns.statuses.push(event.status);
            columns.tags.push(text_array_literal(&event.tags));
            columns.data.push(event.data);
            columns.metadata.push(event.metadata);
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

/// What one write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows stored for the first time.
    pub inserted: usize,
    /// Rows whose id was already stored, left untouched.
    pub duplicates: usize,
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Writes the batch and its rollups in one transaction: the events (one statement, which
/// returns the ids that were new), then the rollups of exactly those events. On error nothing
/// was stored and the same `columns` can be written again.
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
            let new: Vec<NewId> = diesel::sql_query(INSERT_EVENTS)
                .bind::<Array<SqlUuid>, _>(&columns.ids)
                .bind::<Array<SqlUuid>, _>(&columns.project_ids)
                .bind::<Array<Timestamptz>, _>(&columns.timestamps)
                .bind::<Array<Timestamptz>, _>(&columns.received_at)
                .bind::<Array<Text>, _>(&columns.event_types)
                .bind::<Array<Nullable<Text>>, _>(&columns.sources)
                .bind::<Array<Nullable<Text>>, _>(&columns.user_ids)
                .bind::<Array<Nullable<Text>>, _>(&columns.session_ids)
                .bind::<Array<Nullable<Int8>>, _>(&columns.durations)
                .bind::<Array<Nullable<Int4>>, _>(&columns.priorities)
                .bind::<Array<Nullable<Text>>, _>(&columns.statuses)
                .bind::<Array<Text>, _>(&columns.tags)
                .bind::<Array<Jsonb>, _>(&columns.data)
                .bind::<Array<Jsonb>, _>(&columns.metadata)
                .load(conn)
                .await?;
            let new: HashSet<Uuid> = new.into_iter().map(|row| row.id).collect();
            rollups::of(columns, &new).insert(conn).await?;
            outbox::insert(conn, columns, &new).await?;
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

/// A PostgreSQL array literal of `items` for a `::text[]` cast: every element double-quoted,
/// with `"` and `\` backslash-escaped. Quoting keeps commas, braces, spaces, the word `NULL`
/// and the empty string as they are. (Text cannot hold NUL; `decode` rejects it earlier.)
pub fn text_array_literal(items: &[String]) -> String {
    let mut literal = String::with_capacity(2 + items.iter().map(|item| item.len() + 3).sum::<usize>());
    literal.push('{');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn array_literals_quote_and_escape_every_element() {
        assert_eq!(text_array_literal(&[]), "{}");
        assert_eq!(text_array_literal(&strings(&[""])), r#"{""}"#);
        assert_eq!(text_array_literal(&strings(&["a", "b c"])), r#"{"a","b c"}"#);
        assert_eq!(
            text_array_literal(&strings(&[r#"q"uote"#, r"back\slash", "{br,ace}", "NULL"])),
            r#"{"q\"uote","back\\slash","{br,ace}","NULL"}"#
        );
        assert_eq!(text_array_literal(&strings(&["é🙂"])), "{\"é🙂\"}");
    }
}
