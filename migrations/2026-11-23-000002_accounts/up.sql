-- Accounts and tenancy management: users, their sessions (refresh tokens), memberships of
-- organizations with roles, project settings, soft deletion picked up by a background purge,
-- and API key rotation.

-- Emails are stored normalized (trimmed, lower-cased) by the api, so a plain UNIQUE suffices.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A user's role in an organization. A user can belong to several organizations.
CREATE TABLE memberships (
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role             text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- Refresh tokens: only their SHA-256 is stored. Every login starts a family; each refresh
-- consumes its token (used_at) and issues the next one in the same family. Presenting a
-- consumed token again is reuse: the whole family is revoked.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Organizations whose last member deleted their account are marked, then removed by the purge
-- once their projects are gone.
ALTER TABLE organizations ADD COLUMN deleted_at timestamptz;

-- Project settings, and soft deletion: a deleted project is invisible at once (its keys are
-- revoked in the same transaction) and its events are deleted in bounded batches by the purge
-- job, which claims projects with FOR UPDATE SKIP LOCKED, so several api replicas share it.
-- ingest_rate_limit_per_sec NULL means the api's default (PULSE_INGEST_RATE_LIMIT_PER_SEC).
ALTER TABLE projects
    ADD COLUMN retention_days integer NOT NULL DEFAULT 30 CHECK (retention_days BETWEEN 1 AND 3650),
    ADD COLUMN ingest_rate_limit_per_sec integer CHECK (ingest_rate_limit_per_sec BETWEEN 1 AND 1000000),
    ADD COLUMN deleted_at timestamptz;
CREATE INDEX projects_deleted_idx ON projects (deleted_at) WHERE deleted_at IS NOT NULL;

-- Rotation: the new key points at the key it replaces; the old key's expires_at is set to the
-- end of the grace period.
ALTER TABLE api_keys ADD COLUMN rotated_from uuid REFERENCES api_keys (id) ON DELETE SET NULL;
