//! Alert rules through the management API: each kind created, read, listed, changed and
//! deleted with the exact JSON shape; the field rules; roles and tenants; the default rule of
//! a new project; and incidents, written straight into the database (no worker runs here:
//! what these routes show and change is the rows the worker writes and reads).

use chrono::{DateTime, Duration, Utc};
use pulse_testkit::management::{uuid, Answer, ManagementStack as Stack, User};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const PUBLIC_URL: &str = "https://1.1.1.1/hooks/pulse";

fn alerts(project: Uuid) -> String {
    format!("/v1/projects/{project}/alerts")
}

async fn create(stack: &Stack, user: &User, project: Uuid, body: Value) -> Value {
    stack
        .post(&alerts(project), Some(&user.access), body)
        .await
        .expect(201, "create alert rule")
}

async fn patch(stack: &Stack, user: &User, path: &str, body: Value) -> Answer {
    stack.call(Method::PATCH, path, Some(&user.access), Some(body)).await
}

async fn webhook(stack: &Stack, user: &User, project: Uuid) -> Uuid {
    let created = stack
        .post(
            &format!("/v1/projects/{project}/webhooks"),
            Some(&user.access),
            json!({"name": "alerts", "url": PUBLIC_URL, "event_types": ["alert.fired", "alert.resolved"]}),
        )
        .await
        .expect(201, "create webhook");
    uuid(&created["id"])
}

/// Asserts a 400 INVALID_FIELD naming `field`.
fn refused(answer: &Answer, field: &str, what: &str) {
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

/// `value` without the fields the server adds, to compare with what was sent.
fn sent_part(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        for added in [
            "id",
            "project_id",
            "state",
            "last_evaluated_at",
            "last_observed",
            "created_at",
            "updated_at",
        ] {
            object.remove(added);
        }
    }
    value
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| uuid(&row["id"]))
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// The rule's `next_evaluation_at`, read from the database.
async fn next_evaluation(stack: &Stack, rule: Uuid) -> DateTime<Utc> {
    let client = stack.db.client().await;
    client
        .query_one("SELECT next_evaluation_at FROM alert_rules WHERE id = $1", &[&rule])
        .await
        .expect("rule row")
        .get(0)
}

