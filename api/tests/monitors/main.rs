//! Uptime monitors and the public status page through the management API, against a real
//! PostgreSQL, the shared broker and a real `pulse-api` process; targets are real local HTTP
//! servers (`pulse_testkit::Receiver`). What the check engine writes (checks, daily counters,
//! incidents, breakers) is inserted with SQL where a test needs exact figures, so the
//! expected numbers are known. One module per concern.

mod check;
mod crud;
mod history;
mod status_page;

use pulse_testkit::management::{uuid, Answer, ManagementStack, User};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Loopback targets allowed: the receivers of these tests listen on 127.0.0.1.
pub const LOOPBACK: &[(&str, &str)] = &[("PULSE_MONITOR_ALLOW_NETS", "127.0.0.0/8")];

/// A stack, its owner and a project.
pub struct MonitorStack {
    pub stack: ManagementStack,
    pub owner: User,
    pub project: Uuid,
}

impl MonitorStack {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let stack = ManagementStack::start(extra).await;
        let owner = stack
            .register(&format!("owner-{}@example.com", Uuid::new_v4().simple()))
            .await;
        let project = stack.project(&owner, json!({})).await;
        Self { stack, owner, project }
    }

    /// `/v1/projects/{project}/monitors` followed by `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/projects/{}/monitors{rest}", self.project)
    }

    /// A call with the owner's token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.stack.call(method, path, Some(&self.owner.access), body).await
    }

    /// Creates a monitor (201 expected).
    pub async fn create(&self, body: Value) -> Value {
        self.call(Method::POST, &self.path(""), Some(body))
            .await
            .expect(201, "create monitor")
    }

    /// Creates a monitor of `url` named `name`; returns its id.
    pub async fn monitor(&self, name: &str, url: &str) -> Uuid {
        uuid(&self.create(json!({"name": name, "url": url})).await["id"])
    }

    /// Runs one SQL statement on the test database.
    pub async fn sql(&self, statement: &str) {
        self.stack
            .db
            .client()
            .await
            .batch_execute(statement)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

/// Asserts a 400 INVALID_FIELD naming `field`.
pub fn refused(answer: &Answer, field: &str, what: &str) {
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (400, "INVALID_FIELD"),
        "{what}: {}",
        answer.body
    );
    assert_eq!(
        answer.body["error"]["details"]["field"], field,
        "{what}: {}",
        answer.body
    );
}
