//! Webhook endpoints through the management API: create, list, change and delete; the field
//! rules and the SSRF guard at creation; roles; secrets and their rotation; the delivery log,
//! retry, recover and test on delivery rows written straight into the database (no worker
//! runs here: what these routes change is the rows the worker claims).

use chrono::{DateTime, Duration, Utc};
use pulse_testkit::management::{uuid, ManagementStack as Stack, User};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const LOOPBACK: (&str, &str) = ("PULSE_WEBHOOK_ALLOW_NETS", "127.0.0.0/8");
/// A public address literal: the guard passes it without DNS, and nothing is sent in these tests.
const PUBLIC_URL: &str = "https://1.1.1.1/hooks/pulse";

fn hooks(project: Uuid) -> String {
    format!("/v1/projects/{project}/webhooks")
}

async fn create(stack: &Stack, user: &User, project: Uuid, body: Value) -> Value {
    stack
        .post(&hooks(project), Some(&user.access), body)
        .await
        .expect(201, "create webhook")
}

async fn patch(stack: &Stack, user: &User, path: &str, body: Value) -> pulse_testkit::management::Answer {
    stack.call(Method::PATCH, path, Some(&user.access), Some(body)).await
}

/// Asserts a 400 INVALID_FIELD naming `field`.
fn refused(answer: &pulse_testkit::management::Answer, field: &str, what: &str) {
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

#[tokio::test]
async fn endpoints_are_created_listed_changed_and_deleted() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("hooks@example.com").await;
    let project = stack.project(&user, json!({})).await;

    let first = create(
        &stack,
        &user,
        project,
        json!({
            "name": "  orders ",
            "url": PUBLIC_URL,
            "event_types": ["event.created", "monitor.down", "event.created"],
            "filter": {"event_types": ["checkout.completed"]},
            "headers": {"X-Team": "orders"},
            "description": "to the order service"
        }),
    )
    .await;
    let secret = first["secret"].as_str().expect("secret shown at creation").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(first["name"], "orders");
    assert_eq!(first["url"], PUBLIC_URL);
    assert_eq!(first["event_types"], json!(["event.created", "monitor.down"]));
    assert_eq!(
        first["filter"],
        json!({"event_types": ["checkout.completed"], "sources": null})
    );
    assert_eq!(first["headers"], json!({"X-Team": "orders"}));
    assert_eq!(first["enabled"], true);
    assert_eq!(
        first["max_attempts"], 9,
        "the default schedule's 8 retries plus the first"
    );
    assert_eq!(first["secret_rotation_ends_at"], Value::Null);
    let first_id = uuid(&first["id"]);
    let one = format!("{}/{first_id}", hooks(project));

    let shown = stack.get(&one, &user.access).await.expect(200, "get");
    assert!(shown.get("secret").is_none(), "a view never shows the secret: {shown}");
    assert_eq!(shown["description"], "to the order service");
    let read = stack
        .get(&format!("{one}/secret"), &user.access)
        .await
        .expect(200, "secret");
    assert_eq!(read["secret"], secret.as_str());
    assert_eq!(read["previous_secret"], Value::Null);

    let second = create(
        &stack,
        &user,
        project,
        json!({"name": "alerts", "url": PUBLIC_URL, "event_types": ["alert.fired"], "max_attempts": 3}),
    )
    .await;
    let second_id = uuid(&second["id"]);
    assert_eq!(second["filter"], Value::Null);
    assert_eq!(second["description"], "");

    // Newest first, one per page.
    let page = stack
        .get(&format!("{}?limit=1", hooks(project)), &user.access)
        .await
        .expect(200, "page 1");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(uuid(&page["data"][0]["id"]), second_id);
    assert!(page["data"][0].get("secret").is_none());
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    let page = stack
        .get(&format!("{}?limit=1&cursor={cursor}", hooks(project)), &user.access)
        .await
        .expect(200, "page 2");
    assert_eq!(uuid(&page["data"][0]["id"]), first_id);
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    let all = stack.get(&hooks(project), &user.access).await.expect(200, "all");
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    for bad in ["limit=0", "limit=101", "cursor=nope", "colour=red"] {
        let answer = stack.get(&format!("{}?{bad}", hooks(project)), &user.access).await;
        assert_eq!(answer.status.as_u16(), 400, "{bad}: {}", answer.body);
    }

    // PATCH changes what it names, and clears the filter with null.
    let changed = patch(
        &stack,
        &user,
        &one,
        json!({"name": "orders v2", "filter": null, "headers": {}, "max_attempts": 5, "event_types": ["event.created"]}),
    )
    .await
    .expect(200, "patch");
    assert_eq!(changed["name"], "orders v2");
    assert_eq!(changed["filter"], Value::Null);
    assert_eq!(changed["headers"], json!({}));
    assert_eq!(changed["max_attempts"], 5);
    assert_eq!(changed["url"], PUBLIC_URL, "untouched");
    assert_eq!(changed["description"], "to the order service", "untouched");
    assert_ne!(changed["updated_at"], first["updated_at"]);

    // A disabled endpoint shows why; enabling it clears the reason and the failure clock.
    let client = stack.db.client().await;
    client
        .execute(
            "UPDATE webhooks SET enabled = false, disabled_reason = 'endpoint answered 410 Gone',
                 disabled_at = now(), failing_since = now() - interval '5 days' WHERE id = $1",
            &[&first_id],
        )
        .await
        .expect("disable");
    let disabled = stack.get(&one, &user.access).await.expect(200, "disabled");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["disabled_reason"], "endpoint answered 410 Gone");
    assert!(disabled["disabled_at"].is_string() && disabled["failing_since"].is_string());
    let enabled = patch(&stack, &user, &one, json!({"enabled": true}))
        .await
        .expect(200, "enable");
    assert_eq!(enabled["enabled"], true);
    assert_eq!(
        (
            &enabled["disabled_reason"],
            &enabled["disabled_at"],
            &enabled["failing_since"]
        ),
        (&Value::Null, &Value::Null, &Value::Null),
        "{enabled}"
    );
    let off = patch(&stack, &user, &one, json!({"enabled": false}))
        .await
        .expect(200, "disable by hand");
    assert_eq!(off["enabled"], false);
    assert!(off["disabled_reason"].is_string(), "{off}");

    // Deleting takes the deliveries with it.
    let delivery = insert_delivery(&stack, first_id, project, Row::failed(Duration::hours(1))).await;
    stack
        .call(Method::DELETE, &one, Some(&user.access), None)
        .await
        .expect(204, "delete");
    let answer = stack.get(&one, &user.access).await;
    assert_eq!((answer.status.as_u16(), answer.code()), (404, "NOT_FOUND"));
    let left = client
        .query_one("SELECT count(*) FROM webhook_deliveries WHERE id = $1", &[&delivery])
        .await
        .expect("count");
    assert_eq!(left.get::<_, i64>(0), 0, "deliveries cascade");
    let again = stack.call(Method::DELETE, &one, Some(&user.access), None).await;
    assert_eq!(again.status.as_u16(), 404);
    let bad_id = stack.get(&format!("{}/not-a-uuid", hooks(project)), &user.access).await;
    assert_eq!(bad_id.status.as_u16(), 400, "{}", bad_id.body);
}

