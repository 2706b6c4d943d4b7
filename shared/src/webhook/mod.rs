//! Signed webhooks, the parts more than one binary needs: what an endpoint can subscribe to,
//! the Standard Webhooks signature ([`signing`]) and secrets ([`secret`]), the SSRF guard
//! ([`ssrf`]) and the outbox that every cause of a message writes into ([`outbox`]).
//!
//! The api manages endpoints and shows deliveries; `pulse-worker notify` expands the outbox
//! and delivers (`worker/src/notify/`). The whole design is in docs/webhooks.md.

pub mod outbox;
pub mod secret;
pub mod signing;
pub mod ssrf;

use uuid::Uuid;

/// Message types an endpoint can subscribe to (`event_types`).
pub const MESSAGE_TYPES: [&str; 7] = [
    EVENT_CREATED,
    ALERT_FIRED,
    ALERT_RESOLVED,
    MONITOR_DOWN,
    MONITOR_UP,
    MONITOR_CERT_EXPIRING,
    WEBHOOK_DISABLED,
];
/// New events; `data.events` carries them as `GET /v1/events/{id}` shows them.
pub const EVENT_CREATED: &str = "event.created";
/// An alert rule's incident opened (and, with `renotify_s`, is still open: `data.reminder`).
pub const ALERT_FIRED: &str = "alert.fired";
/// An alert rule's incident ended; `data` adds `resolved_at` and `duration_s`.
pub const ALERT_RESOLVED: &str = "alert.resolved";
/// An uptime monitor went down (and, with `renotify_s`, is still down: `data.reminder`);
/// `data` as docs/monitors.md shows it.
pub const MONITOR_DOWN: &str = "monitor.down";
/// An uptime monitor is up again; `data` adds `resolved_at` and `duration_s`.
pub const MONITOR_UP: &str = "monitor.up";
/// A monitored HTTPS certificate expires within the monitor's `cert_expiry_days` (once per
/// certificate).
pub const MONITOR_CERT_EXPIRING: &str = "monitor.cert_expiring";
/// An endpoint of the project was disabled (410 Gone, or failing for too long).
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
/// What `POST …/webhooks/{id}/test` sends; not subscribable, sent to the one endpoint.
pub const WEBHOOK_TEST: &str = "webhook.test";

/// The Standard Webhooks message id of a delivery (`webhook-id`): `msg_` and the delivery's
/// UUID in 32 hex digits. The same on every attempt and replay of the delivery.
pub fn message_id(delivery_id: Uuid) -> String {
    format!("msg_{}", delivery_id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_name_the_delivery() {
        let id = Uuid::parse_str("0192f0c1-7a3e-7000-8000-00000000d001").expect("uuid");
        assert_eq!(message_id(id), "msg_0192f0c17a3e7000800000000000d001");
    }
}
