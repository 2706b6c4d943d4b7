-- `priority` becomes an integer from 0 to 1000 (as the Event Stream Analytics API sends it,
-- `"priority": 1`), so reads can filter on it (`min_priority`). A stored value that is not such
-- a number was a free-form label: it moves to metadata.priority_label, so nothing is lost.
-- Cost: the type change rewrites every partition of `events` under an exclusive lock, so on a
-- large installation run it in a maintenance window (ingest keeps accepting into Kafka; the
-- workers wait on the lock and catch up after).
UPDATE events
SET metadata = metadata || jsonb_build_object('priority_label', priority)
WHERE priority IS NOT NULL
  AND (btrim(priority) !~ '^[0-9]{1,4}$' OR btrim(priority)::integer > 1000);

ALTER TABLE events
    ALTER COLUMN priority TYPE integer
    USING (CASE WHEN btrim(priority) ~ '^[0-9]{1,4}$' AND btrim(priority)::integer <= 1000
                THEN btrim(priority)::integer END);

ALTER TABLE events ADD CONSTRAINT events_priority_range CHECK (priority BETWEEN 0 AND 1000);
