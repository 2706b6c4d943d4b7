-- Alerts and email (issue 13): rules, their incidents, the email outbox with every attempt,
-- password resets, and targeted webhook messages. See docs/alerts.md.
--
-- The path of an alert:
-- 1. notify workers claim due rules (FOR UPDATE SKIP LOCKED) and evaluate each over the window
--    (whole minutes from event_rollups, the edges from events);
-- 2. a breach opens an incident: the partial unique index below lets one row per rule be
--    'firing', so with any number of workers a breach opens exactly one, and the transaction
--    that opens it writes its notices (email_messages, webhook_messages);
-- 3. the end of the breach resolves it with an UPDATE ... WHERE state = 'firing', which one
--    transaction wins, writing the recovery notices.

CREATE TABLE alert_rules (
    id                  uuid PRIMARY KEY,
    project_id          uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled             boolean NOT NULL DEFAULT true,
    -- count: matching events above/below threshold; error_ratio: share of matching events
    -- with status 'error' above threshold (at least min_events); absent: no matching event.
    kind                text NOT NULL CHECK (kind IN ('count', 'error_ratio', 'absent')),
    filter_event_type   text,
    filter_source       text,
    filter_status       text,
    window_s            integer NOT NULL CHECK (window_s BETWEEN 10 AND 604800),
    op                  text NOT NULL DEFAULT 'above' CHECK (op IN ('above', 'below')),
    threshold           double precision NOT NULL DEFAULT 0,
    min_events          integer NOT NULL DEFAULT 0 CHECK (min_events >= 0),
    cooldown_s          integer NOT NULL DEFAULT 300 CHECK (cooldown_s BETWEEN 0 AND 604800),
    renotify_s          integer NOT NULL DEFAULT 0 CHECK (renotify_s BETWEEN 0 AND 604800),
    -- Channels: addresses, webhook endpoints of the project, and (notify_owners) the owners of
    -- the project's organization as they are when the notice is written.
    emails              text[] NOT NULL DEFAULT '{}',
    webhook_ids         uuid[] NOT NULL DEFAULT '{}',
    notify_owners       boolean NOT NULL DEFAULT false,
    -- Evaluation: when the rule is next due, and what the last evaluation saw.
    next_evaluation_at  timestamptz NOT NULL DEFAULT now(),
    last_evaluated_at   timestamptz,
    last_observed       double precision,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_project_idx ON alert_rules (project_id, id DESC);
CREATE INDEX alert_rules_due_idx ON alert_rules (next_evaluation_at) WHERE enabled;

CREATE TABLE alert_incidents (
    id                uuid PRIMARY KEY,
    rule_id           uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    project_id        uuid NOT NULL,
    state             text NOT NULL CHECK (state IN ('firing', 'resolved')),
    -- What the rule was when it fired (a later edit does not rewrite history).
    rule_name         text NOT NULL,
    kind              text NOT NULL,
    op                text NOT NULL,
    threshold         double precision NOT NULL,
    window_s          integer NOT NULL,
    -- The value that breached, and the latest one seen while firing.
    observed          double precision NOT NULL,
    last_observed     double precision NOT NULL,
    started_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    -- Notices sent for it (the first, then one per re-notification) and the latest one's time.
    notifications     integer NOT NULL DEFAULT 1,
    last_notified_at  timestamptz NOT NULL
);
-- One firing incident per rule: what makes "one breach, one incident" hold across replicas.
CREATE UNIQUE INDEX alert_incidents_one_firing_idx ON alert_incidents (rule_id) WHERE state = 'firing';
CREATE INDEX alert_incidents_rule_idx ON alert_incidents (rule_id, started_at DESC, id DESC);
CREATE INDEX alert_incidents_project_idx ON alert_incidents (project_id, started_at DESC, id DESC);

-- The email outbox and log: one row per message and recipient, from the transaction that
-- caused it until it is sent or given up; attempts are logged in email_attempts.
CREATE TABLE email_messages (
    id               uuid PRIMARY KEY,
    -- NULL for mail about an account (password reset).
    project_id       uuid,
    -- alert.fired, alert.reminder, alert.resolved, webhook.disabled, password_reset
    kind             text NOT NULL,
    -- The Message-ID header, derived from what caused it: a resend is the same message.
    message_id       text NOT NULL,
    recipient        text NOT NULL,
    subject          text NOT NULL,
    text_body        text NOT NULL,
    html_body        text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    lease            uuid,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (message_id, recipient)
);
CREATE INDEX email_messages_due_idx ON email_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_messages_project_idx ON email_messages (project_id, created_at DESC);

CREATE TABLE email_attempts (
    id            uuid PRIMARY KEY,
    email_id      uuid NOT NULL REFERENCES email_messages (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    attempted_at  timestamptz NOT NULL,
    duration_ms   integer NOT NULL,
    -- NULL on success; otherwise what failed (the SMTP reply or the connection error).
    error         text
);
CREATE INDEX email_attempts_email_idx ON email_attempts (email_id, attempted_at);

-- Password resets: the token is mailed, only its SHA-256 is kept; single use.
CREATE TABLE password_resets (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- A webhook message for named endpoints only (an alert rule's channels); NULL: every endpoint
-- of the project subscribed to its type.
ALTER TABLE webhook_messages ADD COLUMN webhook_ids uuid[];
