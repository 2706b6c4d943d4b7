DROP TABLE event_rollups;
