//! Integration tests of the management API against real PostgreSQL and a real broker, with
//! `pulse-api` (and, where events must land, `pulse-worker`) running as real processes:
//! the whole journey, refresh-token reuse, roles, tenant isolation, revoked / expired / rotated
//! keys and scopes, the ingest rate limit, the login rate limit, extractor errors, project
//! deletion with its background purge, account deletion, and the OpenAPI document covering
//! every route. One test binary, so the workspace links it once.

use std::time::Duration;

use pulse_testkit::{eventually, PulseEnv, PulseProcess, TestDb, TestKafka};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// A database, topics and a running api.
struct Stack {
    db: TestDb,
    #[allow(dead_code)]
    kafka: TestKafka,
    env: PulseEnv,
    api: PulseProcess,
    http: reqwest::Client,
}

/// An answer: status, headers and the JSON body (`Null` when empty).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{what}: {}", self.body);
        self.body
    }
}

/// A registered user with a session.
struct User {
    id: Uuid,
    access: String,
    refresh: String,
    organization: Uuid,
}

impl Stack {
    async fn start(extra: &[(&str, &str)]) -> Self {
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

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
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

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn register(&self, email: &str) -> User {
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

    async fn project(&self, user: &User, extra: Value) -> Uuid {
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

    async fn key(&self, user: &User, project: Uuid, body: Value) -> (Uuid, String) {
        let created = self
            .post(&format!("/v1/projects/{project}/api-keys"), Some(&user.access), body)
            .await
            .expect(201, "create key");
        (uuid(&created["id"]), created["key"].as_str().expect("key").to_owned())
    }

    async fn ingest(&self, key: &str) -> Answer {
        self.post("/v1/events", Some(key), json!({"event_type": "signup"}))
            .await
    }
}

fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

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

#[tokio::test]
async fn roles_decide_who_may_do_what() {
    let stack = Stack::start(&[]).await;
    let owner = stack.register("owner@example.com").await;
    let other = stack.register("member@example.com").await;
    let org = owner.organization;
    let project = stack.project(&owner, json!({})).await;

    let member = stack
        .post(
            &format!("/v1/organizations/{org}/members"),
            Some(&owner.access),
            json!({"email": "member@example.com", "role": "member"}),
        )
        .await
        .expect(201, "add member");
    assert_eq!(member["role"], "member");
    let again = stack
        .post(
            &format!("/v1/organizations/{org}/members"),
            Some(&owner.access),
            json!({"email": "member@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "ALREADY_MEMBER"));

    // A member reads but does not change.
    stack
        .get(&format!("/v1/projects/{project}"), &other.access)
        .await
        .expect(200, "member reads");
    stack
        .get(&format!("/v1/projects/{project}/api-keys"), &other.access)
        .await
        .expect(200, "member lists keys");
    let forbidden = [
        stack
            .post(
                &format!("/v1/projects/{project}/api-keys"),
                Some(&other.access),
                json!({}),
            )
            .await,
        stack
            .call(
                Method::PATCH,
                &format!("/v1/organizations/{org}"),
                Some(&other.access),
                Some(json!({"name": "x"})),
            )
            .await,
        stack
            .call(
                Method::DELETE,
                &format!("/v1/projects/{project}"),
                Some(&other.access),
                None,
            )
            .await,
        stack
            .post(
                "/v1/projects",
                Some(&other.access),
                json!({"organization_id": org, "name": "nope"}),
            )
            .await,
        stack
            .call(
                Method::DELETE,
                &format!("/v1/organizations/{org}/members/{}", owner.id),
                Some(&other.access),
                None,
            )
            .await,
    ];
    for answer in forbidden {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "FORBIDDEN"),
            "{}",
            answer.body
        );
    }

    // An admin manages keys but cannot touch the owner role.
    stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&owner.access),
            Some(json!({"role": "admin"})),
        )
        .await
        .expect(200, "promote to admin");
    stack.key(&other, project, json!({})).await;
    let grant_owner = stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&other.access),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(grant_owner.status, StatusCode::FORBIDDEN);

    // The last owner can neither leave nor be demoted.
    let leave = stack
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!((leave.status.as_u16(), leave.code()), (409, "LAST_OWNER"));
    let demote = stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!((demote.status.as_u16(), demote.code()), (409, "LAST_OWNER"));
    let delete_account = stack
        .call(Method::DELETE, "/v1/users/me", Some(&owner.access), None)
        .await;
    assert_eq!(
        (delete_account.status.as_u16(), delete_account.code()),
        (409, "LAST_OWNER")
    );

    // With a second owner, the first may leave.
    stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&owner.access),
            Some(json!({"role": "owner"})),
        )
        .await
        .expect(200, "second owner");
    stack
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            None,
        )
        .await
        .expect(204, "leave");
    let gone = stack.get(&format!("/v1/projects/{project}"), &owner.access).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "no longer a member");
    let members = stack
        .get(&format!("/v1/organizations/{org}/members"), &other.access)
        .await
        .expect(200, "members");
    assert_eq!(members.as_array().expect("members").len(), 1);
}

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

