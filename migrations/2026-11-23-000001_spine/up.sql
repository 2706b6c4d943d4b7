-- The spine: tenants, API keys and the time-partitioned events table.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

-- API keys are stored as the SHA-256 of the whole key: keys carry 256 random bits, so a fast
-- hash is safe and keeps the ingest check cheap. The plain key is shown once, at creation.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT 'default',
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    scopes        text[] NOT NULL DEFAULT ARRAY['ingest']::text[],
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id);

-- Events, range-partitioned by the producer's timestamp into daily partitions created ahead of
-- need (pulse_ensure_event_partitions). A DEFAULT partition takes any date without one, so no
-- event is ever refused for its date.
CREATE TABLE events (
    id           uuid NOT NULL,
    project_id   uuid NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    event_type   text NOT NULL,
    source       text,
    user_id      text,
    session_id   text,
    duration_ms  bigint,
    priority     text,
    status       text,
    tags         text[] NOT NULL DEFAULT '{}',
    data         jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE ("timestamp");

CREATE INDEX events_project_time_idx ON events (project_id, "timestamp" DESC);
CREATE INDEX events_project_type_time_idx ON events (project_id, event_type, "timestamp" DESC);

CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Idempotency on the event id. A unique index on a partitioned table must include the
-- partition key, and a producer retrying without a timestamp gets a new one, so uniqueness of
-- the id alone lives here. The persist worker inserts ids here first (ON CONFLICT DO NOTHING)
-- and writes to events only the rows whose id was new, in the same transaction.
CREATE TABLE event_ids (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    "timestamp"  timestamptz NOT NULL
);

-- Creates the daily partitions of events from today to today + days_ahead that do not exist.
-- A day whose rows already sit in the default partition is skipped (its rows stay there and
-- remain queryable); the function never fails for it. Concurrent callers (several replicas)
-- are serialized by a transaction-level advisory lock. Returns how many partitions it created.
CREATE FUNCTION pulse_ensure_event_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day      date;
    name     text;
    created  integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7070766172747331); -- 'pulse partitions'
    FOR offset_days IN 0..days_ahead LOOP
        day := (now() AT TIME ZONE 'UTC')::date + offset_days;
        name := 'events_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                    name,
                    (day::timestamp AT TIME ZONE 'UTC'),
                    ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            EXCEPTION WHEN check_violation OR duplicate_table OR unique_violation THEN
                RAISE NOTICE 'partition % skipped: %', name, SQLERRM;
            END;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

SELECT pulse_ensure_event_partitions(7);
