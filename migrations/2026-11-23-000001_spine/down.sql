DROP FUNCTION IF EXISTS pulse_ensure_event_partitions(integer);
DROP TABLE IF EXISTS event_ids;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS projects;
DROP TABLE IF EXISTS organizations;
