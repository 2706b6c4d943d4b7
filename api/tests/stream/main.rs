//! The live stream end to end: events ingested over HTTP, stored by a real worker from real
//! Kafka into a real PostgreSQL, announced on the stored-events topic and pushed to real
//! WebSocket and SSE clients by one or two real `pulse-api` processes. One test binary with a
//! module per concern.

mod clients;
mod delivery;
mod resume;
mod slow;

use std::collections::HashSet;
use std::time::Duration;

use pulse_testkit::management::{Answer, ManagementStack, User};
use pulse_testkit::PulseProcess;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// How long a test waits for a message it expects.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A management stack with a running worker, a user, two projects and their keys.
pub struct StreamStack {
    pub stack: ManagementStack,
    pub worker: PulseProcess,
    pub user: User,
    pub project: Uuid,
    /// Scopes `ingest` and `read` on `project`.
    pub key: String,
    /// Scope `ingest` only on `project`.
    pub ingest_only: String,
    /// Another project of the same user, with its own `ingest`+`read` key.
    pub other_project: Uuid,
    pub other_key: String,
}

impl StreamStack {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let stack = ManagementStack::start(extra).await;
        let worker = PulseProcess::worker(&stack.env).await;
        let user = stack
            .register(&format!("streamer-{}@example.com", Uuid::new_v4()))
            .await;
        let project = stack.project(&user, json!({})).await;
        let (_, key) = stack
            .key(&user, project, json!({"name": "rw", "scopes": ["ingest", "read"]}))
            .await;
        let (_, ingest_only) = stack.key(&user, project, json!({"name": "w"})).await;
        let other_project = stack.project(&user, json!({})).await;
        let (_, other_key) = stack
            .key(
                &user,
                other_project,
                json!({"name": "rw", "scopes": ["ingest", "read"]}),
            )
            .await;
        Self {
            stack,
            worker,
            user,
            project,
            key,
            ingest_only,
            other_project,
            other_key,
        }
    }

    /// Sends `events` in one batch with `key`; every one must be accepted.
    pub async fn ingest_with(&self, key: &str, events: &[Value]) {
        let answer = self
            .stack
            .post("/v1/events/batch", Some(key), json!({"events": events}))
            .await;
        let body = answer.expect(202, "batch");
        assert_eq!(body["accepted"], events.len(), "{body}");
    }

    /// Sends `events` to the main project.
    pub async fn ingest(&self, events: &[Value]) {
        self.ingest_with(&self.key, events).await;
    }

    pub async fn get(&self, path: &str, credential: &str) -> Answer {
        self.stack.call(Method::GET, path, Some(credential), None).await
    }

    /// `ws://…` of the api.
    pub fn ws_url(&self, api: &PulseProcess, path_and_query: &str) -> String {
        format!("{}{path_and_query}", api.base_url().replacen("http://", "ws://", 1))
    }
}

/// `count` events of `event_type` (ids UUIDv7, so they sort by creation).
pub fn events(count: usize, event_type: &str) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"id": Uuid::now_v7(), "event_type": event_type, "source": "web", "data": {"i": i}}))
        .collect()
}

/// The ids of `events`.
pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Asserts `received` holds each of `expected` exactly once and nothing else.
pub fn assert_exactly_once(received: &[String], expected: &[String], what: &str) {
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "{what}: an event came twice");
    let wanted: HashSet<&String> = expected.iter().collect();
    assert_eq!(unique, wanted, "{what}: received set differs");
}