#[tokio::test]
async fn fields_are_checked_and_private_destinations_refused() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("rules@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let valid = || json!({"name": "n", "url": PUBLIC_URL, "event_types": ["event.created"]});
    let with = |key: &str, value: Value| {
        let mut body = valid();
        body[key] = value;
        body
    };
    let cases = [
        (with("url", json!("ftp://1.1.1.1/x")), "url", "ftp scheme"),
        (with("url", json!("not a url")), "url", "unparsable url"),
        (
            with("url", json!("http://127.0.0.1:9/x")),
            "url",
            "loopback without the allow-list",
        ),
        (
            with("url", json!("http://localhost:9/")),
            "url",
            "a name resolving to loopback",
        ),
        (
            with("url", json!("http://169.254.169.254/latest/meta-data")),
            "url",
            "metadata",
        ),
        (
            with("url", json!("http://[::ffff:10.0.0.1]/")),
            "url",
            "IPv4-mapped private",
        ),
        (
            with("event_types", json!(["event.deleted"])),
            "event_types",
            "unknown type",
        ),
        (with("event_types", json!([])), "event_types", "no type"),
        (
            with("headers", json!({"Webhook-Signature": "v1,forged"})),
            "headers",
            "reserved prefix",
        ),
        (
            with("headers", json!({"content-type": "text/plain"})),
            "headers",
            "reserved name",
        ),
        (with("headers", json!({"bad header": "x"})), "headers", "invalid name"),
        (
            with("secret", json!("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")),
            "secret",
            "no whsec_ prefix",
        ),
        (with("secret", json!("whsec_c2hvcnQ=")), "secret", "too short"),
        (with("max_attempts", json!(0)), "max_attempts", "0 attempts"),
        (with("max_attempts", json!(51)), "max_attempts", "51 attempts"),
        (with("name", json!("  ")), "name", "blank name"),
        (
            with("description", json!("d".repeat(1001))),
            "description",
            "long description",
        ),
        (
            with("filter", json!({"sources": []})),
            "filter.sources",
            "empty filter list",
        ),
    ];
    for (body, field, what) in cases {
        let answer = stack.post(&hooks(project), Some(&user.access), body).await;
        refused(&answer, field, what);
    }
    let refusal = stack
        .post(
            &hooks(project),
            Some(&user.access),
            with("url", json!("http://127.0.0.1:9/x")),
        )
        .await;
    let message = refusal.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("127.0.0.1") && message.contains("PULSE_WEBHOOK_ALLOW_NETS"),
        "the guard's reason: {message}"
    );
    let unknown = stack
        .post(&hooks(project), Some(&user.access), with("colour", json!("red")))
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (400, "INVALID_JSON"));
    assert!(unknown.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("colour"));

    let created = create(&stack, &user, project, valid()).await;
    let one = format!("{}/{}", hooks(project), created["id"].as_str().expect("id"));
    let unknown = patch(&stack, &user, &one, json!({"colour": "red"})).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (400, "INVALID_JSON"),
        "{}",
        unknown.body
    );
    assert!(unknown.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("colour"));
    refused(
        &patch(&stack, &user, &one, json!({"url": "http://10.0.0.1/"})).await,
        "url",
        "patch url",
    );
    refused(
        &patch(&stack, &user, &one, json!({"max_attempts": 51})).await,
        "max_attempts",
        "patch",
    );
    refused(
        &patch(&stack, &user, &one, json!({"headers": {"Host": "evil"}})).await,
        "headers",
        "patch headers",
    );
    let secret_patch = patch(&stack, &user, &one, json!({"secret": "whsec_x"})).await;
    assert_eq!(secret_patch.status.as_u16(), 400, "a secret changes by rotation only");
}

