-- Uptime monitors, their checks and incidents, per-host circuit breakers, daily uptime, the
-- public status page and the daily digest (issue 14). See docs/monitors.md.
--
-- The path of a check:
-- 1. scheduler replicas claim due monitors (next_check_at <= now(), FOR UPDATE SKIP LOCKED),
--    moving next_check_at one interval on and setting a lease, so each due check runs once;
-- 2. the check's result is written in one transaction: the monitor_checks row, the day's
--    monitor_daily counters, the monitor's state and the breaker of its host, and, when the
--    state changed, the incident and its notices (email_messages, webhook_messages);
-- 3. a state change is then announced on the live stream.

CREATE TABLE monitors (
    id                    uuid PRIMARY KEY,
    project_id            uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url                   text NOT NULL,
    method                text NOT NULL DEFAULT 'GET'
                          CHECK (method IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')),
    headers               jsonb NOT NULL DEFAULT '{}',
    body                  text,
    interval_s            integer NOT NULL CHECK (interval_s BETWEEN 10 AND 86400),
    timeout_ms            integer NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 60000),
    -- Accepted statuses as inclusive ranges, [[200, 299]] by default.
    expected_status       jsonb NOT NULL DEFAULT '[[200, 299]]',
    body_contains         text,
    -- A JSON value match: the response body parsed as JSON, at this pointer, equals json_equals.
    json_pointer          text,
    json_equals           jsonb,
    max_latency_ms        integer CHECK (max_latency_ms > 0),
    cert_expiry_days      integer NOT NULL DEFAULT 14 CHECK (cert_expiry_days BETWEEN 0 AND 365),
    failures_before_down  integer NOT NULL DEFAULT 3 CHECK (failures_before_down BETWEEN 1 AND 100),
    renotify_s            integer NOT NULL DEFAULT 0 CHECK (renotify_s BETWEEN 0 AND 604800),
    paused                boolean NOT NULL DEFAULT false,
    -- [{"start": ts, "end": ts}] and [{"weekday": "monday", "start_time": "HH:MM", "duration_s": n}], UTC.
    maintenance           jsonb NOT NULL DEFAULT '[]',
    emails                text[] NOT NULL DEFAULT '{}',
    webhook_ids           uuid[] NOT NULL DEFAULT '{}',
    -- State: pending until the first verdict, then up or down.
    state                 text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'up', 'down')),
    consecutive_failures  integer NOT NULL DEFAULT 0,
    state_changed_at      timestamptz,
    -- Scheduling: when the next check is due (spread over the interval), and the lease of the
    -- replica running a claimed check (a claim whose lease ran out is due again).
    next_check_at         timestamptz NOT NULL DEFAULT now(),
    lease_until           timestamptz,
    last_checked_at       timestamptz,
    -- The latest certificate seen (HTTPS) and the expiry already warned about (once per certificate).
    cert_expires_at       timestamptz,
    cert_warned_expiry    timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitors_project_idx ON monitors (project_id, id DESC);
CREATE INDEX monitors_due_idx ON monitors (next_check_at) WHERE NOT paused;

-- One row per check. ok: the check passed; otherwise error_class says why
-- (dns, connect, tls, timeout, status, body, latency, breaker).
CREATE TABLE monitor_checks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor_id       uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    checked_at       timestamptz NOT NULL,
    -- When the check was due (lateness = checked_at - scheduled_at); NULL for a manual check.
    scheduled_at     timestamptz,
    ok               boolean NOT NULL,
    status_code      integer,
    latency_ms       integer,
    error_class      text CHECK (error_class IN ('dns', 'connect', 'tls', 'timeout', 'status', 'body', 'latency', 'breaker', 'refused')),
    error            text,
    cert_expires_at  timestamptz,
    manual           boolean NOT NULL DEFAULT false
);
CREATE INDEX monitor_checks_monitor_idx ON monitor_checks (monitor_id, checked_at DESC, id DESC);

-- Checks and passed checks per monitor and UTC day: uptime over 30 and 90 days without
-- reading every check.
CREATE TABLE monitor_daily (
    monitor_id  uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    day         date NOT NULL,
    checks      integer NOT NULL DEFAULT 0,
    ok_checks   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, day)
);

-- Down periods: one open incident per monitor (the partial unique index), closed by the
-- check that brings it up again.
CREATE TABLE monitor_incidents (
    id                uuid PRIMARY KEY,
    monitor_id        uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    project_id        uuid NOT NULL,
    started_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    error_class       text,
    error             text,
    -- Whether it was opened inside a maintenance window (no notices were sent).
    in_maintenance    boolean NOT NULL DEFAULT false,
    notifications     integer NOT NULL DEFAULT 0,
    last_notified_at  timestamptz
);
CREATE UNIQUE INDEX monitor_incidents_one_open_idx ON monitor_incidents (monitor_id) WHERE resolved_at IS NULL;
CREATE INDEX monitor_incidents_monitor_idx ON monitor_incidents (monitor_id, started_at DESC, id DESC);
CREATE INDEX monitor_incidents_project_idx ON monitor_incidents (project_id, started_at DESC);

-- Circuit breakers, one per target host and port, shared by every replica: after
-- PULSE_MONITOR_BREAKER_FAILURES consecutive failed checks of a target it opens (its
-- monitors are not checked until retry_at), then lets one probe through (half_open), whose
-- success closes it and whose failure opens it again.
CREATE TABLE monitor_breakers (
    target      text PRIMARY KEY,
    state       text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    failures    integer NOT NULL DEFAULT 0,
    opened_at   timestamptz,
    retry_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The public status page of a project (opt-in): GET /v1/status/{slug}.
ALTER TABLE projects
    ADD COLUMN status_page_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN status_page_slug text UNIQUE CHECK (status_page_slug ~ '^[a-z0-9][a-z0-9-]{1,62}$');

-- The daily digest: members of a project who asked for it. Sending is once per member and day
-- through the email outbox's UNIQUE (message_id, recipient), the message id derived from the
-- project and the day.
CREATE TABLE digest_subscriptions (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
