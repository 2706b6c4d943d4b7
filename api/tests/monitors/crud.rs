//! Monitors created, read, listed, changed and deleted with their exact shape; defaults;
//! scheduling on the monitor's phase; a change of URL starting afresh; the breaker shown from
//! its target's row; the field rules; the SSRF guard; roles and tenants.

use chrono::{DateTime, TimeDelta, Utc};
use pulse_testkit::management::{uuid, ManagementStack};
use pulse_testkit::Receiver;
use reqwest::Method;
use serde_json::{json, Value};

use super::{refused, MonitorStack, LOOPBACK};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

#[tokio::test]
async fn monitors_are_created_read_listed_changed_and_deleted() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let hook = stack
        .call(
            Method::POST,
            &format!("/v1/projects/{}/webhooks", stack.project),
            Some(json!({"name": "ops", "url": "https://1.1.1.1/hooks", "event_types": ["monitor.down", "monitor.up"]})),
        )
        .await
        .expect(201, "webhook");
    let before = Utc::now();
    let full = stack
        .create(json!({
            "name": "  checkout  ",
            "url": target.url("health"),
            "method": "post",
            "headers": {"X-Probe": "pulse"},
            "body": "{\"ping\": true}",
            "interval_s": 30,
            "timeout_ms": 5000,
            "expected_status": [200, "3xx", "401-403"],
            "body_contains": "ok",
            "json_match": {"pointer": "/status", "equals": "ok"},
            "max_latency_ms": 2000,
            "cert_expiry_days": 7,
            "failures_before_down": 2,
            "renotify_s": 600,
            "maintenance": [
                {"start": "2026-12-24T00:00:00Z", "end": "2026-12-26T00:00:00Z"},
                {"weekday": "sunday", "start_time": "02:00", "duration_s": 3600}
            ],
            "channels": {"emails": ["Ops@Example.com", "ops@example.com"], "webhook_ids": [hook["id"]]}
        }))
        .await;
    let id = uuid(&full["id"]);
    let expected = json!({
        "id": id,
        "project_id": stack.project,
        "name": "checkout",
        "url": target.url("health"),
        "method": "POST",
        "headers": {"X-Probe": "pulse"},
        "body": "{\"ping\": true}",
        "interval_s": 30,
        "timeout_ms": 5000,
        "expected_status": ["200", "3xx", "401-403"],
        "body_contains": "ok",
        "json_match": {"pointer": "/status", "equals": "ok"},
        "max_latency_ms": 2000,
        "cert_expiry_days": 7,
        "failures_before_down": 2,
        "renotify_s": 600,
        "paused": false,
        "maintenance": [
            {"start": "2026-12-24T00:00:00Z", "end": "2026-12-26T00:00:00Z"},
            {"weekday": "sunday", "start_time": "02:00", "duration_s": 3600}
        ],
        "channels": {"emails": ["ops@example.com"], "webhook_ids": [hook["id"]]},
        "state": "pending",
        "breaker": "closed",
        "consecutive_failures": 0,
        "state_changed_at": null,
        "last_check": null,
        "cert_expires_at": null,
    });
    for (key, value) in expected.as_object().expect("object") {
        assert_eq!(&full[key], value, "{key}: {full}");
    }
    // The first check is on the monitor's phase, within one interval from now.
    let next = time(&full["next_check_at"]);
    assert!(
        next >= before - TimeDelta::seconds(1) && next <= Utc::now() + TimeDelta::seconds(30),
        "{next}"
    );

    // Defaults.
    let minimal = stack.create(json!({"name": "api", "url": target.url("")})).await;
    for (key, value) in [
        ("method", json!("GET")),
        ("headers", json!({})),
        ("body", Value::Null),
        ("interval_s", json!(60)),
        ("timeout_ms", json!(10000)),
        ("expected_status", json!(["2xx"])),
        ("json_match", Value::Null),
        ("max_latency_ms", Value::Null),
        ("cert_expiry_days", json!(14)),
        ("failures_before_down", json!(3)),
        ("renotify_s", json!(0)),
        ("maintenance", json!([])),
        ("channels", json!({"emails": [], "webhook_ids": []})),
        ("state", json!("pending")),
    ] {
        assert_eq!(minimal[key], value, "{key}: {minimal}");
    }

    // Read back, and listed newest first in pages.
    let read = stack
        .call(Method::GET, &stack.path(&format!("/{id}")), None)
        .await
        .expect(200, "get");
    assert_eq!(read, full);
    let first = stack
        .call(Method::GET, &stack.path("?limit=1"), None)
        .await
        .expect(200, "page 1");
    assert_eq!(first["data"][0]["id"], minimal["id"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = stack
        .call(Method::GET, &stack.path(&format!("?limit=1&cursor={cursor}")), None)
        .await
        .expect(200, "page 2");
    assert_eq!(second["data"][0]["id"], full["id"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Paused shows as such; unpausing reschedules on the phase. A PATCH is partial; null
    // removes an optional condition.
    stack
        .sql(&format!(
            "UPDATE monitors SET next_check_at = now() - interval '1 hour' WHERE id = '{id}'"
        ))
        .await;
    let paused = stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{id}")),
            Some(json!({"paused": true, "json_match": null, "max_latency_ms": null})),
        )
        .await
        .expect(200, "pause");
    assert_eq!(
        (
            &paused["state"],
            &paused["paused"],
            &paused["json_match"],
            &paused["max_latency_ms"]
        ),
        (&json!("paused"), &json!(true), &Value::Null, &Value::Null)
    );
    assert_eq!(paused["body_contains"], "ok", "untouched fields stay");
    let resumed = stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{id}")),
            Some(json!({"paused": false})),
        )
        .await
        .expect(200, "resume");
    let next = time(&resumed["next_check_at"]);
    assert!(
        next >= Utc::now() - TimeDelta::seconds(5),
        "rescheduled from now: {next}"
    );
    assert_eq!(resumed["state"], "pending");

    // A monitor that went down, with an open incident and a breaker open on its target.
    let target_key = format!("127.0.0.1:{}", target.port());
    stack
        .sql(&format!(
            "UPDATE monitors SET state = 'down', consecutive_failures = 4, state_changed_at = now() WHERE id = '{id}';
             INSERT INTO monitor_incidents (id, monitor_id, project_id, started_at, error_class)
                 VALUES (gen_random_uuid(), '{id}', '{}', now() - interval '5 minutes', 'timeout');
             INSERT INTO monitor_breakers (target, state, failures, opened_at, retry_at)
                 VALUES ('{target_key}', 'open', 5, now(), now() + interval '1 minute');",
            stack.project
        ))
        .await;
    let down = stack
        .call(Method::GET, &stack.path(&format!("/{id}")), None)
        .await
        .expect(200, "down");
    assert_eq!(
        (&down["state"], &down["breaker"], &down["consecutive_failures"]),
        (&json!("down"), &json!("open"), &json!(4))
    );
    // The minimal monitor shares the target (same host and port): same breaker.
    let minimal_read = stack
        .call(
            Method::GET,
            &stack.path(&format!("/{}", minimal["id"].as_str().expect("id"))),
            None,
        )
        .await
        .expect(200, "minimal");
    assert_eq!(minimal_read["breaker"], "open");
    // A new URL starts afresh: pending, no failures, the incident resolved.
    let other = Receiver::start().await;
    let moved = stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{id}")),
            Some(json!({"url": other.url("health"), "interval_s": 45, "timeout_ms": 45000})),
        )
        .await
        .expect(200, "move");
    assert_eq!(
        (
            &moved["state"],
            &moved["breaker"],
            &moved["consecutive_failures"],
            &moved["state_changed_at"]
        ),
        (&json!("pending"), &json!("closed"), &json!(0), &Value::Null)
    );
    assert_eq!(
        (&moved["interval_s"], &moved["timeout_ms"]),
        (&json!(45), &json!(45000))
    );
    let incidents = stack
        .call(Method::GET, &stack.path(&format!("/{id}/incidents")), None)
        .await
        .expect(200, "incidents");
    assert!(incidents["data"][0]["resolved_at"].is_string(), "{incidents}");

    // Deleted with its history.
    stack
        .call(Method::DELETE, &stack.path(&format!("/{id}")), None)
        .await
        .expect(204, "delete");
    let gone = stack.call(Method::GET, &stack.path(&format!("/{id}")), None).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "NOT_FOUND"));
    let again = stack.call(Method::DELETE, &stack.path(&format!("/{id}")), None).await;
    assert_eq!(again.status.as_u16(), 404);
    let rows = stack
        .stack
        .db
        .client()
        .await
        .query_one(
            &format!("SELECT count(*) FROM monitor_incidents WHERE monitor_id = '{id}'"),
            &[],
        )
        .await
        .expect("count");
    assert_eq!(rows.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let url = target.url("health");
    let elsewhere = stack.stack.project(&stack.owner, json!({})).await;
    let foreign_hook = stack
        .call(
            Method::POST,
            &format!("/v1/projects/{elsewhere}/webhooks"),
            Some(json!({"name": "x", "url": "https://1.1.1.1/h", "event_types": ["monitor.down"]})),
        )
        .await
        .expect(201, "webhook elsewhere");
    let cases = [
        (json!({"name": " ", "url": url}), "name"),
        (json!({"name": "a", "url": "ftp://example.com/"}), "url"),
        (json!({"name": "a", "url": "not a url"}), "url"),
        (json!({"name": "a", "url": url, "method": "TRACE"}), "method"),
        (json!({"name": "a", "url": url, "interval_s": 9}), "interval_s"),
        (json!({"name": "a", "url": url, "interval_s": 86401}), "interval_s"),
        (json!({"name": "a", "url": url, "timeout_ms": 50}), "timeout_ms"),
        (
            json!({"name": "a", "url": url, "interval_s": 10, "timeout_ms": 10001}),
            "timeout_ms",
        ),
        (
            json!({"name": "a", "url": url, "expected_status": []}),
            "expected_status",
        ),
        (
            json!({"name": "a", "url": url, "expected_status": ["6xx"]}),
            "expected_status",
        ),
        (
            json!({"name": "a", "url": url, "expected_status": ["300-200"]}),
            "expected_status",
        ),
        (json!({"name": "a", "url": url, "body_contains": ""}), "body_contains"),
        (json!({"name": "a", "url": url, "body": "a\u{0}b"}), "body"),
        (
            json!({"name": "a", "url": url, "json_match": {"pointer": "status", "equals": 1}}),
            "json_match.pointer",
        ),
        (
            json!({"name": "a", "url": url, "json_match": {"pointer": "/s", "equals": "\u{0}"}}),
            "json_match.equals",
        ),
        (json!({"name": "a", "url": url, "max_latency_ms": 0}), "max_latency_ms"),
        (
            json!({"name": "a", "url": url, "cert_expiry_days": 400}),
            "cert_expiry_days",
        ),
        (
            json!({"name": "a", "url": url, "failures_before_down": 0}),
            "failures_before_down",
        ),
        (json!({"name": "a", "url": url, "renotify_s": 30}), "renotify_s"),
        (json!({"name": "a", "url": url, "headers": {"Host": "evil"}}), "headers"),
        (json!({"name": "a", "url": url, "headers": {"X-A": 1}}), "headers"),
        (
            json!({"name": "a", "url": url, "maintenance": [{"weekday": "someday", "start_time": "02:00", "duration_s": 60}]}),
            "maintenance",
        ),
        (
            json!({"name": "a", "url": url, "maintenance": [{"start": "2026-12-02T10:00:00Z", "end": "2026-12-02T09:00:00Z"}]}),
            "maintenance",
        ),
        (
            json!({"name": "a", "url": url, "channels": {"emails": ["nope"]}}),
            "channels.emails",
        ),
        (
            json!({"name": "a", "url": url, "channels": {"webhook_ids": [foreign_hook["id"]]}}),
            "channels.webhook_ids",
        ),
    ];
    for (body, field) in cases {
        let answer = stack.call(Method::POST, &stack.path(""), Some(body.clone())).await;
        refused(&answer, field, &body.to_string());
    }
    // Shape mistakes are INVALID_JSON with serde's message.
    for body in [
        json!({"name": "a", "url": url, "colour": "red"}),
        json!({"name": "a"}),
        json!({"name": "a", "url": url, "json_match": {"pointer": "/a"}}),
        json!({"name": "a", "url": url, "interval_s": 30.5}),
    ] {
        let answer = stack.call(Method::POST, &stack.path(""), Some(body.clone())).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, "INVALID_JSON"),
            "{body}: {}",
            answer.body
        );
    }
    // A PATCH is checked against what it keeps: a shorter interval than the stored timeout.
    let id = uuid(
        &stack
            .create(json!({"name": "a", "url": url, "interval_s": 60, "timeout_ms": 30000}))
            .await["id"],
    );
    let answer = stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{id}")),
            Some(json!({"interval_s": 20})),
        )
        .await;
    refused(&answer, "timeout_ms", "interval below the kept timeout");
    let unknown = stack
        .call(Method::GET, &stack.path(&format!("/{}", uuid::Uuid::now_v7())), None)
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn loopback_targets_are_refused_without_the_allow_list() {
    let stack = MonitorStack::start(&[]).await;
    let target = Receiver::start().await;
    for url in [
        target.url("health"),
        "http://localhost:9/".to_owned(),
        "http://10.1.2.3/".to_owned(),
    ] {
        let answer = stack
            .call(
                Method::POST,
                &stack.path(""),
                Some(json!({"name": "internal", "url": url})),
            )
            .await;
        refused(&answer, "url", &url);
    }
    let public = stack.monitor("public", "https://1.1.1.1/health").await;
    let answer = stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{public}")),
            Some(json!({"url": target.url("health")})),
        )
        .await;
    refused(&answer, "url", "patch to loopback");
}

