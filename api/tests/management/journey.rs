//! The whole journey (register → project → key → ingest → stored → refresh → logout) and sessions: refresh-token reuse, change-password.

use pulse_testkit::management::{uuid, ManagementStack as Stack, PASSWORD};
use pulse_testkit::PulseProcess;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn full_journey_register_to_stored_event_to_logout() {
    let stack = Stack::start(&[]).await;
    let mut worker = PulseProcess::worker(&stack.env).await;

    let registered = stack.register("Ada@Example.com").await;
    let me = stack.get("/v1/users/me", &registered.access).await.expect(200, "me");
    assert_eq!(me["email"], "ada@example.com");
    assert!(me.get("password_hash").is_none());

    let login = stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await
        .expect(200, "login");
    let access = login["access_token"].as_str().expect("access").to_owned();
    let refresh = login["refresh_token"].as_str().expect("refresh").to_owned();
    assert_eq!(login["token_type"], "Bearer");

    let org = stack
        .post("/v1/organizations", Some(&access), json!({"name": "Engines"}))
        .await
        .expect(201, "create org");
    assert_eq!(org["role"], "owner");
    let orgs = stack.get("/v1/organizations", &access).await.expect(200, "list orgs");
    assert_eq!(orgs.as_array().expect("list").len(), 2, "personal + created: {orgs}");

    let project = stack
        .post(
            "/v1/projects",
            Some(&access),
            json!({"organization_id": org["id"], "name": "checkout", "retention_days": 14}),
        )
        .await
        .expect(201, "create project");
    assert_eq!(project["retention_days"], 14);
    assert!(project["ingest_rate_limit_per_sec"].is_null());
    let project_id = uuid(&project["id"]);

    let created = stack
        .post(
            &format!("/v1/projects/{project_id}/api-keys"),
            Some(&access),
            json!({"name": "web", "scopes": ["ingest"]}),
        )
        .await
        .expect(201, "create key");
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("pk_") && key.starts_with(created["prefix"].as_str().expect("prefix")));

    let listed = stack
        .get(&format!("/v1/projects/{project_id}/api-keys"), &access)
        .await
        .expect(200, "list keys");
    let listed = &listed.as_array().expect("keys")[0];
    assert_eq!(listed["name"], "web");
    assert!(listed.get("key").is_none(), "the key is shown once: {listed}");
    for field in ["prefix", "scopes", "created_at", "last_used_at", "expires_at"] {
        assert!(listed.get(field).is_some(), "{field} listed");
    }

    let accepted = stack.ingest(&key).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert!(accepted.headers.contains_key("ratelimit-limit"));
    assert_eq!(
        stack.db.wait_for_events(project_id, 1, Duration::from_secs(30)).await,
        1
    );

    let refreshed = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect(200, "refresh");
    let refresh2 = refreshed["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(refresh2, refresh);
    let access2 = refreshed["access_token"].as_str().expect("access").to_owned();
    stack
        .get("/v1/users/me", &access2)
        .await
        .expect(200, "new access token works");

    stack
        .post("/v1/auth/logout", None, json!({"refresh_token": refresh2}))
        .await
        .expect(204, "logout");
    let after = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh2}))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "INVALID_REFRESH_TOKEN");
    // The registration session is another family: still alive.
    stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": registered.refresh}))
        .await
        .expect(200, "other session survives logout");
    worker.terminate(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn reused_refresh_token_revokes_its_whole_family() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("reuse@example.com").await;
    let other = stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "reuse@example.com", "password": PASSWORD}),
        )
        .await
        .expect(200, "second session");

    let first = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .await
        .expect(200, "first refresh");
    let next = first["refresh_token"].as_str().expect("refresh").to_owned();

    let reused = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reused.code(), "REFRESH_TOKEN_REUSED");

    let successor = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": next}))
        .await;
    assert_eq!(successor.status, StatusCode::UNAUTHORIZED, "the family is revoked");
    assert_eq!(successor.code(), "INVALID_REFRESH_TOKEN");

    stack
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": other["refresh_token"]}),
        )
        .await
        .expect(200, "another session is untouched");

    for garbage in [
        json!({"refresh_token": "rt_nope"}),
        json!({"refresh_token": format!("rt_{}", "a".repeat(43))}),
    ] {
        let answer = stack.post("/v1/auth/refresh", None, garbage).await;
        assert_eq!(answer.code(), "INVALID_REFRESH_TOKEN");
    }
}

#[tokio::test]
async fn change_password_revokes_other_sessions_only() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("pw@example.com").await;
    let other = stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "pw@example.com", "password": PASSWORD}),
        )
        .await
        .expect(200, "second session");
    let wrong = stack
        .post(
            "/v1/auth/change-password",
            Some(&user.access),
            json!({"current_password": "not the password", "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (400, "INVALID_FIELD"));
    stack
        .post(
            "/v1/auth/change-password",
            Some(&user.access),
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await
        .expect(204, "change password");
    let revoked = stack
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": other["refresh_token"]}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED, "other session revoked");
    stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .await
        .expect(200, "own session kept");
    let old = stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "pw@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.code(), "INVALID_CREDENTIALS");
    stack
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "pw@example.com", "password": "a brand new password"}),
        )
        .await
        .expect(200, "new password");
}
