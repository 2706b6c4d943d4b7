//! What a monitor's notices say and where they go: `monitor.down` (and its reminders while down),
//! `monitor.up` and `monitor.cert_expiring`, each one email to the monitor's `emails` (a text
//! and an HTML part, every value escaped, a `Message-ID` derived from the incident or the
//! certificate and the notice's sequence, so a retried transaction writes the same message
//! once) and one webhook message to its `webhook_ids`, written into the outboxes by the
//! recording transaction (`super::record`). Composed like the alert notices of
//! `worker/src/notify/alerts/notices.rs`: a table of `Key: value` lines.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};
use uuid::Uuid;

use super::probe::MailSettings;
use crate::email::{self, Email};
use crate::webhook;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Down,
    /// Still down after `renotify_s`.
    Reminder,
    Up,
    CertExpiring,
}

/// The monitor and the facts a notice reports.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub monitor_id: Uuid,
    pub project_id: Uuid,
    pub name: &'a str,
    pub url: &'a str,
    /// The incident (down, reminder, up); for a certificate notice, none.
    pub incident_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub error_class: Option<&'a str>,
    pub error: Option<&'a str>,
    pub cert_expires_at: Option<DateTime<Utc>>,
    /// Which notice of its cause this is (1 = the first), for message ids.
    pub sequence: u32,
}