#[tokio::test]
async fn rules_of_each_kind_are_created_read_listed_changed_and_deleted() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("alerts@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let hook = webhook(&stack, &user, project).await;

    // The shape of the issue, exactly: what is sent comes back, plus what the server adds.
    let count_body = json!({
        "name": "checkout errors", "enabled": true, "cooldown_s": 300, "renotify_s": 3600,
        "condition": {"kind": "count", "filter": {"event_type": "checkout", "status": "error"},
                      "window_s": 300, "op": "above", "threshold": 10},
        "channels": {"emails": ["ops@example.com"], "webhook_ids": [hook], "owners": false}
    });
    let before = Utc::now() - Duration::seconds(5);
    let count = create(&stack, &user, project, count_body.clone()).await;
    assert_eq!(sent_part(&count), count_body, "{count}");
    assert_eq!(uuid(&count["project_id"]), project);
    assert_eq!(count["state"], "ok");
    assert_eq!(
        (&count["last_evaluated_at"], &count["last_observed"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(count["created_at"], count["updated_at"]);
    let count_id = uuid(&count["id"]);
    assert!(next_evaluation(&stack, count_id).await >= before, "due at once");
    let one = format!("{}/{count_id}", alerts(project));
    let read = stack.get(&one, &user.access).await.expect(200, "get");
    assert_eq!(read, count, "GET shows what POST answered");

    // The other kinds, with their defaults filled in; channels normalized.
    let ratio = create(
        &stack,
        &user,
        project,
        json!({
            "name": "  error share ",
            "condition": {"kind": "error_ratio", "filter": {"source": "web"}, "window_s": 600, "threshold": 0.05},
            "channels": {"emails": [" Ops@Example.COM", "ops@example.com", "b@example.com"], "owners": true}
        }),
    )
    .await;
    assert_eq!(
        sent_part(&ratio),
        json!({
            "name": "error share", "enabled": true, "cooldown_s": 300, "renotify_s": 0,
            "condition": {"kind": "error_ratio", "filter": {"source": "web"}, "window_s": 600,
                          "op": "above", "threshold": 0.05, "min_events": 10},
            "channels": {"emails": ["ops@example.com", "b@example.com"], "webhook_ids": [], "owners": true}
        })
    );
    let absent_body = json!({
        "name": "nightly job", "enabled": false, "cooldown_s": 0, "renotify_s": 60,
        "condition": {"kind": "absent", "filter": {"event_type": "backup.done"}, "window_s": 90000},
        "channels": {"emails": [], "webhook_ids": [], "owners": true}
    });
    let absent = create(&stack, &user, project, absent_body.clone()).await;
    assert_eq!(sent_part(&absent), absent_body, "{absent}");
    let bare = create(
        &stack,
        &user,
        project,
        json!({"name": "anything", "condition": {"kind": "count", "window_s": 60.0, "op": "below", "threshold": 1.5}}),
    )
    .await;
    assert_eq!(
        bare["condition"],
        json!({"kind": "count", "filter": {}, "window_s": 60, "op": "below", "threshold": 1.5})
    );
    assert_eq!(
        bare["channels"],
        json!({"emails": [], "webhook_ids": [], "owners": false})
    );
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT kind, op, threshold, min_events, filter_status, notify_owners FROM alert_rules WHERE id = $1",
            &[&uuid(&absent["id"])],
        )
        .await
        .expect("absent row");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, f64>(2),
            row.get::<_, i32>(3)
        ),
        ("absent".to_owned(), "above".to_owned(), 0.0, 0),
        "an absent rule stores the neutral op, threshold and min_events"
    );
    assert_eq!((row.get::<_, Option<String>>(4), row.get::<_, bool>(5)), (None, true));

    // Newest first, one per page; the project's default rule is the oldest.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{}?limit=1&cursor={cursor}", alerts(project)),
            None => format!("{}?limit=1", alerts(project)),
        };
        let page = stack.get(&path, &user.access).await.expect(200, "page");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "four rules and the default one");
    assert_eq!(
        seen[..4],
        [uuid(&bare["id"]), uuid(&absent["id"]), uuid(&ratio["id"]), count_id]
    );
    let all = stack.get(&alerts(project), &user.access).await.expect(200, "all");
    assert_eq!(all["data"][3], count, "a listed rule is shown as GET shows it");
    assert_eq!(all["data"][4]["name"], "Errors");
    for bad in ["limit=0", "limit=101", "cursor=nope", "colour=red"] {
        let answer = stack.get(&format!("{}?{bad}", alerts(project)), &user.access).await;
        assert_eq!(answer.status.as_u16(), 400, "{bad}: {}", answer.body);
    }

    // PATCH changes what it names; condition and channels are replaced whole.
    client
        .execute(
            "UPDATE alert_rules SET next_evaluation_at = now() + interval '1 hour' WHERE id = $1",
            &[&count_id],
        )
        .await
        .expect("push the evaluation out");
    let renamed = patch(&stack, &user, &one, json!({"name": "checkout errors v2"}))
        .await
        .expect(200, "rename");
    assert_eq!(renamed["name"], "checkout errors v2");
    assert_eq!(renamed["condition"], count["condition"], "untouched");
    assert_eq!(renamed["channels"], count["channels"], "untouched");
    assert!(time(&renamed["updated_at"]) > time(&count["updated_at"]));
    assert!(
        next_evaluation(&stack, count_id).await <= Utc::now() + Duration::seconds(5),
        "a PATCH makes the rule due again"
    );
    let replaced = patch(
        &stack,
        &user,
        &one,
        json!({
            "condition": {"kind": "error_ratio", "window_s": 120, "threshold": 0.5, "min_events": 3, "op": "above"},
            "channels": {"owners": true},
            "cooldown_s": 0,
            "renotify_s": 0
        }),
    )
    .await
    .expect(200, "replace condition and channels");
    assert_eq!(
        sent_part(&replaced),
        json!({
            "name": "checkout errors v2", "enabled": true, "cooldown_s": 0, "renotify_s": 0,
            "condition": {"kind": "error_ratio", "filter": {}, "window_s": 120, "op": "above",
                          "threshold": 0.5, "min_events": 3},
            "channels": {"emails": [], "webhook_ids": [], "owners": true}
        })
    );
    // A rule read can be sent back as it is.
    let back = patch(
        &stack,
        &user,
        &one,
        json!({"condition": replaced["condition"], "channels": replaced["channels"]}),
    )
    .await
    .expect(200, "round trip");
    assert_eq!(sent_part(&back), sent_part(&replaced));
    let noop = patch(&stack, &user, &one, json!({})).await.expect(200, "empty patch");
    assert_eq!(sent_part(&noop), sent_part(&replaced));

    // Deleting takes the incidents with it.
    let incident = insert_incident(&stack, count_id, project, Incident::resolved(Duration::hours(2), 600)).await;
    stack
        .call(Method::DELETE, &one, Some(&user.access), None)
        .await
        .expect(204, "delete");
    let gone = stack.get(&one, &user.access).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "NOT_FOUND"));
    let left = client
        .query_one("SELECT count(*) FROM alert_incidents WHERE id = $1", &[&incident])
        .await
        .expect("count");
    assert_eq!(left.get::<_, i64>(0), 0, "incidents cascade");
    let again = stack.call(Method::DELETE, &one, Some(&user.access), None).await;
    assert_eq!(again.status.as_u16(), 404);
    let unknown = patch(
        &stack,
        &user,
        &format!("{}/{}", alerts(project), Uuid::now_v7()),
        json!({}),
    )
    .await;
    assert_eq!(unknown.status.as_u16(), 404);
    let bad_id = stack
        .get(&format!("{}/not-a-uuid", alerts(project)), &user.access)
        .await;
    assert_eq!(bad_id.status.as_u16(), 400, "{}", bad_id.body);
}

