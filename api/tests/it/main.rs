//! Integration tests of `pulse-api` against real PostgreSQL and real Apache Kafka brokers, with the api
//! (and, where rows must land, the worker) running as real processes (see `pulse-testkit`).
//! One test binary with a module per concern, so the workspace links it once.

mod admin;
mod bad_input;
mod broker_faults;
mod ingest;
mod kafka_down;
mod shutdown;

use std::time::Duration;

use pulse_testkit::{PulseEnv, PulseProcess, TestDb, TestKafka, TestProject};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// A database, topics, a project with a key and a running api.
pub struct Stack {
    pub db: TestDb,
    pub kafka: TestKafka,
    pub project: TestProject,
    pub env: PulseEnv,
    pub api: PulseProcess,
    pub http: reqwest::Client,
}

impl Stack {
    /// On the shared broker, with extra environment for the api.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let kafka = TestKafka::shared().await;
        Self::start_on(db, kafka, extra).await
    }

    pub async fn start_on(db: TestDb, kafka: TestKafka, extra: &[(&str, &str)]) -> Self {
        let project = db.create_project().await;
        let mut env = PulseEnv::new(&db, &kafka);
        for (key, value) in extra {
            env = env.set(key, value);
        }
        let api = PulseProcess::api(&env).await;
        Self {
            db,
            kafka,
            project,
            env,
            api,
            http: http_client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base_url())
    }

    /// POSTs a JSON value with the project's key.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post_raw(path, serde_json::to_vec(body).expect("json"), &[]).await
    }

    /// POSTs raw bytes as `application/json` with the project's key, plus `headers` (which win).
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Response {
        let mut map = reqwest::header::HeaderMap::new();
        map.insert(
            "authorization",
            format!("Bearer {}", self.project.api_key).parse().expect("header"),
        );
        map.insert(CONTENT_TYPE, "application/json".parse().expect("header"));
        for (name, value) in headers {
            let name: reqwest::header::HeaderName = name.parse().expect("header name");
            map.insert(name, value.parse().expect("header value"));
        }
        self.http
            .post(self.url(path))
            .headers(map)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// Asserts the answer is the error envelope with `status` and `code`; returns the body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let got = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "expected {status} {code}, got {got}: {text}");
    assert!(
        headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json")),
        "{code}: not JSON: {headers:?}"
    );
    assert!(headers.contains_key("x-request-id"), "{code}: no request id");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{code}: not JSON: {text}"));
    assert_eq!(body["error"]["code"], code, "{text}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    body
}

/// Asserts a 202 and returns the body.
pub async fn expect_accepted(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    serde_json::from_str(&text).expect("json")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}
