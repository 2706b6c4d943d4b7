//! API keys: revoked, expired, rotated and wrong-scope keys; revocation reaching another replica.

use pulse_testkit::management::ManagementStack as Stack;
use pulse_testkit::PulseProcess;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn revoked_expired_rotated_and_wrong_scope_keys() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("keys@example.com").await;
    let project = stack.project(&user, json!({})).await;

    let (key_id, key) = stack.key(&user, project, json!({"name": "revoke-me"})).await;
    assert_eq!(stack.ingest(&key).await.status, StatusCode::ACCEPTED);
    stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}/api-keys/{key_id}"),
            Some(&user.access),
            None,
        )
        .await
        .expect(204, "revoke");
    let refused = stack.ingest(&key).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (401, "UNAUTHORIZED"),
        "revoked at once on this replica"
    );

    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (_, expiring) = stack.key(&user, project, json!({"expires_at": expires_at})).await;
    assert_eq!(stack.ingest(&expiring).await.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        stack.ingest(&expiring).await.status,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    let past = stack
        .post(
            &format!("/v1/projects/{project}/api-keys"),
            Some(&user.access),
            json!({"expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.code(), "INVALID_FIELD");

    let (_, reader) = stack.key(&user, project, json!({"scopes": ["read"]})).await;
    let forbidden = stack.ingest(&reader).await;
    assert_eq!(
        (forbidden.status.as_u16(), forbidden.code()),
        (403, "FORBIDDEN"),
        "a read key never ingests"
    );

    let (old_id, old) = stack.key(&user, project, json!({"name": "rotating"})).await;
    let rotated = stack
        .post(
            &format!("/v1/projects/{project}/api-keys/{old_id}/rotate"),
            Some(&user.access),
            json!({"grace_period_secs": 2}),
        )
        .await
        .expect(201, "rotate");
    let new = rotated["key"].as_str().expect("key").to_owned();
    assert_eq!(rotated["rotated_from"], json!(old_id));
    assert_eq!(rotated["name"], "rotating");
    assert_eq!(stack.ingest(&new).await.status, StatusCode::ACCEPTED, "new key");
    assert_eq!(
        stack.ingest(&old).await.status,
        StatusCode::ACCEPTED,
        "old key in grace"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        stack.ingest(&old).await.status,
        StatusCode::UNAUTHORIZED,
        "old key after grace"
    );
    assert_eq!(stack.ingest(&new).await.status, StatusCode::ACCEPTED);
    let again = stack
        .call(
            Method::POST,
            &format!("/v1/projects/{project}/api-keys/{old_id}/rotate"),
            Some(&user.access),
            None,
        )
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "KEY_INACTIVE"));

    // Deleting the project stops its keys at once.
    stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}"),
            Some(&user.access),
            None,
        )
        .await
        .expect(204, "delete project");
    assert_eq!(
        stack.ingest(&new).await.status,
        StatusCode::UNAUTHORIZED,
        "deleted project"
    );
    let gone = stack.get(&format!("/v1/projects/{project}"), &user.access).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revocation_reaches_another_replica_within_the_cache_ttl() {
    let stack = Stack::start(&[]).await;
    let replica = PulseProcess::api(&stack.env).await;
    let user = stack.register("replicas@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let (key_id, key) = stack.key(&user, project, json!({})).await;
    let ingest_on_replica = || async {
        stack
            .http
            .post(format!("{}/v1/events", replica.base_url()))
            .bearer_auth(&key)
            .json(&json!({"event_type": "signup"}))
            .send()
            .await
            .expect("sent")
            .status()
    };
    // The replica caches the key as valid.
    assert_eq!(ingest_on_replica().await, StatusCode::ACCEPTED);
    stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}/api-keys/{key_id}"),
            Some(&user.access),
            None,
        )
        .await
        .expect(204, "revoke on the first replica");
    assert_eq!(
        stack.ingest(&key).await.status,
        StatusCode::UNAUTHORIZED,
        "at once where it was revoked"
    );
    // PULSE_API_KEY_CACHE_TTL_SECS=1 in these tests: the other replica follows within it.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(
        ingest_on_replica().await,
        StatusCode::UNAUTHORIZED,
        "within the TTL elsewhere"
    );
}
