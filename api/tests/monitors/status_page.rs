//! The public status page: enabled through `PATCH /v1/projects/{id}` with a slug (checked,
//! unique), shown without sign-in with only each non-paused monitor's name, state and 90 days
//! of daily uptime from `monitor_daily`; 404 for an unknown or disabled slug.

use pulse_testkit::Receiver;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{refused, MonitorStack, LOOPBACK};

#[tokio::test]
async fn a_status_page_shows_only_what_the_public_may_see() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let project_path = format!("/v1/projects/{}", stack.project);
    let slug = format!("acme-{}", &Uuid::new_v4().simple().to_string()[..8]);

    // Off by default; enabling needs a valid slug.
    let project = stack
        .call(Method::GET, &project_path, None)
        .await
        .expect(200, "project");
    assert_eq!(project["status_page"], json!({"enabled": false, "slug": null}));
    let answer = stack
        .call(
            Method::PATCH,
            &project_path,
            Some(json!({"status_page": {"enabled": true}})),
        )
        .await;
    refused(&answer, "status_page.slug", "enabling without a slug");
    for bad in ["-acme", "Acme", "a", "acme_1", &"a".repeat(64)] {
        let answer = stack
            .call(
                Method::PATCH,
                &project_path,
                Some(json!({"status_page": {"enabled": true, "slug": bad}})),
            )
            .await;
        refused(&answer, "status_page.slug", bad);
    }
    let enabled = stack
        .call(
            Method::PATCH,
            &project_path,
            Some(json!({"status_page": {"enabled": true, "slug": slug}})),
        )
        .await
        .expect(200, "enable");
    assert_eq!(enabled["status_page"], json!({"enabled": true, "slug": slug}));
    // Another project cannot take the slug.
    let other = stack.stack.project(&stack.owner, json!({})).await;
    let taken = stack
        .call(
            Method::PATCH,
            &format!("/v1/projects/{other}"),
            Some(json!({"status_page": {"enabled": true, "slug": slug}})),
        )
        .await;
    assert_eq!(
        (taken.status.as_u16(), taken.code()),
        (409, "SLUG_TAKEN"),
        "{}",
        taken.body
    );

    // Two monitors shown, one paused one not; one monitor of another project.
    let up = stack.monitor("b-checkout", &target.url("checkout")).await;
    stack.monitor("a-search", &target.url("search")).await;
    let paused = stack.monitor("c-internal", &target.url("internal")).await;
    stack
        .call(
            Method::PATCH,
            &stack.path(&format!("/{paused}")),
            Some(json!({"paused": true})),
        )
        .await
        .expect(200, "pause");
    stack
        .sql(&format!(
            "UPDATE monitors SET state = 'up' WHERE id = '{up}';
             INSERT INTO monitor_daily (monitor_id, day, checks, ok_checks) VALUES
                 ('{up}', (now() AT TIME ZONE 'UTC')::date, 10, 9),
                 ('{up}', (now() AT TIME ZONE 'UTC')::date - 1, 4, 4),
                 ('{up}', (now() AT TIME ZONE 'UTC')::date - 89, 2, 1),
                 ('{up}', (now() AT TIME ZONE 'UTC')::date - 90, 2, 0),
                 ('{paused}', (now() AT TIME ZONE 'UTC')::date, 5, 0);"
        ))
        .await;

    // No credentials needed.
    let page = stack
        .stack
        .call(Method::GET, &format!("/v1/status/{slug}"), None, None)
        .await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    assert_eq!(
        page.headers.get("cache-control").and_then(|value| value.to_str().ok()),
        Some("public, max-age=30")
    );
    let body = page.body;
    let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["monitors", "slug"]);
    assert_eq!(body["slug"], json!(slug));
    let monitors = body["monitors"].as_array().expect("monitors");
    let names: Vec<&str> = monitors
        .iter()
        .map(|monitor| monitor["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        vec!["a-search", "b-checkout"],
        "paused monitors are left out, by name"
    );
    for monitor in monitors {
        let mut keys: Vec<&String> = monitor.as_object().expect("monitor").keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["days", "name", "state"], "nothing else: {monitor}");
        assert_eq!(monitor["days"].as_array().expect("days").len(), 90);
    }
    assert_eq!(monitors[0]["state"], "pending");
    assert!(monitors[0]["days"]
        .as_array()
        .expect("days")
        .iter()
        .all(|day| day["uptime_pct"].is_null()));
    let days = monitors[1]["days"].as_array().expect("days");
    assert_eq!(monitors[1]["state"], "up");
    assert_eq!(days[89]["uptime_pct"], json!(90.0), "today is last");
    assert_eq!(days[88]["uptime_pct"], json!(100.0));
    assert_eq!(days[0]["uptime_pct"], json!(50.0), "89 days ago is first");
    assert_eq!(days[1]["uptime_pct"], Value::Null, "a day without checks");
    let today = days[89]["day"].as_str().expect("day");
    let first = days[0]["day"].as_str().expect("day");
    assert!(first < today, "{first} .. {today}");
    assert!(!body.to_string().contains(&target.url("")), "no URL on the public page");

    // Disabled: gone for the public, the slug kept for later.
    let disabled = stack
        .call(
            Method::PATCH,
            &project_path,
            Some(json!({"status_page": {"enabled": false}})),
        )
        .await
        .expect(200, "disable");
    assert_eq!(disabled["status_page"], json!({"enabled": false, "slug": slug}));
    let gone = stack
        .stack
        .call(Method::GET, &format!("/v1/status/{slug}"), None, None)
        .await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "NOT_FOUND"));
    let unknown = stack
        .stack
        .call(Method::GET, "/v1/status/no-such-page", None, None)
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "NOT_FOUND"));
    // Enabling again needs no slug: the kept one serves.
    stack
        .call(
            Method::PATCH,
            &project_path,
            Some(json!({"status_page": {"enabled": true}})),
        )
        .await
        .expect(200, "enable again");
    stack
        .stack
        .call(Method::GET, &format!("/v1/status/{slug}"), None, None)
        .await
        .expect(200, "back");
}
