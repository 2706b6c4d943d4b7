//! The read side end to end: events ingested over HTTP, persisted by a real worker from real
//! Kafka into a real PostgreSQL, read back over HTTP by API key (scope `read`) or access token.
//! Named metrics (`metrics`) run a `pulse-worker metrics` beside the persist worker. One test
//! binary with a module per concern.

mod analytics;
mod events;
mod export;
mod metrics;
mod paging;
mod rollups;

use std::time::Duration;

use pulse_testkit::management::{Answer, ManagementStack, User};
use pulse_testkit::PulseProcess;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A management stack with a running worker, a user, a project and its keys.
pub struct ReadStack {
    pub stack: ManagementStack,
    pub worker: PulseProcess,
    pub user: User,
    pub project: Uuid,
    /// Scopes `ingest` and `read`.
    pub key: String,
    /// Scope `ingest` only.
    pub ingest_only: String,
}

impl ReadStack {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let stack = ManagementStack::start(extra).await;
        let worker = PulseProcess::worker(&stack.env).await;
        let user = stack.register(&format!("reader-{}@example.com", Uuid::new_v4())).await;
        let project = stack.project(&user, json!({})).await;
        let (_, key) = stack
            .key(&user, project, json!({"name": "rw", "scopes": ["ingest", "read"]}))
            .await;
        let (_, ingest_only) = stack.key(&user, project, json!({"name": "w"})).await;
        Self {
            stack,
            worker,
            user,
            project,
            key,
            ingest_only,
        }
    }

    /// Sends `events` in one batch with the read/write key; every one must be accepted.
    pub async fn ingest(&self, events: &[Value]) {
        let answer = self
            .stack
            .post("/v1/events/batch", Some(&self.key), json!({"events": events}))
            .await;
        let body = answer.expect(202, "batch");
        assert_eq!(body["accepted"], events.len(), "{body}");
    }

    /// Waits until the project holds `count` events.
    pub async fn stored(&self, count: i64) {
        let seen = self
            .stack
            .db
            .wait_for_events(self.project, count, Duration::from_secs(60))
            .await;
        assert_eq!(seen, count, "events stored; worker logs:\n{}", self.worker.logs());
    }

    /// GET with a credential (an API key or an access token).
    pub async fn get(&self, path: &str, credential: &str) -> Answer {
        self.stack.call(Method::GET, path, Some(credential), None).await
    }
}

/// Ids of a page's events, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect()
}
