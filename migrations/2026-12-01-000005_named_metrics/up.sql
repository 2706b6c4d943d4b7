-- Named metrics (issue 11): raw points, their ids, per-minute rollups and the latest point per
-- label set. Written by the metrics worker (`pulse-worker metrics`), one transaction a batch:
-- ids first (ON CONFLICT DO NOTHING RETURNING), then the points, the latest rows and the
-- rollups of exactly the ids that came back new (promises 2 and 3).

-- Raw points, range-partitioned by the point's timestamp into daily partitions, like events
-- (created by pulse_ensure_event_partitions below, which now covers both tables). A DEFAULT
-- partition takes any date without one.
CREATE TABLE metric_points (
    id           uuid NOT NULL,
    project_id   uuid NOT NULL,
    name         text NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    value        double precision NOT NULL,
    labels       jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL
) PARTITION BY RANGE ("timestamp");

-- Every read of raw points names the metric: newest first, with the id as tie-break (the cursor).
CREATE INDEX metric_points_project_name_time_idx ON metric_points (project_id, name, "timestamp" DESC, id DESC);

CREATE TABLE metric_points_default PARTITION OF metric_points DEFAULT;

-- Idempotency on the point id (a unique index on the partitioned table would have to include
-- the timestamp), as event_ids is for events.
CREATE TABLE metric_point_ids (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    "timestamp"  timestamptz NOT NULL
);

-- Per-minute summaries per (project, name), over every label set: insert-only deltas (one row
-- per batch, project, name and minute), merged by the queries (count and sum add, min and max
-- compare, the DDSketch of the values merges exactly).
CREATE TABLE metric_rollups (
    project_id   uuid NOT NULL,
    name         text NOT NULL,
    bucket       timestamptz NOT NULL,
    count        bigint NOT NULL,
    sum          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    sketch       bytea NOT NULL
);

CREATE INDEX metric_rollups_project_name_bucket_idx ON metric_rollups (project_id, name, bucket);

-- The latest point per (project, name, label set), upserted by the worker keeping the greatest
-- (timestamp, id), so `GET /v1/metrics/{name}/latest` never reads history. A label set is
-- keyed by md5 of its canonical jsonb text as a uuid: a jsonb key could pass btree's row
-- size limit.
CREATE TABLE metric_latest (
    project_id   uuid NOT NULL,
    name         text NOT NULL,
    labels_hash  uuid NOT NULL,
    labels       jsonb NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    id           uuid NOT NULL,
    value        double precision NOT NULL,
    PRIMARY KEY (project_id, name, labels_hash)
);

-- The partition function of the spine, now for both partitioned tables (same name, so every
-- caller — each binary's start-up and the scheduler's hourly job — keeps working unchanged).
CREATE OR REPLACE FUNCTION pulse_ensure_event_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day      date;
    name     text;
    parent   text;
    created  integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7070766172747331); -- 'pulse partitions'
    FOREACH parent IN ARRAY ARRAY['events', 'metric_points'] LOOP
        FOR offset_days IN 0..days_ahead LOOP
            day := (now() AT TIME ZONE 'UTC')::date + offset_days;
            name := parent || '_p' || to_char(day, 'YYYYMMDD');
            IF to_regclass(name) IS NULL THEN
                BEGIN
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                        name,
                        parent,
                        (day::timestamp AT TIME ZONE 'UTC'),
                        ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                    created := created + 1;
                EXCEPTION WHEN check_violation OR duplicate_table OR unique_violation THEN
                    RAISE NOTICE 'partition % skipped: %', name, SQLERRM;
                END;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;

SELECT pulse_ensure_event_partitions(7);
