//! The `event.created` webhook messages of a batch, written in the batch's transaction
//! (`store.rs`) from the events that were new, so a redelivered batch causes no message and a
//! worker killed after the commit loses none (DESIGN.md: what a batch caused is written with
//! the batch). One message per project of the batch, holding its new events' ids with their
//! `event_type` and `source` (what endpoint filters match on), and only for projects that have
//! an enabled endpoint taking `event.created`: a project without one costs one small statement
//! that inserts nothing. `pulse-worker notify` expands the messages (`crate::notify::fanout`).

use std::collections::HashSet;

use diesel::sql_types::{Array, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::webhook::EVENT_CREATED;
use uuid::Uuid;

use super::store::Columns;

/// Parameters: new event ids, their project ids, event types and sources, then the type.
const INSERT_MESSAGES: &str = r#"
WITH batch AS (
    SELECT *
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY
         AS t (id, project_id, event_type, source, ord)
),
subscribed AS (
    SELECT DISTINCT w.project_id
    FROM webhooks w JOIN projects p ON p.id = w.project_id AND p.deleted_at IS NULL
    WHERE w.project_id IN (SELECT DISTINCT project_id FROM batch)
      AND w.enabled AND $5 = ANY (w.event_types)
)
INSERT INTO webhook_messages (id, project_id, type, event_ids, event_types, sources)
SELECT gen_random_uuid(), b.project_id, $5,
       array_agg(b.id ORDER BY b.ord), array_agg(b.event_type ORDER BY b.ord),
       array_agg(b.source ORDER BY b.ord)
FROM batch b JOIN subscribed USING (project_id)
GROUP BY b.project_id
"#;

/// Writes the messages of the events of `columns` whose id is in `new`.
pub async fn insert(conn: &mut AsyncPgConnection, columns: &Columns, new: &HashSet<Uuid>) -> diesel::QueryResult<()> {
    if new.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(new.len());
    let mut projects = Vec::with_capacity(new.len());
    let mut types = Vec::with_capacity(new.len());
    let mut sources = Vec::with_capacity(new.len());
    for index in 0..columns.len() {
        if new.contains(&columns.ids[index]) {
            ids.push(columns.ids[index]);
            projects.push(columns.project_ids[index]);
            types.push(columns.event_types[index].as_str());
            sources.push(columns.sources[index].as_deref());
        }
    }
    diesel::sql_query(INSERT_MESSAGES)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<SqlUuid>, _>(&projects)
        .bind::<Array<Text>, _>(&types)
        .bind::<Array<Nullable<Text>>, _>(&sources)
        .bind::<Text, _>(EVENT_CREATED)
        .execute(conn)
        .await
        .map(|_| ())
}
