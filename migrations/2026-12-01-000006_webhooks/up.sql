-- Signed webhooks (issue 12): endpoints, the outbox of messages, one delivery per message and
-- endpoint, and every attempt of a delivery. See docs/webhooks.md.
--
-- The path of a message:
-- 1. whatever causes it writes a row into webhook_messages in its own transaction (the persist
--    worker: one row per project and batch, with the ids of the batch's NEW events, and only
--    when the project has an enabled endpoint taking event.created);
-- 2. a notify worker claims messages (FOR UPDATE SKIP LOCKED), matches them against the
--    project's endpoints and turns them into webhook_deliveries rows, deleting the messages, in
--    one transaction;
-- 3. notify workers claim due deliveries (FOR UPDATE SKIP LOCKED, then a lease), send them, and
--    record each attempt in webhook_attempts with the delivery's new state, in one transaction.

CREATE TABLE webhooks (
    id                          uuid PRIMARY KEY,
    project_id                  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                 text NOT NULL DEFAULT '',
    -- What it receives: event.created, alert.fired, alert.resolved, monitor.down, monitor.up,
    -- webhook.disabled.
    event_types                 text[] NOT NULL,
    -- For event.created: only events whose event_type / source is listed (NULL: any).
    filter_event_types          text[],
    filter_sources              text[],
    -- Extra request headers, a JSON object of strings.
    headers                     jsonb NOT NULL DEFAULT '{}',
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text,
    disabled_at                 timestamptz,
    -- Total attempts of one delivery, the first included.
    max_attempts                integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 50),
    -- The signing secret (whsec_ + base64). Kept in clear: signing needs it and
    -- GET .../secret shows it. During a rotation's grace period the previous one signs too.
    secret                      text NOT NULL UNIQUE,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    -- Since when every attempt failed (NULL after any success): disables the endpoint after
    -- PULSE_WEBHOOK_DISABLE_AFTER_SECS.
    failing_since               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_project_idx ON webhooks (project_id, id DESC);

-- The outbox. A row lives from the transaction that caused it to the fan-out that expands it.
CREATE TABLE webhook_messages (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL,
    type         text NOT NULL,
    -- event.created: the new events, with their event_type and source for endpoint filters.
    event_ids    uuid[],
    event_types  text[],
    sources      text[],
    -- Other types: the message's data.
    payload      jsonb,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_messages_created_idx ON webhook_messages (created_at);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL,
    -- The Standard Webhooks message id (webhook-id header), the same on every attempt.
    message_id       text NOT NULL UNIQUE,
    type             text NOT NULL,
    -- event.created: the events the body carries (read from events at each attempt, in this
    -- order); other types: payload is the body's data.
    event_ids        uuid[],
    payload          jsonb,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- Pending: when the next attempt is due (a claim moves it past the attempt's lease).
    next_attempt_at  timestamptz,
    -- Set by each claim; only the holder of the current lease may record the attempt.
    lease            uuid,
    -- The body's timestamp: when the message was made.
    created_at       timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_response_status integer,
    last_error       text,
    completed_at     timestamptz
);
-- Claims look for due deliveries endpoint by endpoint, so a dead endpoint's backlog never
-- hides a live endpoint's deliveries.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
-- A delivery row is updated twice per attempt (claim, outcome) and its event ids never
-- change: kept out of line (uncompressed, so reading them back is cheap), those updates
-- rewrite a small row and leave the ids where they are.
ALTER TABLE webhook_deliveries ALTER COLUMN event_ids SET STORAGE EXTERNAL;
ALTER TABLE webhook_deliveries SET (toast_tuple_target = 128);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_project_idx ON webhook_deliveries (project_id, id DESC);

CREATE TABLE webhook_attempts (
    id               uuid PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    webhook_id       uuid NOT NULL,
    attempt          integer NOT NULL,
    attempted_at     timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    response_status  integer,
    -- timeout, connect, tls, dns, ssrf_refused, http_status (NULL on success)
    error_class      text,
    error_message    text,
    -- The response body, cut to 4 KB.
    response_body    text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempted_at);