/// Writes the notice's email (one per recipient) and webhook message, in the caller's
/// transaction.
pub async fn write(
    conn: &mut AsyncPgConnection,
    notice: Notice,
    facts: &Facts<'_>,
    emails: &[String],
    webhook_ids: &[Uuid],
    mail: &MailSettings,
) -> QueryResult<()> {
    if !emails.is_empty() {
        email::enqueue(conn, &compose(notice, facts, mail), emails).await?;
    }
    let message_type = match notice {
        Notice::Down | Notice::Reminder => webhook::MONITOR_DOWN,
        Notice::Up => webhook::MONITOR_UP,
        Notice::CertExpiring => webhook::MONITOR_CERT_EXPIRING,
    };
    webhook::outbox::enqueue_to(
        conn,
        facts.project_id,
        message_type,
        &webhook_data(notice, facts),
        webhook_ids,
    )
    .await
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The webhook `data` of a notice.
pub fn webhook_data(notice: Notice, facts: &Facts<'_>) -> Value {
    let mut data = json!({
        "monitor_id": facts.monitor_id,
        "monitor_name": facts.name,
        "project_id": facts.project_id,
        "url": facts.url,
    });
    match notice {
        Notice::Down | Notice::Reminder => {
            data["incident_id"] = json!(facts.incident_id);
            data["state"] = json!("down");
            data["started_at"] = json!(rfc3339(facts.started_at));
            data["error_class"] = json!(facts.error_class);
            data["error"] = json!(facts.error);
            data["reminder"] = json!(notice == Notice::Reminder);
        }
        Notice::Up => {
            let resolved_at = facts.resolved_at.unwrap_or(facts.started_at);
            data["incident_id"] = json!(facts.incident_id);
            data["state"] = json!("up");
            data["started_at"] = json!(rfc3339(facts.started_at));
            data["resolved_at"] = json!(rfc3339(resolved_at));
            data["duration_s"] = json!((resolved_at - facts.started_at).num_seconds());
        }
        Notice::CertExpiring => {
            data["cert_expires_at"] = json!(facts.cert_expires_at.map(rfc3339));
            data["days_left"] = json!(facts.cert_expires_at.map(|at| (at - facts.started_at).num_days()));
        }
    }
    data
}

/// Escapes text for HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// The email of a notice.
pub fn compose(notice: Notice, facts: &Facts<'_>, mail: &MailSettings) -> Email {
    let (kind, state) = match notice {
        Notice::Down => (email::MONITOR_DOWN, "DOWN"),
        Notice::Reminder => (email::MONITOR_REMINDER, "STILL DOWN"),
        Notice::Up => (email::MONITOR_UP, "UP"),
        Notice::CertExpiring => (email::MONITOR_CERT_EXPIRING, "CERTIFICATE EXPIRING"),
    };
    let link = format!(
        "{}/v1/projects/{}/monitors/{}",
        mail.public_url, facts.project_id, facts.monitor_id
    );
    let mut lines = vec![
        format!("Monitor: {}", facts.name),
        format!("URL: {}", facts.url),
        format!("State: {state}"),
    ];
    match notice {
        Notice::Down | Notice::Reminder | Notice::Up => {
            if let Some(class) = facts.error_class.filter(|_| notice != Notice::Up) {
                lines.push(format!("Error: {class}: {}", facts.error.unwrap_or_default()));
            }
            lines.push(format!("Down since: {}", rfc3339(facts.started_at)));
            if let Some(resolved_at) = facts.resolved_at {
                lines.push(format!("Up since: {}", rfc3339(resolved_at)));
                lines.push(format!(
                    "Down for: {} s",
                    (resolved_at - facts.started_at).num_seconds()
                ));
            }
            if let Some(incident) = facts.incident_id {
                lines.push(format!("Incident: {incident}"));
            }
        }
        Notice::CertExpiring => {
            if let Some(expires) = facts.cert_expires_at {
                lines.push(format!("Certificate expires: {}", rfc3339(expires)));
            }
        }
    }
    lines.push(format!("Project: {}", facts.project_id));
    lines.push(format!("Details: {link}"));
    let rows: String = lines
        .iter()
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| {
            format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html><body><h2>{} — {}</h2><table>{rows}</table><p><a href=\"{}\">Open the monitor</a></p></body></html>",
        escape(state),
        escape(facts.name),
        escape(&link)
    );
    // The cause a message id names: the incident, or for a certificate the monitor and the
    // expiry (a new certificate is a new cause).
    let cause = facts.incident_id.unwrap_or_else(|| {
        let expiry = facts.cert_expires_at.map_or(0, |at| at.timestamp());
        Uuid::from_u64_pair(facts.monitor_id.as_u64_pair().0, expiry as u64)
    });
    Email {
        project_id: Some(facts.project_id),
        kind,
        message_id: email::message_id(kind, cause, facts.sequence, &mail.domain),
        subject: format!("[Pulse] {state}: {}", facts.name),
        text_body: lines.join("\n") + "\n",
        html_body: html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> MailSettings {
        MailSettings {
            public_url: "https://pulse.example.com".into(),
            domain: "example.com".into(),
        }
    }

    #[test]
    fn notices_escape_what_the_monitor_says() {
        let facts = Facts {
            monitor_id: Uuid::now_v7(),
            project_id: Uuid::now_v7(),
            name: "<script>alert(1)</script>",
            url: "https://example.com/?a=1&b=2",
            incident_id: Some(Uuid::now_v7()),
            started_at: Utc::now(),
            resolved_at: None,
            error_class: Some("status"),
            error: Some("answered 503, expected 2xx"),
            cert_expires_at: None,
            sequence: 1,
        };
        let email = compose(Notice::Down, &facts, &mail());
        assert!(email.html_body.contains("&lt;script&gt;") && !email.html_body.contains("<script>"));
        assert!(email.html_body.contains("a=1&amp;b=2"));
        assert!(email.text_body.contains("State: DOWN") && email.text_body.contains("Error: status: answered 503"));
        assert!(email.message_id.starts_with("monitor.down."));
        let data = webhook_data(Notice::Down, &facts);
        assert_eq!(data["state"], "down");
        assert_eq!(data["error_class"], "status");
        assert_eq!(data["reminder"], false);
        let up = webhook_data(
            Notice::Up,
            &Facts {
                resolved_at: Some(facts.started_at + chrono::TimeDelta::seconds(90)),
                ..facts.clone()
            },
        );
        assert_eq!(up["duration_s"], 90);
    }
}
