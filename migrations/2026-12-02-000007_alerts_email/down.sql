ALTER TABLE webhook_messages DROP COLUMN webhook_ids;
DROP TABLE password_resets;
DROP TABLE email_attempts;
DROP TABLE email_messages;
DROP TABLE alert_incidents;
DROP TABLE alert_rules;
