//! Check now: `POST …/monitors/{id}/check` runs a real HTTP check against a local target,
//! records it as a manual check through the scheduler's path and returns it with the state it
//! led to: ok against a healthy target, a `status` failure (and down, with an incident) against
//! a failing one, up again when it recovers.

use pulse_testkit::{Behaviour, Receiver};
use reqwest::Method;
use serde_json::{json, Value};

use super::{MonitorStack, LOOPBACK};

#[tokio::test]
async fn check_now_records_and_returns_the_result() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let created = stack
        .create(json!({
            "name": "api",
            "url": target.url("health"),
            "failures_before_down": 1,
            "expected_status": ["2xx"]
        }))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = stack.path(&format!("/{id}/check"));

    let healthy = check(&stack, &path).await;
    assert_eq!(
        (
            &healthy["check"]["ok"],
            &healthy["check"]["status_code"],
            &healthy["check"]["error_class"]
        ),
        (&json!(true), &json!(200), &Value::Null),
        "{healthy}"
    );
    assert_eq!(
        (&healthy["check"]["manual"], &healthy["state"]),
        (&json!(true), &json!("up"))
    );
    assert!(healthy["check"]["latency_ms"]
        .as_i64()
        .is_some_and(|latency| latency >= 0));
    let hits: Vec<String> = target.received().iter().map(|request| request.path.clone()).collect();
    assert_eq!(hits, vec!["/health"], "one real request to the target");

    target.set_behaviour(Behaviour::Status(503, None));
    let failing = check(&stack, &path).await;
    assert_eq!(
        (
            &failing["check"]["ok"],
            &failing["check"]["status_code"],
            &failing["check"]["error_class"]
        ),
        (&json!(false), &json!(503), &json!("status")),
        "{failing}"
    );
    assert_eq!(
        (&failing["state"], &failing["state_changed"]),
        (&json!("down"), &json!(true))
    );
    let incidents = stack
        .call(Method::GET, &stack.path(&format!("/{id}/incidents")), None)
        .await
        .expect(200, "incidents");
    assert_eq!(incidents["data"].as_array().map(Vec::len), Some(1), "{incidents}");
    assert_eq!(incidents["data"][0]["resolved_at"], Value::Null);

    target.set_behaviour(Behaviour::Accept);
    let recovered = check(&stack, &path).await;
    assert_eq!(
        (&recovered["state"], &recovered["state_changed"]),
        (&json!("up"), &json!(true))
    );

    // The history holds the three manual checks, newest first, and the monitor shows the last.
    let checks = stack
        .call(Method::GET, &stack.path(&format!("/{id}/checks")), None)
        .await
        .expect(200, "checks");
    let oks: Vec<bool> = checks["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|check| check["ok"].as_bool().expect("ok"))
        .collect();
    assert_eq!(oks, vec![true, false, true]);
    let monitor = stack
        .call(Method::GET, &stack.path(&format!("/{id}")), None)
        .await
        .expect(200, "monitor");
    assert_eq!(monitor["last_check"]["id"], recovered["check"]["id"]);
    assert_eq!(monitor["state"], "up");
    let incidents = stack
        .call(Method::GET, &stack.path(&format!("/{id}/incidents")), None)
        .await
        .expect(200, "incidents");
    assert!(incidents["data"][0]["resolved_at"].is_string(), "{incidents}");

    let unknown = stack
        .call(
            Method::POST,
            &stack.path(&format!("/{}/check", uuid::Uuid::now_v7())),
            None,
        )
        .await;
    assert_eq!(unknown.status.as_u16(), 404);
}

async fn check(stack: &MonitorStack, path: &str) -> Value {
    stack.call(Method::POST, path, None).await.expect(200, "check now")
}

/// A state change caused by a check now reaches the project's live stream as
/// `{"type": "monitor", "data": {…}}`.
#[tokio::test]
async fn a_state_change_from_check_now_is_announced_on_the_live_stream() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Status(500, None));
    let (_, key) = stack
        .stack
        .key(
            &stack.owner,
            stack.project,
            json!({"name": "dashboard", "scopes": ["read"]}),
        )
        .await;
    let created = stack
        .create(json!({"name": "payments", "url": target.url("health"), "failures_before_down": 1}))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let url = format!(
        "{}/v1/stream",
        stack.stack.api.base_url().replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("stream connects");

    let answer = check(&stack, &stack.path(&format!("/{id}/check"))).await;
    assert_eq!(
        (&answer["state"], &answer["state_changed"]),
        (&json!("down"), &json!(true))
    );
    let message = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                if value["type"] == "monitor" {
                    return Some(value);
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("a monitor message on the stream");
    let data = &message["data"];
    assert_eq!(
        (
            &data["monitor_id"],
            &data["name"],
            &data["state"],
            &data["previous"],
            &data["error_class"]
        ),
        (
            &json!(id),
            &json!("payments"),
            &json!("down"),
            &json!("pending"),
            &json!("status")
        ),
        "{message}"
    );
}
