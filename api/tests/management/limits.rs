//! Rate limits: ingest per key, login per account and IP.

use pulse_testkit::management::ManagementStack as Stack;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn ingest_rate_limit_answers_429_then_recovers() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("rate@example.com").await;
    let project = stack.project(&user, json!({"ingest_rate_limit_per_sec": 2})).await;
    let (_, key) = stack.key(&user, project, json!({})).await;

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let answer = stack.ingest(&key).await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.headers["ratelimit-limit"], "2");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert!(limited.headers.contains_key("ratelimit-reset"));

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let recovered = stack.ingest(&key).await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "{}", recovered.body);

    // Raising the limit applies within the key cache TTL (1 s here).
    stack
        .call(
            Method::PATCH,
            &format!("/v1/projects/{project}"),
            Some(&user.access),
            Some(json!({"ingest_rate_limit_per_sec": 1000})),
        )
        .await
        .expect(200, "raise limit");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for _ in 0..5 {
        assert_eq!(stack.ingest(&key).await.status, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_ip() {
    let stack = Stack::start(&[
        ("PULSE_LOGIN_RATE_PER_MIN_ACCOUNT", "3"),
        ("PULSE_LOGIN_RATE_PER_MIN_IP", "8"),
    ])
    .await;
    stack.register("limited@example.com").await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let answer = stack
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "limited@example.com", "password": "wrong password!"}),
            )
            .await;
        codes.push(answer.code().to_owned());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = answer.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("secs");
            assert!((1..=60).contains(&retry), "{retry}");
        }
    }
    assert_eq!(
        codes,
        [
            "INVALID_CREDENTIALS",
            "INVALID_CREDENTIALS",
            "INVALID_CREDENTIALS",
            "RATE_LIMITED"
        ]
    );
    // Another account from the same IP still has its own budget, until the IP's runs out.
    let other = stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "someone@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(other.code(), "INVALID_CREDENTIALS");
    let mut last = String::new();
    for _ in 0..4 {
        last = stack
            .post(
                "/v1/auth/login",
                None,
                json!({"email": format!("{}@example.com", Uuid::new_v4()), "password": "x"}),
            )
            .await
            .code()
            .to_owned();
    }
    assert_eq!(last, "RATE_LIMITED", "the IP budget (8/min) is spent");
}
