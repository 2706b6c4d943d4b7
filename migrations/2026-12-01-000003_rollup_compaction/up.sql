-- Compaction and the hourly cascade of the rollups (pulse-scheduler's `rollups` job).
--
-- The persist worker keeps inserting one delta row per batch, minute and dimensions
-- (`compacted = false`), so writers never wait for each other. The scheduler folds deltas in:
-- each group's deltas and its compacted row become one compacted row (so a minute holds about
-- one row per dimensions, however many batches wrote it), and the same deltas are added to the
-- group's row in `event_rollups_hourly`. Both happen in the transaction that deletes the
-- deltas, so a delta counts once: either still a delta, or folded into both tables.
--
-- Queries of whole hours read `event_rollups_hourly` plus the deltas not folded yet (the
-- partial index below finds them); queries of minutes read `event_rollups`.
ALTER TABLE event_rollups ADD COLUMN compacted boolean NOT NULL DEFAULT false;
CREATE INDEX event_rollups_deltas_idx ON event_rollups (project_id, bucket) WHERE NOT compacted;

CREATE TABLE event_rollups_hourly (
    project_id       uuid NOT NULL,
    bucket           timestamptz NOT NULL CHECK (date_trunc('hour', bucket) = bucket),
    event_type       text NOT NULL,
    source           text,
    status           text,
    events           bigint NOT NULL CHECK (events > 0),
    durations        bigint NOT NULL,
    duration_sum     numeric NOT NULL,
    duration_min     bigint,
    duration_max     bigint,
    users            bytea,
    sessions         bytea,
    duration_sketch  bytea,
    -- One row per hour and dimensions (NULL source or status is a dimension value of its own).
    UNIQUE NULLS NOT DISTINCT (project_id, bucket, event_type, source, status)
);
