ALTER TABLE api_keys DROP COLUMN IF EXISTS rotated_from;
DROP INDEX IF EXISTS projects_deleted_idx;
ALTER TABLE projects
    DROP COLUMN IF EXISTS deleted_at,
    DROP COLUMN IF EXISTS ingest_rate_limit_per_sec,
    DROP COLUMN IF EXISTS retention_days;
ALTER TABLE organizations DROP COLUMN IF EXISTS deleted_at;
DROP TABLE IF EXISTS refresh_tokens;
DROP TABLE IF EXISTS memberships;
DROP TABLE IF EXISTS users;