#[tokio::test]
async fn the_allow_list_opens_loopback_but_never_metadata() {
    let stack = Stack::start(&[LOOPBACK]).await;
    let user = stack.register("allow@example.com").await;
    let project = stack.project(&user, json!({})).await;
    for url in ["http://127.0.0.1:9/x", "http://localhost:9/"] {
        let created = create(
            &stack,
            &user,
            project,
            json!({"name": "local", "url": url, "event_types": ["event.created"]}),
        )
        .await;
        assert!(created["url"].as_str().unwrap_or("").starts_with(url), "{created}");
    }
    let metadata = stack
        .post(
            &hooks(project),
            Some(&user.access),
            json!({"name": "m", "url": "http://169.254.169.254/latest/meta-data", "event_types": ["event.created"]}),
        )
        .await;
    refused(&metadata, "url", "metadata stays refused");
    let private = stack
        .post(
            &hooks(project),
            Some(&user.access),
            json!({"name": "p", "url": "http://192.168.1.1/", "event_types": ["event.created"]}),
        )
        .await;
    refused(&private, "url", "other private networks stay refused");
}

#[tokio::test]
async fn members_read_admins_change_strangers_see_nothing() {
    let stack = Stack::start(&[]).await;
    let owner = stack.register("hook-owner@example.com").await;
    let member = stack.register("hook-member@example.com").await;
    let stranger = stack.register("hook-stranger@example.com").await;
    let project = stack.project(&owner, json!({})).await;
    stack
        .post(
            &format!("/v1/organizations/{}/members", owner.organization),
            Some(&owner.access),
            json!({"email": "hook-member@example.com", "role": "member"}),
        )
        .await
        .expect(201, "add member");
    let created = create(
        &stack,
        &owner,
        project,
        json!({"name": "n", "url": PUBLIC_URL, "event_types": ["event.created"]}),
    )
    .await;
    let one = format!("{}/{}", hooks(project), created["id"].as_str().expect("id"));

    stack
        .get(&hooks(project), &member.access)
        .await
        .expect(200, "member lists");
    stack.get(&one, &member.access).await.expect(200, "member reads");
    stack
        .get(&format!("{one}/deliveries"), &member.access)
        .await
        .expect(200, "member reads the log");
    let forbidden = [
        stack
            .post(
                &hooks(project),
                Some(&member.access),
                json!({"name": "n", "url": PUBLIC_URL, "event_types": ["event.created"]}),
            )
            .await,
        stack.get(&format!("{one}/secret"), &member.access).await,
        stack
            .post(&format!("{one}/secret/rotate"), Some(&member.access), json!({}))
            .await,
        stack
            .post(&format!("{one}/test"), Some(&member.access), json!({}))
            .await,
        patch(&stack, &member, &one, json!({"name": "x"})).await,
        stack.call(Method::DELETE, &one, Some(&member.access), None).await,
    ];
    for answer in forbidden {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "FORBIDDEN"),
            "{}",
            answer.body
        );
    }
    for answer in [
        stack.get(&hooks(project), &stranger.access).await,
        stack.get(&one, &stranger.access).await,
        stack.get(&format!("{one}/secret"), &stranger.access).await,
        stack
            .get(&format!("{}/deliveries", hooks(project)), &stranger.access)
            .await,
    ] {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (404, "NOT_FOUND"),
            "{}",
            answer.body
        );
    }
    // An endpoint of another project is not found through this one.
    let other_project = stack.project(&stranger, json!({})).await;
    let elsewhere = format!("{}/{}", hooks(other_project), created["id"].as_str().expect("id"));
    assert_eq!(stack.get(&elsewhere, &stranger.access).await.status.as_u16(), 404);
}