#[tokio::test]
async fn members_read_and_admins_write_and_other_tenants_see_nothing() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let id = stack.monitor("api", &target.url("")).await;
    let member = stack.stack.register("member@example.com").await;
    stack
        .call(
            Method::POST,
            &format!("/v1/organizations/{}/members", stack.owner.organization),
            Some(json!({"email": "member@example.com", "role": "member"})),
        )
        .await
        .expect(201, "add member");
    let as_member = |method: Method, path: String, body: Option<Value>| {
        let stack = &stack.stack;
        let token = member.access.clone();
        async move { stack.call(method, &path, Some(&token), body).await }
    };
    for path in [
        stack.path(""),
        stack.path(&format!("/{id}")),
        stack.path(&format!("/{id}/checks")),
        stack.path(&format!("/{id}/incidents")),
        stack.path(&format!("/{id}/stats")),
    ] {
        as_member(Method::GET, path.clone(), None).await.expect(200, &path);
    }
    for (method, path, body) in [
        (
            Method::POST,
            stack.path(""),
            Some(json!({"name": "x", "url": target.url("")})),
        ),
        (
            Method::PATCH,
            stack.path(&format!("/{id}")),
            Some(json!({"paused": true})),
        ),
        (Method::DELETE, stack.path(&format!("/{id}")), None),
        (Method::POST, stack.path(&format!("/{id}/check")), None),
    ] {
        let answer = as_member(method.clone(), path.clone(), body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "FORBIDDEN"),
            "{method} {path}"
        );
    }
    // Someone else's organization: 404, never 403.
    let outsider = stack.stack.register("outsider@example.com").await;
    let answer = stack.stack.get(&stack.path(&format!("/{id}")), &outsider.access).await;
    assert_eq!((answer.status.as_u16(), answer.code()), (404, "NOT_FOUND"));
    let own = ManagementStack::project(&stack.stack, &outsider, json!({})).await;
    let answer = stack
        .stack
        .get(&format!("/v1/projects/{own}/monitors/{id}"), &outsider.access)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (404, "NOT_FOUND"),
        "another project's monitor"
    );
}
