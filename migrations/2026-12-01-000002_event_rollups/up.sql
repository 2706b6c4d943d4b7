-- Per-minute rollups of stored events (promise 3: exact rollups). The persist worker writes
-- them in the transaction that inserts a batch, from the events that were new in it, so a
-- redelivered batch never counts twice.
--
-- Insert-only: a batch adds one row per (project, minute, event_type, source, status) it
-- touched, so concurrent workers never wait for each other's rows; a query merges the rows of
-- the buckets it asks for (counts and sums add, minima and maxima compare, sketches merge
-- without loss: `pulse_shared::rollup`). `source` and `status` keep NULL as NULL.
CREATE TABLE event_rollups (
    project_id       uuid NOT NULL,
    bucket           timestamptz NOT NULL CHECK (date_trunc('minute', bucket) = bucket),
    event_type       text NOT NULL,
    source           text,
    status           text,
    events           bigint NOT NULL CHECK (events > 0),
    -- Events with a duration, the sum (numeric: a bigint sum could overflow), min and max.
    durations        bigint NOT NULL,
    duration_sum     numeric NOT NULL,
    duration_min     bigint,
    duration_max     bigint,
    -- Sketches (NULL when no event of the row had a user, session or duration).
    users            bytea,
    sessions         bytea,
    duration_sketch  bytea
);

CREATE INDEX event_rollups_project_bucket_idx ON event_rollups (project_id, bucket);