#[tokio::test]
async fn secrets_are_kept_shown_and_rotated_with_a_grace_period() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("secrets@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let mine = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let created = create(
        &stack,
        &user,
        project,
        json!({"name": "n", "url": PUBLIC_URL, "event_types": ["event.created"], "secret": mine}),
    )
    .await;
    assert_eq!(created["secret"], mine, "a supplied secret is kept");
    let one = format!("{}/{}", hooks(project), created["id"].as_str().expect("id"));
    assert_eq!(
        stack
            .get(&format!("{one}/secret"), &user.access)
            .await
            .expect(200, "secret")["secret"],
        mine
    );
    let taken = stack
        .post(
            &hooks(project),
            Some(&user.access),
            json!({"name": "twin", "url": PUBLIC_URL, "event_types": ["event.created"], "secret": mine}),
        )
        .await;
    assert_eq!((taken.status.as_u16(), taken.code()), (409, "SECRET_IN_USE"));

    // Default grace: 24 hours.
    let before = Utc::now();
    let rotated = stack
        .call(Method::POST, &format!("{one}/secret/rotate"), Some(&user.access), None)
        .await
        .expect(200, "rotate without a body");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert!(new.starts_with("whsec_") && new != mine);
    assert_eq!(rotated["previous_secret"], mine);
    let ends = time(&rotated["previous_secret_expires_at"]);
    let expected = before + Duration::hours(24);
    assert!((ends - expected).num_seconds().abs() <= 5, "{ends} vs {expected}");
    let read = stack
        .get(&format!("{one}/secret"), &user.access)
        .await
        .expect(200, "after rotation");
    assert_eq!((&read["secret"], &read["previous_secret"]), (&json!(new), &json!(mine)));
    let view = stack.get(&one, &user.access).await.expect(200, "view");
    assert_eq!(time(&view["secret_rotation_ends_at"]), ends);

    // A supplied secret with a short grace, then one with none.
    let supplied = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let rotated = stack
        .post(
            &format!("{one}/secret/rotate"),
            Some(&user.access),
            json!({"secret": supplied, "grace_period_secs": 60}),
        )
        .await
        .expect(200, "rotate to a supplied secret");
    assert_eq!(
        (&rotated["secret"], &rotated["previous_secret"]),
        (&json!(supplied), &json!(new))
    );
    let ends = time(&rotated["previous_secret_expires_at"]);
    assert!(
        (ends - (Utc::now() + Duration::seconds(60))).num_seconds().abs() <= 5,
        "{ends}"
    );
    let rotated = stack
        .post(
            &format!("{one}/secret/rotate"),
            Some(&user.access),
            json!({"grace_period_secs": 0}),
        )
        .await
        .expect(200, "rotate without grace");
    assert_eq!(rotated["previous_secret"], Value::Null);
    assert_eq!(rotated["previous_secret_expires_at"], Value::Null);
    let view = stack.get(&one, &user.access).await.expect(200, "view");
    assert_eq!(view["secret_rotation_ends_at"], Value::Null);

    for (body, field) in [
        (json!({"grace_period_secs": 2_592_001}), "grace_period_secs"),
        (json!({"secret": "whsec_!!!"}), "secret"),
        (json!({"secret": rotated["secret"]}), "secret"),
    ] {
        let answer = stack
            .post(&format!("{one}/secret/rotate"), Some(&user.access), body)
            .await;
        refused(&answer, field, "rotate");
    }
}

