//! What an incident says and to whom: the email (a text and an HTML part, a `Message-ID`
//! derived from the incident and the notice's sequence) and the webhook `data`, written into
//! the outboxes by the caller's transaction. Recipients are the rule's addresses plus, when
//! it asks, the owners of the project's organization as they are now.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::email::{self, Email};
use pulse_shared::schema::{memberships, organizations, projects, users};
use serde_json::{json, Value};
use uuid::Uuid;

use super::rules::Rule;
use crate::notify::email::compose::escape;

/// What mail needs of the configuration: links and message ids.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Base of the links in mail, without a trailing slash.
    pub public_url: String,
    /// The domain of `Message-ID`s.
    pub domain: String,
}

impl Mail {
    pub fn new(config: &pulse_shared::config::EmailConfig) -> Self {
        Self {
            public_url: config.public_url.clone(),
            domain: email::from_domain(&config.from).to_owned(),
        }
    }
}

/// Which notice of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Fired,
    /// Still firing after `renotify_s`.
    Reminder,
    Resolved,
}

/// The incident as its notices describe it.
#[derive(Debug, Clone)]
pub struct IncidentFacts {
    pub incident_id: Uuid,
    pub observed: f64,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Which notice this is (1 = the first), for reminders' message ids.
    pub sequence: u32,
}

/// The email addresses of the owners of `project_id`'s organization.
pub async fn owner_emails(conn: &mut AsyncPgConnection, project_id: Uuid) -> QueryResult<Vec<String>> {
    projects::table
        .inner_join(organizations::table)
        .inner_join(memberships::table.on(memberships::organization_id.eq(organizations::id)))
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(projects::id.eq(project_id))
        .filter(memberships::role.eq("owner"))
        .select(users::email)
        .load(conn)
        .await
}

/// Writes the notice's email (one per recipient) and webhook message.
pub async fn write(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    facts: &IncidentFacts,
    notice: Notice,
    mail: &Mail,
) -> QueryResult<()> {
    let mut recipients = rule.emails.clone();
    if rule.notify_owners {
        recipients.extend(owner_emails(conn, rule.project_id).await?);
    }
    if !recipients.is_empty() {
        let project_name: String = projects::table
            .find(rule.project_id)
            .select(projects::name)
            .first(conn)
            .await
            .optional()?
            .unwrap_or_default();
        email::enqueue(conn, &compose(rule, facts, notice, mail, &project_name), &recipients).await?;
    }
    let message_type = match notice {
        Notice::Fired | Notice::Reminder => pulse_shared::webhook::ALERT_FIRED,
        Notice::Resolved => pulse_shared::webhook::ALERT_RESOLVED,
    };
    pulse_shared::webhook::outbox::enqueue_to(
        conn,
        rule.project_id,
        message_type,
        &webhook_data(rule, facts, notice),
        &rule.webhook_ids,
    )
    .await
}

/// The webhook `data` of a notice.
pub fn webhook_data(rule: &Rule, facts: &IncidentFacts, notice: Notice) -> Value {
    let mut data = json!({
        "alert_id": rule.id,
        "alert_name": rule.name,
        "incident_id": facts.incident_id,
        "project_id": rule.project_id,
        "kind": rule.kind,
        "observed": facts.observed,
        "threshold": threshold(rule),
        "window_s": rule.window_s,
        "started_at": rfc3339(facts.started_at),
    });
    match notice {
        Notice::Fired => data["reminder"] = json!(false),
        Notice::Reminder => data["reminder"] = json!(true),
        Notice::Resolved => {
            let resolved_at = facts.resolved_at.unwrap_or(facts.started_at);
            data["resolved_at"] = json!(rfc3339(resolved_at));
            data["duration_s"] = json!((resolved_at - facts.started_at).num_seconds());
        }
    }
    data
}

/// The threshold as reported (`absent` has none: null).
fn threshold(rule: &Rule) -> Value {
    if rule.kind == "absent" {
        Value::Null
    } else {
        json!(rule.threshold)
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The rule's condition in words: "more than 10 events with status error in 5 min".
pub fn describe(rule: &Rule) -> String {
    let mut filter = Vec::new();
    if let Some(event_type) = &rule.filter_event_type {
        filter.push(format!("event_type {event_type}"));
    }
    if let Some(source) = &rule.filter_source {
        filter.push(format!("source {source}"));
    }
    if let Some(status) = &rule.filter_status {
        filter.push(format!("status {status}"));
    }
    let events = if filter.is_empty() {
        "events".to_owned()
    } else {
        format!("events with {}", filter.join(", "))
    };
    let window = window(rule.window_s);
    match rule.kind.as_str() {
        "error_ratio" => format!(
            "more than {}% of {events} with status error in {window} (at least {} events)",
            rule.threshold * 100.0,
            rule.min_events
        ),
        "absent" => format!("no {events} in {window}"),
        _ if rule.op == "below" => format!("fewer than {} {events} in {window}", rule.threshold),
        _ => format!("more than {} {events} in {window}", rule.threshold),
    }
}

fn window(seconds: i32) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn observed(rule: &Rule, value: f64) -> String {
    if rule.kind == "error_ratio" {
        format!("{:.1}% errors", value * 100.0)
    } else {
        format!("{value} events")
    }
}

/// The email of a notice.
pub fn compose(rule: &Rule, facts: &IncidentFacts, notice: Notice, mail: &Mail, project_name: &str) -> Email {
    let (kind, state) = match notice {
        Notice::Fired => (email::ALERT_FIRED, "FIRING"),
        Notice::Reminder => (email::ALERT_REMINDER, "STILL FIRING"),
        Notice::Resolved => (email::ALERT_RESOLVED, "RESOLVED"),
    };
    let link = format!(
        "{}/v1/projects/{}/alerts/{}/incidents",
        mail.public_url, rule.project_id, rule.id
    );
    let condition = describe(rule);
    let mut lines = vec![
        format!("Alert: {}", rule.name),
        format!("Project: {project_name} ({})", rule.project_id),
        format!("State: {state}"),
        format!("Condition: {condition}"),
        format!("Observed: {}", observed(rule, facts.observed)),
        format!("Started: {}", rfc3339(facts.started_at)),
    ];
    if let Some(resolved_at) = facts.resolved_at {
        lines.push(format!("Resolved: {}", rfc3339(resolved_at)));
        lines.push(format!("Lasted: {} s", (resolved_at - facts.started_at).num_seconds()));
    }
    lines.push(format!("Incident: {}", facts.incident_id));
    lines.push(format!("Details: {link}"));
    let text = lines.join("\n") + "\n";
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
        "<!doctype html><html><body><h2>{} — {}</h2><table>{rows}</table><p><a href=\"{}\">Open the incidents</a></p></body></html>",
        escape(state),
        escape(&rule.name),
        escape(&link)
    );
    Email {
        project_id: Some(rule.project_id),
        kind,
        message_id: email::message_id(kind, facts.incident_id, facts.sequence, &mail.domain),
        subject: format!("[Pulse] {state}: {} ({project_name})", rule.name),
        text_body: text,
        html_body: html,
    }
}