#[tokio::test]
async fn each_mistake_is_refused_naming_its_field() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("alert-rules@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let other_project = stack.project(&user, json!({})).await;
    let elsewhere = webhook(&stack, &user, other_project).await;
    let valid = || json!({"name": "n", "condition": {"kind": "count", "window_s": 60, "op": "above", "threshold": 1}});
    let with = |key: &str, value: Value| {
        let mut body = valid();
        body[key] = value;
        body
    };
    let condition = |value: Value| with("condition", value);
    let channels = |value: Value| with("channels", value);
    let cases = [
        (with("name", json!("  ")), "name", "blank name"),
        (with("name", json!("x".repeat(201))), "name", "long name"),
        (with("cooldown_s", json!(-1)), "cooldown_s", "negative cooldown"),
        (with("cooldown_s", json!(604_801)), "cooldown_s", "cooldown over 7 days"),
        (with("renotify_s", json!(59)), "renotify_s", "renotify under a minute"),
        (with("renotify_s", json!(604_801)), "renotify_s", "renotify over 7 days"),
        (
            condition(json!({"kind": "count", "window_s": 9, "op": "above", "threshold": 1})),
            "condition.window_s",
            "window under 10 s",
        ),
        (
            condition(json!({"kind": "absent", "window_s": 604_801})),
            "condition.window_s",
            "window over 7 days",
        ),
        (
            condition(json!({"kind": "count", "window_s": 60, "op": "above", "threshold": -1})),
            "condition.threshold",
            "negative count",
        ),
        (
            condition(json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "min_events": 5})),
            "condition.min_events",
            "min_events on a count rule",
        ),
        (
            condition(
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "filter": {"event_type": ""}}),
            ),
            "condition.filter.event_type",
            "empty filter string",
        ),
        (
            condition(
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "filter": {"status": "e".repeat(201)}}),
            ),
            "condition.filter.status",
            "long filter string",
        ),
        (
            condition(
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "filter": {"source": "a\u{0}b"}}),
            ),
            "condition.filter.source",
            "NUL in a filter",
        ),
        (
            condition(json!({"kind": "error_ratio", "window_s": 60, "threshold": 0})),
            "condition.threshold",
            "ratio 0",
        ),
        (
            condition(json!({"kind": "error_ratio", "window_s": 60, "threshold": 1})),
            "condition.threshold",
            "ratio 1",
        ),
        (
            condition(json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "op": "below"})),
            "condition.op",
            "ratio below",
        ),
        (
            condition(json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "min_events": 0})),
            "condition.min_events",
            "no minimum",
        ),
        (
            condition(json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "filter": {"status": "error"}})),
            "condition.filter.status",
            "a ratio filtered by status",
        ),
        (
            condition(json!({"kind": "absent", "window_s": 60, "op": "below"})),
            "condition.op",
            "absent with op",
        ),
        (
            condition(json!({"kind": "absent", "window_s": 60, "threshold": 3})),
            "condition.threshold",
            "absent with threshold",
        ),
        (
            condition(json!({"kind": "absent", "window_s": 60, "min_events": 1})),
            "condition.min_events",
            "absent with min_events",
        ),
        (
            channels(json!({"emails": ["not an address"]})),
            "channels.emails",
            "bad address",
        ),
        (
            channels(json!({"emails": (0..21).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>()})),
            "channels.emails",
            "21 addresses",
        ),
        (
            channels(json!({"webhook_ids": [Uuid::now_v7()]})),
            "channels.webhook_ids",
            "no such endpoint",
        ),
        (
            channels(json!({"webhook_ids": [elsewhere]})),
            "channels.webhook_ids",
            "an endpoint of another project",
        ),
        (
            channels(json!({"webhook_ids": (0..21).map(|_| Uuid::now_v7()).collect::<Vec<_>>()})),
            "channels.webhook_ids",
            "21 endpoints",
        ),
    ];
    for (body, field, what) in cases {
        let answer = stack.post(&alerts(project), Some(&user.access), body).await;
        refused(&answer, field, what);
    }
    // Shape mistakes are INVALID_JSON, naming what is wrong.
    for (body, named) in [
        (condition(json!({"kind": "threshold", "window_s": 60})), "threshold"),
        (
            condition(json!({"kind": "count", "op": "above", "threshold": 1})),
            "window_s",
        ),
        (
            condition(json!({"kind": "count", "window_s": 60, "op": "sideways", "threshold": 1})),
            "sideways",
        ),
        (
            condition(json!({"kind": "absent", "window_s": 60, "filter": {"tag": "x"}})),
            "tag",
        ),
        (channels(json!({"pager": true})), "pager"),
        (with("colour", json!("red")), "colour"),
    ] {
        let answer = stack.post(&alerts(project), Some(&user.access), body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, "INVALID_JSON"),
            "{named}: {}",
            answer.body
        );
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(named), "{named}: {message}");
    }

    let created = create(&stack, &user, project, valid()).await;
    let one = format!("{}/{}", alerts(project), created["id"].as_str().expect("id"));
    refused(
        &patch(&stack, &user, &one, json!({"renotify_s": 1})).await,
        "renotify_s",
        "patch renotify",
    );
    refused(
        &patch(
            &stack,
            &user,
            &one,
            json!({"condition": {"kind": "absent", "window_s": 60, "threshold": 0}}),
        )
        .await,
        "condition.threshold",
        "patch condition",
    );
    refused(
        &patch(&stack, &user, &one, json!({"channels": {"webhook_ids": [elsewhere]}})).await,
        "channels.webhook_ids",
        "patch channels",
    );
    let unknown = patch(&stack, &user, &one, json!({"colour": "red"})).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (400, "INVALID_JSON"));
    let unchanged = stack.get(&one, &user.access).await.expect(200, "unchanged");
    assert_eq!(
        sent_part(&unchanged),
        sent_part(&created),
        "refused PATCHes change nothing"
    );
}

