ALTER TABLE events DROP CONSTRAINT events_priority_range;
ALTER TABLE events ALTER COLUMN priority TYPE text USING priority::text;
UPDATE events
SET priority = metadata ->> 'priority_label', metadata = metadata - 'priority_label'
WHERE metadata ? 'priority_label';