/// A delivery row as a test writes it.
struct Row {
    message_type: &'static str,
    status: &'static str,
    attempts: i32,
    age: Duration,
    lease: Option<Uuid>,
    /// From now.
    next_attempt_in: Option<Duration>,
    event_ids: Option<Vec<Uuid>>,
}

impl Row {
    fn failed(age: Duration) -> Self {
        Self {
            message_type: "event.created",
            status: "failed",
            attempts: 9,
            age,
            lease: None,
            next_attempt_in: None,
            event_ids: Some(vec![Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()]),
        }
    }

    fn succeeded(age: Duration) -> Self {
        Self {
            status: "succeeded",
            attempts: 1,
            ..Self::failed(age)
        }
    }

    /// Pending and leased: a worker is attempting it until `next_attempt_in` from now.
    fn leased(next_attempt_in: Duration) -> Self {
        Self {
            status: "pending",
            attempts: 1,
            lease: Some(Uuid::now_v7()),
            next_attempt_in: Some(next_attempt_in),
            ..Self::failed(Duration::minutes(1))
        }
    }
}

/// Writes a delivery row as the worker would have (one connection each: the kit's client type
/// is not named here).
async fn insert_delivery(stack: &Stack, webhook: Uuid, project: Uuid, row: Row) -> Uuid {
    let client = stack.db.client().await;
    let id = Uuid::now_v7();
    let created_at: DateTime<Utc> = Utc::now() - row.age;
    let next_attempt_at: Option<DateTime<Utc>> = row.next_attempt_in.map(|wait| Utc::now() + wait);
    let completed_at: Option<DateTime<Utc>> = (row.status != "pending").then_some(created_at + Duration::minutes(1));
    let last_attempt_at: Option<DateTime<Utc>> = (row.attempts > 0).then_some(created_at);
    client
        .execute(
            "INSERT INTO webhook_deliveries (id, webhook_id, project_id, message_id, type, event_ids, status,
                 attempts, next_attempt_at, lease, created_at, last_attempt_at, last_response_status,
                 last_error, completed_at)
             VALUES ($1, $2, $3, $13, $4, $5, $6, $7, $8, $9, $10, $11,
                 CASE WHEN $6 = 'failed' THEN 500 END, CASE WHEN $6 = 'failed' THEN 'HTTP 500' END, $12)",
            &[
                &id,
                &webhook,
                &project,
                &row.message_type,
                &row.event_ids,
                &row.status,
                &row.attempts,
                &next_attempt_at,
                &row.lease,
                &created_at,
                &last_attempt_at,
                &completed_at,
                &format!("msg_{}", id.simple()),
            ],
        )
        .await
        .expect("insert delivery");
    id
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| uuid(&row["id"]))
        .collect()
}