#[tokio::test]
async fn members_read_admins_change_strangers_see_nothing() {
    let stack = Stack::start(&[]).await;
    let owner = stack.register("alert-owner@example.com").await;
    let admin = stack.register("alert-admin@example.com").await;
    let member = stack.register("alert-member@example.com").await;
    let stranger = stack.register("alert-stranger@example.com").await;
    let project = stack.project(&owner, json!({})).await;
    for (email, role) in [
        ("alert-admin@example.com", "admin"),
        ("alert-member@example.com", "member"),
    ] {
        stack
            .post(
                &format!("/v1/organizations/{}/members", owner.organization),
                Some(&owner.access),
                json!({"email": email, "role": role}),
            )
            .await
            .expect(201, "add member");
    }
    let body = json!({"name": "n", "condition": {"kind": "absent", "window_s": 600}});
    let created = create(&stack, &admin, project, body.clone()).await;
    let one = format!("{}/{}", alerts(project), created["id"].as_str().expect("id"));

    stack
        .get(&alerts(project), &member.access)
        .await
        .expect(200, "member lists");
    stack.get(&one, &member.access).await.expect(200, "member reads");
    stack
        .get(&format!("{one}/incidents"), &member.access)
        .await
        .expect(200, "member reads incidents");
    stack
        .get(&format!("/v1/projects/{project}/incidents"), &member.access)
        .await
        .expect(200, "member reads the project's incidents");
    for answer in [
        stack.post(&alerts(project), Some(&member.access), body.clone()).await,
        patch(&stack, &member, &one, json!({"enabled": false})).await,
        stack.call(Method::DELETE, &one, Some(&member.access), None).await,
    ] {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "FORBIDDEN"),
            "{}",
            answer.body
        );
    }
    patch(&stack, &admin, &one, json!({"name": "by the admin"}))
        .await
        .expect(200, "admin changes");
    for answer in [
        stack.get(&alerts(project), &stranger.access).await,
        stack.get(&one, &stranger.access).await,
        stack.get(&format!("{one}/incidents"), &stranger.access).await,
        stack
            .get(&format!("/v1/projects/{project}/incidents"), &stranger.access)
            .await,
        stack.post(&alerts(project), Some(&stranger.access), body.clone()).await,
        patch(&stack, &stranger, &one, json!({"enabled": false})).await,
        stack.call(Method::DELETE, &one, Some(&stranger.access), None).await,
    ] {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (404, "NOT_FOUND"),
            "{}",
            answer.body
        );
    }
    // A rule of another project is not found through this one.
    let other_project = stack.project(&stranger, json!({})).await;
    let through = format!("{}/{}", alerts(other_project), created["id"].as_str().expect("id"));
    for answer in [
        stack.get(&through, &stranger.access).await,
        stack.get(&format!("{through}/incidents"), &stranger.access).await,
        patch(&stack, &stranger, &through, json!({"enabled": false})).await,
        stack.call(Method::DELETE, &through, Some(&stranger.access), None).await,
    ] {
        assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);
    }
    stack
        .call(Method::DELETE, &one, Some(&owner.access), None)
        .await
        .expect(204, "owner deletes");
}

