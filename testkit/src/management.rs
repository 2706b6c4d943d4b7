//! The management API as a test drives it: a database, topics and a running `pulse-api`
//! ([`ManagementStack`]), with helpers that register users, create projects and keys, and call
//! routes, each answer parsed as [`Answer`]. Used by the api's management tests.

use std::time::Duration;

use crate::{PulseEnv, PulseProcess, TestDb, TestKafka};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

/// A database, topics and a running api, with helpers to call the management API.
pub struct ManagementStack {
    pub db: TestDb,
    pub kafka: TestKafka,
    pub env: PulseEnv,
    pub api: PulseProcess,
    pub http: reqwest::Client,
}

/// An answer: status, headers and the JSON body (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{what}: {}", self.body);
        self.body
    }
}

/// A registered user with a session.
pub struct User {
    pub id: Uuid,
    pub access: String,
    pub refresh: String,
    pub organization: Uuid,
}

impl ManagementStack {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let kafka = TestKafka::shared().await;
        let mut env = PulseEnv::new(&db, &kafka)
            .set("PULSE_API_KEY_CACHE_TTL_SECS", "1")
            .set("PULSE_PURGE_INTERVAL_SECS", "1");
        for (key, value) in extra {
            env = env.set(key, value);
        }
        let api = PulseProcess::api(&env).await;
        Self {
            db,
            kafka,
            env,
            api,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.api.base_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Answer { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, email: &str) -> User {
        let body = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Test"}),
            )
            .await
            .expect(201, "register");
        User {
            id: uuid(&body["user"]["id"]),
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
            organization: uuid(&body["organization"]["id"]),
        }
    }

    pub async fn project(&self, user: &User, extra: Value) -> Uuid {
        let mut body = json!({"organization_id": user.organization, "name": format!("p-{}", Uuid::new_v4())});
        if let (Some(target), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let created = self
            .post("/v1/projects", Some(&user.access), body)
            .await
            .expect(201, "create project");
        uuid(&created["id"])
    }

    pub async fn key(&self, user: &User, project: Uuid, body: Value) -> (Uuid, String) {
        let created = self
            .post(&format!("/v1/projects/{project}/api-keys"), Some(&user.access), body)
            .await
            .expect(201, "create key");
        (uuid(&created["id"]), created["key"].as_str().expect("key").to_owned())
    }

    pub async fn ingest(&self, key: &str) -> Answer {
        self.post("/v1/events", Some(key), json!({"event_type": "signup"}))
            .await
    }
}

/// A JSON string holding a UUID.
pub fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}
