//! Email, the parts more than one binary needs: the outbox every cause of a message writes
//! into, inside its own transaction ([`outbox`]), and the `Message-ID` a message is known by.
//!
//! The api writes password-reset mail; `pulse-worker notify` writes alert and webhook notices
//! and sends the outbox with lettre (`worker/src/notify/email/`); monitor notices come from
//! whoever records the check (the scheduler, or the api's "check now"), the daily digest from
//! the scheduler's `digest` job and `pulse-api admin send-digest`. The design is in
//! docs/alerts.md.

pub mod outbox;

pub use outbox::{enqueue, Email};

/// What a message is about (`email_messages.kind`).
pub const ALERT_FIRED: &str = "alert.fired";
pub const ALERT_REMINDER: &str = "alert.reminder";
pub const ALERT_RESOLVED: &str = "alert.resolved";
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
pub const PASSWORD_RESET: &str = "password_reset";
/// An uptime monitor went down, is still down (`monitor.reminder`), is up again, or its HTTPS
/// certificate expires soon (`shared/src/monitor/notices.rs`).
pub const MONITOR_DOWN: &str = "monitor.down";
pub const MONITOR_REMINDER: &str = "monitor.reminder";
pub const MONITOR_UP: &str = "monitor.up";
pub const MONITOR_CERT_EXPIRING: &str = "monitor.cert_expiring";
/// A project's daily digest (`shared/src/digest/`).
pub const DIGEST_DAILY: &str = "digest.daily";

/// A `Message-ID` (without the angle brackets) naming what caused a message: `kind`, the id
/// of its cause and, for causes that send more than once (re-notifications), a sequence. The
/// same cause always gives the same id, so a resend is recognisably the same message.
pub fn message_id(kind: &str, cause: uuid::Uuid, sequence: u32, domain: &str) -> String {
    format!("{kind}.{}.{sequence}@{domain}", cause.simple())
}

/// The domain of a `From` value (`Pulse <alerts@example.com>` → `example.com`), for message
/// ids.
pub fn from_domain(from: &str) -> &str {
    let address = from.trim().trim_end_matches('>');
    address.rsplit_once('@').map_or("localhost", |(_, domain)| domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_name_their_cause() {
        let id = uuid::Uuid::parse_str("0192f0c1-7a3e-7000-8000-00000000d001").expect("uuid");
        assert_eq!(
            message_id(ALERT_FIRED, id, 2, "example.com"),
            "alert.fired.0192f0c17a3e7000800000000000d001.2@example.com"
        );
        assert_eq!(from_domain("Pulse <alerts@example.com>"), "example.com");
        assert_eq!(from_domain("alerts@mail.example.com"), "mail.example.com");
        assert_eq!(from_domain("nobody"), "localhost");
    }
}