#[tokio::test]
async fn deliveries_are_listed_retried_recovered_and_tested() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("log@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let body = json!({"name": "n", "url": PUBLIC_URL, "event_types": ["event.created"]});
    let webhook = uuid(&create(&stack, &user, project, body.clone()).await["id"]);
    let other = uuid(&create(&stack, &user, project, body).await["id"]);
    let one = format!("{}/{webhook}", hooks(project));
    let client = stack.db.client().await;

    let old = insert_delivery(&stack, webhook, project, Row::failed(Duration::days(3))).await;
    let recent = insert_delivery(&stack, webhook, project, Row::failed(Duration::hours(2))).await;
    let newest = insert_delivery(&stack, webhook, project, Row::failed(Duration::hours(1))).await;
    let done = insert_delivery(&stack, webhook, project, Row::succeeded(Duration::hours(1))).await;
    let busy = insert_delivery(&stack, webhook, project, Row::leased(Duration::seconds(60))).await;
    let stale = insert_delivery(&stack, webhook, project, Row::leased(Duration::seconds(-60))).await;
    let elsewhere = insert_delivery(&stack, other, project, Row::failed(Duration::hours(1))).await;
    client
        .execute(
            "INSERT INTO webhook_attempts (id, delivery_id, webhook_id, attempt, attempted_at, duration_ms,
                 response_status, error_class, error_message, response_body)
             VALUES (gen_random_uuid(), $1, $2, 2, now() - interval '1 minute', 40, 500, 'http_status', 'HTTP 500', 'oops'),
                    (gen_random_uuid(), $1, $2, 1, now() - interval '2 minutes', 5000, NULL, 'timeout', 'no answer', NULL)",
            &[&newest, &webhook],
        )
        .await
        .expect("attempts");

    // The log: newest first, by status, paged; one delivery with its attempts in order.
    let all = stack
        .get(&format!("{one}/deliveries"), &user.access)
        .await
        .expect(200, "log");
    assert_eq!(ids(&all), vec![stale, busy, done, newest, recent, old]);
    let failed = stack
        .get(&format!("{one}/deliveries?status=failed&limit=2"), &user.access)
        .await
        .expect(200, "failed");
    assert_eq!(ids(&failed), vec![newest, recent]);
    let cursor = failed["next_cursor"].as_str().expect("next page");
    let rest = stack
        .get(
            &format!("{one}/deliveries?status=failed&limit=2&cursor={cursor}"),
            &user.access,
        )
        .await
        .expect(200, "failed, page 2");
    assert_eq!((ids(&rest), &rest["next_cursor"]), (vec![old], &Value::Null));
    let view = &failed["data"][0];
    assert_eq!(view["type"], "event.created");
    assert_eq!(view["event_count"], 3);
    assert_eq!(view["next_attempt_at"], Value::Null, "only while pending");
    assert_eq!(view["last_response_status"], 500);
    assert_eq!(view["message_id"], format!("msg_{}", newest.simple()));
    let bad = stack.get(&format!("{one}/deliveries?status=lost"), &user.access).await;
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.body);

    let detail = stack
        .get(&format!("{one}/deliveries/{newest}"), &user.access)
        .await
        .expect(200, "one delivery");
    let log = detail["attempt_log"].as_array().expect("attempt_log");
    assert_eq!(log.len(), 2);
    assert_eq!(
        (&log[0]["attempt"], &log[0]["error_class"]),
        (&json!(1), &json!("timeout"))
    );
    assert_eq!(
        (&log[1]["attempt"], &log[1]["response_body"]),
        (&json!(2), &json!("oops"))
    );
    assert_eq!(log[1]["duration_ms"], 40);
    let missing = stack.get(&format!("{one}/deliveries/{elsewhere}"), &user.access).await;
    assert_eq!(missing.status.as_u16(), 404, "another endpoint's delivery");

    // Across endpoints, or one of them; `deliveries` is never read as an endpoint id.
    let project_log = format!("{}/deliveries", hooks(project));
    let every = stack.get(&project_log, &user.access).await.expect(200, "project log");
    assert_eq!(ids(&every).len(), 7);
    assert_eq!(ids(&every)[0], elsewhere);
    let only = stack
        .get(&format!("{project_log}?webhook_id={other}"), &user.access)
        .await
        .expect(200, "one endpoint");
    assert_eq!(ids(&only), vec![elsewhere]);
    let pending = stack
        .get(&format!("{project_log}?status=pending"), &user.access)
        .await
        .expect(200, "pending");
    assert_eq!(ids(&pending), vec![stale, busy]);
    assert!(pending["data"][0]["next_attempt_at"].is_string());
    let bad = stack.get(&format!("{project_log}?webhook_id=nope"), &user.access).await;
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.body);

    // Retry: due now, same message id, attempts kept; a delivery in flight is left alone.
    let retried = stack
        .post(&format!("{one}/deliveries/{old}/retry"), Some(&user.access), json!({}))
        .await
        .expect(202, "retry failed");
    assert_eq!(
        (&retried["status"], &retried["attempts"]),
        (&json!("pending"), &json!(9))
    );
    assert_eq!(retried["message_id"], format!("msg_{}", old.simple()));
    assert_eq!(retried["completed_at"], Value::Null);
    assert!((time(&retried["next_attempt_at"]) - Utc::now()).num_seconds().abs() <= 5);
    let row = client
        .query_one(
            "SELECT lease IS NULL, status FROM webhook_deliveries WHERE id = $1",
            &[&old],
        )
        .await
        .expect("row");
    assert!(row.get::<_, bool>(0));
    let in_flight = stack
        .post(&format!("{one}/deliveries/{busy}/retry"), Some(&user.access), json!({}))
        .await;
    assert_eq!(
        (in_flight.status.as_u16(), in_flight.code()),
        (409, "DELIVERY_IN_FLIGHT"),
        "{}",
        in_flight.body
    );
    assert!(in_flight.body["error"]["details"]["next_attempt_at"].is_string());
    stack
        .post(
            &format!("{one}/deliveries/{stale}/retry"),
            Some(&user.access),
            json!({}),
        )
        .await
        .expect(202, "an expired lease is not in flight");
    stack
        .post(&format!("{one}/deliveries/{done}/retry"), Some(&user.access), json!({}))
        .await
        .expect(202, "a succeeded delivery may be sent again");
    let nowhere = stack
        .post(
            &format!("{one}/deliveries/{}/retry", Uuid::now_v7()),
            Some(&user.access),
            json!({}),
        )
        .await;
    assert_eq!(nowhere.status.as_u16(), 404);

    // Recover: exactly the failed deliveries of this endpoint made since T.
    client
        .execute(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, completed_at = now() WHERE id = $1",
            &[&old],
        )
        .await
        .expect("fail old again");
    let since = (Utc::now() - Duration::days(1)).to_rfc3339();
    let recovered = stack
        .post(&format!("{one}/recover"), Some(&user.access), json!({"since": since}))
        .await
        .expect(202, "recover");
    assert_eq!(recovered, json!({"recovered": 2}));
    let rows = client
        .query(
            "SELECT id, status, attempts, message_id, next_attempt_at <= now() AND completed_at IS NULL
             FROM webhook_deliveries WHERE id = ANY($1)",
            &[&vec![old, recent, newest, elsewhere]],
        )
        .await
        .expect("rows");
    for row in rows {
        let id: Uuid = row.get(0);
        let status: String = row.get(1);
        let expected = if id == recent || id == newest {
            "pending"
        } else {
            "failed"
        };
        assert_eq!(status, expected, "{id}");
        assert_eq!(row.get::<_, i32>(2), 9, "attempts kept");
        assert_eq!(
            row.get::<_, String>(3),
            format!("msg_{}", id.simple()),
            "same message id"
        );
        if expected == "pending" {
            assert_eq!(row.get::<_, Option<bool>>(4), Some(true), "due now");
        }
    }
    for since in [
        (Utc::now() + Duration::hours(1)).to_rfc3339(),
        (Utc::now() - Duration::days(31)).to_rfc3339(),
    ] {
        let answer = stack
            .post(&format!("{one}/recover"), Some(&user.access), json!({"since": since}))
            .await;
        refused(&answer, "since", "since out of bounds");
    }
    let missing = stack
        .post(&format!("{one}/recover"), Some(&user.access), json!({}))
        .await;
    assert_eq!(missing.status.as_u16(), 400, "since is required");

    // Test: a webhook.test delivery, straight into the deliveries, due now.
    let tested = stack
        .call(Method::POST, &format!("{one}/test"), Some(&user.access), None)
        .await
        .expect(202, "test");
    assert_eq!(
        (&tested["type"], &tested["status"]),
        (&json!("webhook.test"), &json!("pending"))
    );
    assert_eq!(tested["event_count"], Value::Null);
    let test_id = uuid(&tested["id"]);
    let row = client
        .query_one(
            "SELECT type, status, attempts, message_id, payload, project_id, next_attempt_at <= now()
             FROM webhook_deliveries WHERE id = $1",
            &[&test_id],
        )
        .await
        .expect("test row");
    assert_eq!(row.get::<_, String>(0), "webhook.test");
    assert_eq!(row.get::<_, String>(1), "pending");
    assert_eq!(row.get::<_, i32>(2), 0);
    assert_eq!(row.get::<_, String>(3), format!("msg_{}", test_id.simple()));
    assert_eq!(
        row.get::<_, Value>(4),
        json!({"webhook_id": webhook, "message": "This is a test message from Pulse."})
    );
    assert_eq!(row.get::<_, Uuid>(5), project);
    assert!(row.get::<_, bool>(6));
    let custom = stack
        .post(
            &format!("{one}/test"),
            Some(&user.access),
            json!({"payload": {"message": "hi", "n": 1}}),
        )
        .await
        .expect(202, "test with a payload");
    let payload = client
        .query_one(
            "SELECT payload FROM webhook_deliveries WHERE id = $1",
            &[&uuid(&custom["id"])],
        )
        .await
        .expect("payload")
        .get::<_, Value>(0);
    assert_eq!(payload, json!({"webhook_id": webhook, "message": "hi", "n": 1}));
    let bad = stack
        .post(&format!("{one}/test"), Some(&user.access), json!({"payload": [1]}))
        .await;
    refused(&bad, "payload", "payload must be an object");

    // A disabled endpoint takes none of it.
    client
        .execute(
            "UPDATE webhooks SET enabled = false, disabled_reason = 'endpoint answered 410 Gone' WHERE id = $1",
            &[&webhook],
        )
        .await
        .expect("disable");
    for answer in [
        stack
            .post(&format!("{one}/deliveries/{old}/retry"), Some(&user.access), json!({}))
            .await,
        stack
            .post(
                &format!("{one}/recover"),
                Some(&user.access),
                json!({"since": since_hour()}),
            )
            .await,
        stack.post(&format!("{one}/test"), Some(&user.access), json!({})).await,
    ] {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (409, "WEBHOOK_DISABLED"),
            "{}",
            answer.body
        );
        assert!(answer.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("enabled"));
    }
}

fn since_hour() -> String {
    (Utc::now() - Duration::hours(1)).to_rfc3339()
}
