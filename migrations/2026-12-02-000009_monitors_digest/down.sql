DROP TABLE digest_subscriptions;
ALTER TABLE projects DROP COLUMN status_page_slug, DROP COLUMN status_page_enabled;
DROP TABLE monitor_breakers;
DROP TABLE monitor_incidents;
DROP TABLE monitor_daily;
DROP TABLE monitor_checks;
DROP TABLE monitors;
