DROP TABLE event_rollups_hourly;
DROP INDEX event_rollups_deltas_idx;
ALTER TABLE event_rollups DROP COLUMN compacted;
