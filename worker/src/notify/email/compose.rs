//! The mail the notify worker writes besides alert notices: the notice to a project's owners
//! that one of its webhook endpoints was disabled. Also the one HTML escaping of the notify
//! role (the `html-escape` crate).

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use pulse_shared::email::{self, Email};
use uuid::Uuid;

use crate::notify::alerts::notices::{owner_emails, Mail};

/// Escapes text for HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// What the disabled-endpoint notice says.
pub struct DisabledEndpoint<'a> {
    pub project_id: Uuid,
    pub webhook_id: Uuid,
    pub name: &'a str,
    pub url: &'a str,
    pub reason: &'a str,
    pub disabled_at: DateTime<Utc>,
}

/// Writes the disabled-endpoint notice to the owners of the project's organization, in the
/// caller's transaction.
pub async fn webhook_disabled(
    conn: &mut AsyncPgConnection,
    endpoint: &DisabledEndpoint<'_>,
    mail: &Mail,
) -> QueryResult<()> {
    let owners = owner_emails(conn, endpoint.project_id).await?;
    if owners.is_empty() {
        return Ok(());
    }
    let link = format!(
        "{}/v1/projects/{}/webhooks/{}",
        mail.public_url, endpoint.project_id, endpoint.webhook_id
    );
    let lines = [
        format!("Endpoint: {}", endpoint.name),
        format!("URL: {}", endpoint.url),
        format!("Reason: {}", endpoint.reason),
        format!(
            "Disabled: {}",
            endpoint.disabled_at.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
        format!("Project: {}", endpoint.project_id),
        "Its pending deliveries were failed; re-enable it with PATCH {\"enabled\": true} and replay what it missed with POST …/recover.".to_owned(),
        format!("Details: {link}"),
    ];
    let rows: String = lines
        .iter()
        .map(|line| match line.split_once(": ") {
            Some((key, value)) => format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            ),
            None => format!("<tr><td colspan=\"2\">{}</td></tr>", escape(line)),
        })
        .collect();
    let message = Email {
        project_id: Some(endpoint.project_id),
        kind: email::WEBHOOK_DISABLED,
        message_id: email::message_id(email::WEBHOOK_DISABLED, Uuid::now_v7(), 0, &mail.domain),
        subject: format!("[Pulse] Webhook endpoint disabled: {}", endpoint.name),
        text_body: lines.join("\n") + "\n",
        html_body: format!(
            "<!doctype html><html><body><h2>Webhook endpoint disabled — {}</h2><table>{rows}</table></body></html>",
            escape(endpoint.name)
        ),
    };
    email::enqueue(conn, &message, &owners).await.map(|_| ())
}