#[tokio::test]
async fn a_new_project_starts_with_the_default_error_rule() {
    let stack = Stack::start(&[("PULSE_ALERT_ERROR_THRESHOLD", "7")]).await;
    let user = stack.register("default-rule@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let page = stack.get(&alerts(project), &user.access).await.expect(200, "list");
    let rules = page["data"].as_array().expect("data");
    assert_eq!(rules.len(), 1, "{page}");
    assert_eq!(
        sent_part(&rules[0]),
        json!({
            "name": "Errors", "enabled": true, "cooldown_s": 300, "renotify_s": 0,
            "condition": {"kind": "count", "filter": {"status": "error"}, "window_s": 300,
                          "op": "above", "threshold": 7},
            "channels": {"emails": [], "webhook_ids": [], "owners": true}
        })
    );
    assert_eq!(rules[0]["state"], "ok");
    // It is an ordinary rule: it can be changed and deleted, and each project has its own.
    let second = stack.project(&user, json!({})).await;
    let theirs = stack.get(&alerts(second), &user.access).await.expect(200, "second");
    assert_ne!(theirs["data"][0]["id"], rules[0]["id"]);
    let one = format!("{}/{}", alerts(project), rules[0]["id"].as_str().expect("id"));
    patch(&stack, &user, &one, json!({"enabled": false}))
        .await
        .expect(200, "disable the default");
    stack
        .call(Method::DELETE, &one, Some(&user.access), None)
        .await
        .expect(204, "delete the default");
    // A refused project (its name taken) leaves no rule behind.
    let name = format!("taken-{}", Uuid::new_v4());
    stack
        .post(
            "/v1/projects",
            Some(&user.access),
            json!({"organization_id": user.organization, "name": name}),
        )
        .await
        .expect(201, "first");
    let taken = stack
        .post(
            "/v1/projects",
            Some(&user.access),
            json!({"organization_id": user.organization, "name": name}),
        )
        .await;
    assert_eq!((taken.status.as_u16(), taken.code()), (409, "NAME_TAKEN"));
    let client = stack.db.client().await;
    let orphans = client
        .query_one(
            "SELECT count(*) FROM alert_rules r JOIN projects p ON p.id = r.project_id WHERE p.organization_id = $1",
            &[&user.organization],
        )
        .await
        .expect("count");
    assert_eq!(
        orphans.get::<_, i64>(0),
        2,
        "the second project's and the first named one's"
    );
}

/// An incident row as the worker would write it.
struct Incident {
    state: &'static str,
    started_ago: Duration,
    /// Seconds from start to resolution, for resolved ones.
    lasted_s: Option<i64>,
}

impl Incident {
    fn firing(started_ago: Duration) -> Self {
        Self {
            state: "firing",
            started_ago,
            lasted_s: None,
        }
    }

    fn resolved(started_ago: Duration, lasted_s: i64) -> Self {
        Self {
            state: "resolved",
            started_ago,
            lasted_s: Some(lasted_s),
        }
    }
}

async fn insert_incident(stack: &Stack, rule: Uuid, project: Uuid, incident: Incident) -> Uuid {
    let client = stack.db.client().await;
    let id = Uuid::now_v7();
    let started_at: DateTime<Utc> = Utc::now() - incident.started_ago;
    let resolved_at: Option<DateTime<Utc>> = incident.lasted_s.map(|secs| started_at + Duration::seconds(secs));
    client
        .execute(
            "INSERT INTO alert_incidents (id, rule_id, project_id, state, rule_name, kind, op, threshold, window_s,
                 observed, last_observed, started_at, resolved_at, notifications, last_notified_at)
             SELECT $1, id, $3, $4, name, kind, op, threshold, window_s, 14, 12.5, $5, $6, 2, $5
             FROM alert_rules WHERE id = $2",
            &[&id, &rule, &project, &incident.state, &started_at, &resolved_at],
        )
        .await
        .expect("insert incident");
    id
}

