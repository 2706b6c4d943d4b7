//! Tenant isolation: another tenant gets 404 on every route.

use pulse_testkit::management::{uuid, ManagementStack as Stack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn another_tenant_gets_404_on_every_route() {
    let stack = Stack::start(&[]).await;
    let alice = stack.register("alice@example.com").await;
    let mallory = stack.register("mallory@example.com").await;
    let org = alice.organization;
    let project = stack.project(&alice, json!({})).await;
    let (key_id, _) = stack.key(&alice, project, json!({})).await;
    let user = alice.id;

    let probes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/organizations/{org}"), None),
        (
            Method::PATCH,
            format!("/v1/organizations/{org}"),
            Some(json!({"name": "pwned"})),
        ),
        (Method::GET, format!("/v1/organizations/{org}/members"), None),
        (
            Method::POST,
            format!("/v1/organizations/{org}/members"),
            Some(json!({"email": "mallory@example.com", "role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("/v1/organizations/{org}/members/{user}"),
            Some(json!({"role": "member"})),
        ),
        (Method::DELETE, format!("/v1/organizations/{org}/members/{user}"), None),
        (Method::GET, format!("/v1/projects?organization_id={org}"), None),
        (
            Method::POST,
            "/v1/projects".into(),
            Some(json!({"organization_id": org, "name": "x"})),
        ),
        (Method::GET, format!("/v1/projects/{project}"), None),
        (
            Method::PATCH,
            format!("/v1/projects/{project}"),
            Some(json!({"retention_days": 1})),
        ),
        (Method::DELETE, format!("/v1/projects/{project}"), None),
        (Method::GET, format!("/v1/projects/{project}/api-keys"), None),
        (
            Method::POST,
            format!("/v1/projects/{project}/api-keys"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/v1/projects/{project}/api-keys/{key_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/projects/{project}/api-keys/{key_id}/rotate"),
            None,
        ),
    ];
    for (method, path, body) in probes {
        let answer = stack.call(method.clone(), &path, Some(&mallory.access), body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}: {}", answer.body);
        assert_eq!(answer.code(), "NOT_FOUND");
    }
    // A key of Mallory's own project addressed through Alice's project is not found either.
    let own = stack.project(&mallory, json!({})).await;
    let (own_key, _) = stack.key(&mallory, own, json!({})).await;
    let crossed = stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}/api-keys/{own_key}"),
            Some(&alice.access),
            None,
        )
        .await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND);

    let listed = stack.get("/v1/projects", &mallory.access).await.expect(200, "list");
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .all(|p| uuid(&p["id"]) != project));
    // Nothing changed for Alice.
    let still = stack
        .get(&format!("/v1/projects/{project}"), &alice.access)
        .await
        .expect(200, "alice");
    assert_eq!(still["retention_days"], 30);
    let members = stack
        .get(&format!("/v1/organizations/{org}/members"), &alice.access)
        .await
        .expect(200, "members");
    assert_eq!(members.as_array().expect("members").len(), 1);
}
