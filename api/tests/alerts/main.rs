//! Alerts and email end to end: events ingested over HTTP, stored by a real persist worker from
//! real Kafka into a real PostgreSQL, rules evaluated by one or two real `pulse-worker notify`
//! processes, their email sent over SMTP to a real server (`pulse_testkit::SmtpCapture`,
//! aiosmtpd) and their webhooks to real HTTP receivers that verify every signature. Rules are
//! managed through the api. One module per concern.

mod email;
mod firing;
mod reminders;
mod silence;

use std::time::Duration;

use pulse_testkit::management::{uuid, ManagementStack, User};
use pulse_testkit::{eventually, Captured, PulseProcess, SmtpCapture};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// How long a test waits for what it expects.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Prompt evaluation, fast retries, loopback receivers, for every test.
pub const FAST: &[(&str, &str)] = &[
    ("PULSE_ALERT_EVAL_INTERVAL_MS", "500"),
    ("PULSE_EMAIL_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"),
    ("PULSE_WEBHOOK_ALLOW_NETS", "127.0.0.0/8,::1/128"),
    ("PULSE_WEBHOOK_RETRY_SCHEDULE", "1,1,1,1,1,1"),
    ("PULSE_WEBHOOK_BATCH_DELAY_MS", "100"),
    ("PULSE_SMTP_FROM", "Pulse Alerts <alerts@pulse.test>"),
    ("PULSE_PUBLIC_URL", "https://pulse.test"),
];

/// A management stack with a persist worker, notify workers sending to `smtp`, a user, a
/// project and its key.
pub struct AlertStack {
    pub stack: ManagementStack,
    pub worker: PulseProcess,
    pub notify: Vec<PulseProcess>,
    pub smtp: SmtpCapture,
    pub user: User,
    pub owner_email: String,
    pub project: Uuid,
    pub key: String,
}

impl AlertStack {
    /// `extra` on top of [`FAST`]; `notify_workers` notify processes sending to `smtp`.
    pub async fn start(smtp: SmtpCapture, extra: &[(&str, &str)], notify_workers: usize) -> Self {
        let smtp_url = smtp.url();
        let mut settings: Vec<(&str, &str)> = FAST.iter().chain(extra).copied().collect();
        settings.push(("PULSE_SMTP_URL", &smtp_url));
        let stack = ManagementStack::start(&settings).await;
        let worker = PulseProcess::worker(&stack.env).await;
        let mut notify = Vec::new();
        for _ in 0..notify_workers {
            notify.push(PulseProcess::notify_worker(&stack.env).await);
        }
        let owner_email = format!("owner-{}@example.com", Uuid::new_v4().simple());
        let user = stack.register(&owner_email).await;
        let project = stack.project(&user, json!({})).await;
        let (_, key) = stack
            .key(&user, project, json!({"name": "rw", "scopes": ["ingest", "read"]}))
            .await;
        Self {
            stack,
            worker,
            notify,
            smtp,
            user,
            owner_email,
            project,
            key,
        }
    }

    /// A management call with the owner's token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> pulse_testkit::management::Answer {
        self.stack.call(method, path, Some(&self.user.access), body).await
    }

    /// Creates a rule (201 expected); returns its id.
    pub async fn create_rule(&self, rule: Value) -> Uuid {
        let created = self
            .call(
                Method::POST,
                &format!("/v1/projects/{}/alerts", self.project),
                Some(rule),
            )
            .await
            .expect(201, "create rule");
        uuid(&created["id"])
    }

    /// Turns the project's default rule off, for tests that count every mail.
    pub async fn disable_default_rule(&self) {
        let rules = self
            .call(Method::GET, &format!("/v1/projects/{}/alerts", self.project), None)
            .await
            .expect(200, "rules");
        for rule in rules["data"].as_array().expect("data") {
            self.call(
                Method::PATCH,
                &format!(
                    "/v1/projects/{}/alerts/{}",
                    self.project,
                    rule["id"].as_str().expect("id")
                ),
                Some(json!({"enabled": false})),
            )
            .await
            .expect(200, "disable default rule");
        }
    }

    /// Creates a webhook endpoint at `url` (201 expected); returns its id and secret.
    pub async fn create_webhook(&self, url: &str, event_types: &[&str]) -> (Uuid, String) {
        let created = self
            .call(
                Method::POST,
                &format!("/v1/projects/{}/webhooks", self.project),
                Some(json!({"name": "alerts", "url": url, "event_types": event_types})),
            )
            .await
            .expect(201, "create webhook");
        (
            uuid(&created["id"]),
            created["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// Sends `events` in batches of 1,000; every one must be accepted.
    pub async fn ingest(&self, events: &[Value]) {
        for chunk in events.chunks(1000) {
            let answer = self
                .stack
                .post("/v1/events/batch", Some(&self.key), json!({"events": chunk}))
                .await;
            let body = answer.expect(202, "batch");
            assert_eq!(body["accepted"], chunk.len(), "{body}");
        }
    }

    /// The incidents of the project in `state`, through the api.
    pub async fn incidents(&self, state: &str) -> Vec<Value> {
        self.call(
            Method::GET,
            &format!("/v1/projects/{}/incidents?state={state}", self.project),
            None,
        )
        .await
        .expect(200, "incidents")["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the project has `count` incidents in `state`.
    pub async fn wait_incidents(&self, state: &str, count: usize) -> Vec<Value> {
        let found = eventually(PATIENCE, || async {
            let incidents = self.incidents(state).await;
            (incidents.len() >= count).then_some(incidents)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected {count} {state} incidents"))
    }

    /// The mail `recipient` received, in order.
    pub fn mail_to(&self, recipient: &str) -> Vec<Captured> {
        mail_to(&self.smtp, recipient)
    }

    /// Waits until `recipient` received `count` messages; returns them all.
    pub async fn wait_mail(&self, recipient: &str, count: usize) -> Vec<Captured> {
        let found = eventually(PATIENCE, || async {
            let mail = self.mail_to(recipient);
            (mail.len() >= count).then_some(mail)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "expected {count} messages to {recipient}, got {:?}",
                self.mail_to(recipient)
            )
        })
    }
}

/// The mail `smtp` accepted for `recipient`.
pub fn mail_to(smtp: &SmtpCapture, recipient: &str) -> Vec<Captured> {
    smtp.messages()
        .into_iter()
        .filter(|message| message.recipients.iter().any(|to| to == recipient))
        .collect()
}

/// `count` events of `event_type` with `status`.
pub fn events(count: usize, event_type: &str, status: &str) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"id": Uuid::now_v7(), "event_type": event_type, "status": status, "data": {"i": i}}))
        .collect()
}