async fn state_of(stack: &Stack, incident: Uuid) -> (String, Option<DateTime<Utc>>) {
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT state, resolved_at FROM alert_incidents WHERE id = $1",
            &[&incident],
        )
        .await
        .expect("incident row");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn incidents_are_listed_newest_first_by_state_with_their_duration() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("incidents@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let body = json!({"name": "checkout errors", "condition": {"kind": "count", "window_s": 300, "op": "above", "threshold": 10}});
    let rule = uuid(&create(&stack, &user, project, body.clone()).await["id"]);
    let other = uuid(&create(&stack, &user, project, body).await["id"]);
    let one = format!("{}/{rule}", alerts(project));

    let oldest = insert_incident(&stack, rule, project, Incident::resolved(Duration::days(2), 750)).await;
    let older = insert_incident(&stack, rule, project, Incident::resolved(Duration::hours(5), 61)).await;
    let firing = insert_incident(&stack, rule, project, Incident::firing(Duration::minutes(3))).await;
    let theirs = insert_incident(&stack, other, project, Incident::resolved(Duration::hours(1), 30)).await;
    // Written later but started earlier: the lists go by when incidents started.
    let late = insert_incident(&stack, other, project, Incident::resolved(Duration::days(3), 5)).await;

    let page = stack
        .get(&format!("{one}/incidents"), &user.access)
        .await
        .expect(200, "rule incidents");
    assert_eq!(ids(&page), vec![firing, older, oldest]);
    assert_eq!(page["next_cursor"], Value::Null);
    let shown = &page["data"][0];
    assert_eq!(
        (&shown["state"], &shown["duration_s"], &shown["resolved_at"]),
        (&json!("firing"), &Value::Null, &Value::Null)
    );
    assert_eq!(uuid(&shown["alert_id"]), rule);
    assert_eq!(shown["alert_name"], "checkout errors");
    assert_eq!(
        (&shown["kind"], &shown["op"], &shown["threshold"], &shown["window_s"]),
        (&json!("count"), &json!("above"), &json!(10), &json!(300))
    );
    assert_eq!(
        (&shown["observed"], &shown["last_observed"], &shown["notifications"]),
        (&json!(14), &json!(12.5), &json!(2))
    );
    assert_eq!(shown["started_at"], shown["last_notified_at"]);
    assert_eq!(page["data"][1]["duration_s"], 61);
    assert_eq!(page["data"][2]["duration_s"], 750);
    assert_eq!(page["data"][2]["state"], "resolved");
    let resolved = stack
        .get(&format!("{one}/incidents?state=resolved"), &user.access)
        .await
        .expect(200, "resolved");
    assert_eq!(ids(&resolved), vec![older, oldest]);
    let now_firing = stack
        .get(&format!("{one}/incidents?state=firing"), &user.access)
        .await
        .expect(200, "firing");
    assert_eq!(ids(&now_firing), vec![firing]);

    // A rule with a firing incident shows it, in its view and in the list.
    let view = stack.get(&one, &user.access).await.expect(200, "rule");
    assert_eq!(view["state"], "firing");
    let list = stack.get(&alerts(project), &user.access).await.expect(200, "rules");
    let states: Vec<(Uuid, String)> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|rule| (uuid(&rule["id"]), rule["state"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(states.contains(&(rule, "firing".to_owned())), "{states:?}");
    assert!(states.contains(&(other, "ok".to_owned())), "{states:?}");

    // Across the project's rules, paged two at a time.
    let project_incidents = format!("/v1/projects/{project}/incidents");
    let all = stack
        .get(&project_incidents, &user.access)
        .await
        .expect(200, "project incidents");
    assert_eq!(ids(&all), vec![firing, theirs, older, oldest, late]);
    let mut seen = Vec::new();
    let mut path = format!("{project_incidents}?limit=2");
    loop {
        let page = stack.get(&path, &user.access).await.expect(200, "page");
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{project_incidents}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all), "pages neither repeat nor skip");
    let firing_now = stack
        .get(&format!("{project_incidents}?state=firing"), &user.access)
        .await
        .expect(200, "what fires now");
    assert_eq!(ids(&firing_now), vec![firing]);
    let resolved = stack
        .get(&format!("{project_incidents}?state=resolved&limit=1"), &user.access)
        .await
        .expect(200, "resolved, one");
    assert_eq!(ids(&resolved), vec![theirs]);
    assert!(resolved["next_cursor"].is_string());
    for bad in ["state=open", "limit=0", "limit=101", "cursor=nope", "colour=red"] {
        for path in [&project_incidents, &format!("{one}/incidents")] {
            let answer = stack.get(&format!("{path}?{bad}"), &user.access).await;
            assert_eq!(answer.status.as_u16(), 400, "{path}?{bad}: {}", answer.body);
        }
    }
    let missing = stack
        .get(
            &format!("{}/{}/incidents", alerts(project), Uuid::now_v7()),
            &user.access,
        )
        .await;
    assert_eq!(missing.status.as_u16(), 404, "{}", missing.body);
}

#[tokio::test]
async fn disabling_or_changing_the_condition_resolves_the_firing_incident() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("resolve@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let condition =
        json!({"kind": "count", "filter": {"event_type": "checkout"}, "window_s": 300, "op": "above", "threshold": 10});
    let rule = create(
        &stack,
        &user,
        project,
        json!({"name": "checkout", "condition": condition.clone()}),
    )
    .await;
    let id = uuid(&rule["id"]);
    let one = format!("{}/{id}", alerts(project));

    // Changes that keep the condition leave the incident firing.
    let first = insert_incident(&stack, id, project, Incident::firing(Duration::minutes(10))).await;
    for body in [
        json!({"name": "checkout (renamed)", "cooldown_s": 60, "channels": {"owners": true}}),
        json!({"enabled": true}),
        json!({"condition": condition.clone()}),
    ] {
        let changed = patch(&stack, &user, &one, body.clone()).await.expect(200, "patch");
        assert_eq!(changed["state"], "firing", "{body}");
        assert_eq!(state_of(&stack, first).await.0, "firing", "{body}");
    }

    // Disabling resolves it at once (without notices: none are written).
    let before = Utc::now() - Duration::seconds(5);
    let disabled = patch(&stack, &user, &one, json!({"enabled": false}))
        .await
        .expect(200, "disable");
    assert_eq!(
        (&disabled["enabled"], &disabled["state"]),
        (&json!(false), &json!("ok"))
    );
    let (state, resolved_at) = state_of(&stack, first).await;
    assert_eq!(state, "resolved");
    assert!(resolved_at.expect("resolved_at") >= before);
    let incidents = stack
        .get(&format!("{one}/incidents"), &user.access)
        .await
        .expect(200, "incidents");
    assert!(incidents["data"][0]["duration_s"].as_i64().expect("a duration") >= 600);
    let client = stack.db.client().await;
    let notices = client
        .query_one(
            "SELECT (SELECT count(*) FROM email_messages WHERE project_id = $1)
                  + (SELECT count(*) FROM webhook_messages WHERE project_id = $1)",
            &[&project],
        )
        .await
        .expect("notices");
    assert_eq!(notices.get::<_, i64>(0), 0, "closing by hand sends nothing");

    // A different condition resolves it too; the incident keeps the rule as it fired.
    patch(&stack, &user, &one, json!({"enabled": true}))
        .await
        .expect(200, "enable");
    let second = insert_incident(&stack, id, project, Incident::firing(Duration::minutes(1))).await;
    let changed = patch(
        &stack,
        &user,
        &one,
        json!({"condition": {"kind": "count", "filter": {"event_type": "checkout"}, "window_s": 300, "op": "above", "threshold": 20}}),
    )
    .await
    .expect(200, "raise the threshold");
    assert_eq!(changed["state"], "ok");
    assert_eq!(state_of(&stack, second).await.0, "resolved");
    let shown = stack
        .get(&format!("{one}/incidents?state=resolved"), &user.access)
        .await
        .expect(200, "resolved");
    assert_eq!(ids(&shown), vec![second, first]);
    assert_eq!(shown["data"][0]["threshold"], 10, "as it was when it fired");
}
