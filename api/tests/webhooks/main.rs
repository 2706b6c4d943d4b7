//! Signed webhooks end to end: events ingested over HTTP, stored by a real persist worker from
//! real Kafka into a real PostgreSQL with their outbox messages, delivered by one or two real
//! `pulse-worker notify` processes to real HTTP receivers (`pulse_testkit::Receiver`) that
//! verify every signature with the independent `standardwebhooks` crate. Endpoints are managed
//! through the api; delivery state is read from the database. One module per concern.

mod delivery;
mod recover;
mod retries;
mod ssrf;
mod workers;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use pulse_testkit::management::{uuid, ManagementStack, User};
use pulse_testkit::{eventually, PulseEnv, PulseProcess};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// How long a test waits for what it expects.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Fast retries and loopback receivers, for every test.
pub const FAST: &[(&str, &str)] = &[
    ("PULSE_WEBHOOK_ALLOW_NETS", "127.0.0.0/8,::1/128"),
    ("PULSE_WEBHOOK_RETRY_SCHEDULE", "1,1,1,1,1,1"),
    ("PULSE_WEBHOOK_BATCH_DELAY_MS", "100"),
];

/// A management stack with a persist worker, notify workers, a user, a project and its key.
pub struct WebhookStack {
    pub stack: ManagementStack,
    pub worker: PulseProcess,
    pub notify: Vec<PulseProcess>,
    pub user: User,
    pub project: Uuid,
    pub key: String,
}

impl WebhookStack {
    /// `extra` on top of [`FAST`]; `notify_workers` notify processes with the same settings.
    pub async fn start(extra: &[(&str, &str)], notify_workers: usize) -> Self {
        let settings: Vec<(&str, &str)> = FAST.iter().chain(extra).copied().collect();
        let stack = ManagementStack::start(&settings).await;
        let worker = PulseProcess::worker(&stack.env).await;
        let mut notify = Vec::new();
        for _ in 0..notify_workers {
            notify.push(PulseProcess::notify_worker(&stack.env).await);
        }
        let user = stack.register(&format!("hooks-{}@example.com", Uuid::new_v4())).await;
        let project = stack.project(&user, json!({})).await;
        let (_, key) = stack
            .key(&user, project, json!({"name": "rw", "scopes": ["ingest", "read"]}))
            .await;
        Self {
            stack,
            worker,
            notify,
            user,
            project,
            key,
        }
    }

    /// Starts a notify worker with `env` (e.g. different settings from the api's).
    pub async fn add_notify(&mut self, env: &PulseEnv) {
        self.notify.push(PulseProcess::notify_worker(env).await);
    }

    /// Creates an endpoint (201 expected); returns its id and secret.
    pub async fn create_webhook(&self, body: Value) -> (Uuid, String) {
        let created = self
            .call(
                Method::POST,
                &format!("/v1/projects/{}/webhooks", self.project),
                Some(body),
            )
            .await
            .expect(201, "create webhook");
        let secret = created["secret"].as_str().expect("secret").to_owned();
        (uuid(&created["id"]), secret)
    }

    /// A management call with the user's token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> pulse_testkit::management::Answer {
        self.stack.call(method, path, Some(&self.user.access), body).await
    }

    pub fn webhook_path(&self, webhook: Uuid) -> String {
        format!("/v1/projects/{}/webhooks/{webhook}", self.project)
    }

    /// Sends `events` in one batch; every one must be accepted.
    pub async fn ingest(&self, events: &[Value]) {
        let answer = self
            .stack
            .post("/v1/events/batch", Some(&self.key), json!({"events": events}))
            .await;
        let body = answer.expect(202, "batch");
        assert_eq!(body["accepted"], events.len(), "{body}");
    }

    /// Deliveries of `webhook` by status, from the database.
    pub async fn statuses(&self, webhook: Uuid) -> HashMap<String, i64> {
        let client = self.stack.db.client().await;
        client
            .query(
                "SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY status",
                &[&webhook],
            )
            .await
            .expect("statuses")
            .into_iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect()
    }

    /// Waits until `webhook` has `count` deliveries and all of them have `status`.
    pub async fn wait_all(&self, webhook: Uuid, status: &str, count: i64) {
        let reached = eventually(PATIENCE, || async {
            let statuses = self.statuses(webhook).await;
            (statuses.get(status).copied() == Some(count) && statuses.len() == 1).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "{webhook}: expected {count} {status}, have {:?}",
            self.statuses(webhook).await
        );
    }

    /// Attempts of `webhook` as (delivery, attempt, response status, error class).
    pub async fn attempts(&self, webhook: Uuid) -> Vec<(Uuid, i32, Option<i32>, Option<String>)> {
        let client = self.stack.db.client().await;
        client
            .query(
                "SELECT delivery_id, attempt, response_status, error_class FROM webhook_attempts
                 WHERE webhook_id = $1 ORDER BY delivery_id, attempt",
                &[&webhook],
            )
            .await
            .expect("attempts")
            .into_iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }
}

/// `count` events of `event_type` from `source`.
pub fn events(count: usize, event_type: &str, source: &str) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"id": Uuid::now_v7(), "event_type": event_type, "source": source, "data": {"i": i}}))
        .collect()
}

/// The ids of `events`.
pub fn ids(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The ids of the events a receiver accepted, each as often as it was accepted.
pub fn accepted_event_ids(receiver: &pulse_testkit::Receiver) -> Vec<String> {
    receiver
        .accepted()
        .iter()
        .flat_map(|request| request.events())
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Waits until `receiver` accepted `expected` events; then asserts each exactly once.
pub async fn wait_events_once(receiver: &pulse_testkit::Receiver, expected: &HashSet<String>, what: &str) {
    eventually(PATIENCE, || async {
        (accepted_event_ids(receiver).len() >= expected.len()).then_some(())
    })
    .await;
    let got = accepted_event_ids(receiver);
    let unique: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "{what}: an event was delivered twice");
    assert_eq!(&unique, expected, "{what}: delivered events differ");
}