#[tokio::test]
async fn bad_input_is_an_envelope_never_a_500() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("input@example.com").await;
    let url = |path: &str| format!("{}{path}", stack.api.base_url());
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "INVALID_JSON",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .json(&json!({"email": 5, "password": []})),
            400,
            "INVALID_JSON",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .json(&json!({"email": "a@b.c", "password": "x", "extra": 1})),
            400,
            "INVALID_JSON",
        ),
        (
            stack.http.post(url("/v1/auth/login")).body("email=a"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            stack.http.get(url("/v1/projects/not-a-uuid")).bearer_auth(&user.access),
            400,
            "BAD_REQUEST",
        ),
        (
            stack
                .http
                .get(url("/v1/projects?organization_id=nope"))
                .bearer_auth(&user.access),
            400,
            "BAD_REQUEST",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "not-an-email", "password": PASSWORD})),
            400,
            "INVALID_FIELD",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "short@example.com", "password": "short"})),
            400,
            "INVALID_FIELD",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "input@example.com", "password": PASSWORD})),
            409,
            "EMAIL_TAKEN",
        ),
        (
            stack.http.put(url("/v1/projects")).bearer_auth(&user.access),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (stack.http.get(url("/v1/users/me")), 401, "UNAUTHORIZED"),
        (
            stack.http.get(url("/v1/users/me")).bearer_auth("garbage.token.here"),
            401,
            "UNAUTHORIZED",
        ),
        (
            stack
                .http
                .get(url("/v1/users/me"))
                .bearer_auth(format!("pk_{}", "a".repeat(43))),
            401,
            "UNAUTHORIZED",
        ),
        (
            stack
                .http
                .post(url("/v1/projects"))
                .bearer_auth(&user.access)
                .json(&json!({"organization_id": user.organization, "name": "x", "retention_days": 0})),
            400,
            "INVALID_FIELD",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.expect("sent");
        let got = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{text}"
        );
        assert!(body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn deleted_project_is_purged_in_the_background() {
    let stack = Stack::start(&[("PULSE_PURGE_BATCH_SIZE", "10")]).await;
    // The api only marks the project deleted; the scheduler's purge job removes it.
    let _scheduler = PulseProcess::scheduler(&stack.env).await;
    let user = stack.register("purge@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let keep = stack.project(&user, json!({})).await;
    let client = stack.db.client().await;
    for (target, count) in [(project, 35), (keep, 3)] {
        client
            .execute(
                "WITH rows AS (
                     SELECT gen_random_uuid() AS id, now() - (i || ' minutes')::interval AS ts
                     FROM generate_series(1, $2::int) i),
                 ids AS (INSERT INTO event_ids (id, project_id, \"timestamp\") SELECT id, $1, ts FROM rows)
                 INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type)
                 SELECT id, $1, ts, now(), 'seeded' FROM rows",
                &[&target, &count],
            )
            .await
            .expect("seed events");
    }
    assert_eq!(stack.db.count_events(project).await, 35);
    stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}"),
            Some(&user.access),
            None,
        )
        .await
        .expect(204, "delete");
    let purged = eventually(Duration::from_secs(30), || async {
        let events = stack.db.count_events(project).await;
        let rows: i64 = client
            .query_one("SELECT count(*) FROM projects WHERE id = $1", &[&project])
            .await
            .expect("count")
            .get(0);
        (events == 0 && rows == 0).then_some(())
    })
    .await;
    assert!(purged.is_some(), "project and its events purged");
    let ids: i64 = client
        .query_one("SELECT count(*) FROM event_ids WHERE project_id = $1", &[&project])
        .await
        .expect("count")
        .get(0);
    assert_eq!(ids, 0);
    assert_eq!(stack.db.count_events(keep).await, 3, "other projects untouched");
    // The name is free again at once.
    let name_reuse = stack.project(&user, json!({})).await;
    assert_ne!(name_reuse, project);
}

#[tokio::test]
async fn deleting_an_account_removes_its_solo_organizations() {
    let stack = Stack::start(&[]).await;
    let _scheduler = PulseProcess::scheduler(&stack.env).await;
    let user = stack.register("leaving@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let (_, key) = stack.key(&user, project, json!({})).await;
    assert_eq!(stack.ingest(&key).await.status, StatusCode::ACCEPTED);
    stack
        .call(
            Method::PATCH,
            "/v1/users/me",
            Some(&user.access),
            Some(json!({"name": "Leaving Soon"})),
        )
        .await
        .expect(200, "rename");
    stack
        .call(Method::DELETE, "/v1/users/me", Some(&user.access), None)
        .await
        .expect(204, "delete account");
    assert_eq!(
        stack.ingest(&key).await.status,
        StatusCode::UNAUTHORIZED,
        "keys stop with the account"
    );
    let me = stack.get("/v1/users/me", &user.access).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let refresh = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let client = stack.db.client().await;
    let gone = eventually(Duration::from_secs(30), || async {
        let orgs: i64 = client
            .query_one(
                "SELECT count(*) FROM organizations WHERE id = $1",
                &[&user.organization],
            )
            .await
            .expect("count")
            .get(0);
        (orgs == 0).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the solo organization is purged");
    stack.register("leaving@example.com").await;
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_every_documented_route_answers() {
    let stack = Stack::start(&[]).await;
    let spec = stack
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200, "openapi");
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    let paths = spec["paths"].as_object().expect("paths");

    let mut expected: Vec<(String, String)> = pulse_api::management::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    for (method, path) in [
        ("post", pulse_api::app::EVENTS),
        ("post", pulse_api::app::EVENTS_BATCH),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ] {
        expected.push((method.to_owned(), path.to_owned()));
    }
    for (method, path) in &expected {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the spec"))[method];
        assert!(operation.is_object(), "{method} {path} missing from the spec");
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/json"]["example"]["error"]["code"].is_string(),
                    "{method} {path} {status} lacks the envelope example"
                );
            }
        }
    }

    // Every documented operation is routed (no JSON 404 "no route", no 405).
    let mut documented = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if !item[method].is_object() {
                continue;
            }
            documented += 1;
            let concrete = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        Uuid::now_v7().to_string()
                    } else {
                        segment.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = stack
                .http
                .request(method.clone(), format!("{}{concrete}", stack.api.base_url()))
                .send()
                .await
                .expect("sent");
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {text}");
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("no route")),
                "{method} {path} is documented but not routed: {text}"
            );
            assert!(
                status.as_u16() < 500 || path == "/readyz",
                "{method} {path}: {status} {text}"
            );
        }
    }
    assert_eq!(
        documented,
        expected.len(),
        "the spec documents exactly the registered routes"
    );

    let docs = stack
        .http
        .get(format!("{}/docs", stack.api.base_url()))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("openapi.json"));
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
