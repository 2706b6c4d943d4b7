-- Hourly totals of each project over all dimensions, folded by the scheduler with the hourly
-- rows (same transaction, same deltas). A query with no dimension filter reads one row per
-- hour here instead of one per hour and dimensions: a month of hourly buckets is 720 rows,
-- not tens of thousands of sketches to merge.
CREATE TABLE event_rollups_hourly_totals (
    project_id       uuid NOT NULL,
    bucket           timestamptz NOT NULL CHECK (date_trunc('hour', bucket) = bucket),
    events           bigint NOT NULL CHECK (events > 0),
    durations        bigint NOT NULL,
    duration_sum     numeric NOT NULL,
    duration_min     bigint,
    duration_max     bigint,
    users            bytea,
    sessions         bytea,
    duration_sketch  bytea,
    PRIMARY KEY (project_id, bucket)
);
