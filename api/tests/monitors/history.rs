//! A monitor's history and figures from rows written as the check engine writes them: checks
//! paged newest first within a time range, incidents paged, and the stats of each window
//! computed to the exact numbers.

use pulse_testkit::Receiver;
use reqwest::Method;
use serde_json::{json, Value};

use super::{MonitorStack, LOOPBACK};

/// Asserts `value` is the number `expected` (percentiles are interpolated in floating point).
fn close(value: &Value, expected: f64, what: &str) {
    let found = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {value}"));
    assert!((found - expected).abs() < 1e-6, "{what}: {found} != {expected}");
}

#[tokio::test]
async fn checks_page_newest_first_within_a_range() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let id = stack.monitor("api", &target.url("")).await;
    // Seven checks one minute apart, the newest 1 minute ago; two share a time (ties by id).
    stack
        .sql(&format!(
            "INSERT INTO monitor_checks (monitor_id, checked_at, scheduled_at, ok, status_code, latency_ms, error_class, error)
             SELECT '{id}', date_trunc('second', now()) - make_interval(mins => i), now() - make_interval(mins => i),
                    i % 2 = 0, CASE WHEN i % 2 = 0 THEN 200 ELSE 503 END, 10 * i,
                    CASE WHEN i % 2 = 0 THEN NULL ELSE 'status' END, NULL
             FROM generate_series(1, 6) AS i;
             INSERT INTO monitor_checks (monitor_id, checked_at, ok, status_code, latency_ms, manual)
             VALUES ('{id}', date_trunc('second', now()) - interval '3 minutes', true, 200, 5, true);"
        ))
        .await;
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("/{id}/checks?limit=3&cursor={cursor}"),
            None => format!("/{id}/checks?limit=3"),
        };
        let page = stack
            .call(Method::GET, &stack.path(&query), None)
            .await
            .expect(200, "checks");
        pages += 1;
        seen.extend(page["data"].as_array().expect("data").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 7));
    let latencies: Vec<i64> = seen
        .iter()
        .map(|check| check["latency_ms"].as_i64().expect("latency"))
        .collect();
    // Newest first; at 3 minutes ago the manual check (inserted later, higher id) comes first.
    assert_eq!(latencies, vec![10, 20, 5, 30, 40, 50, 60]);
    let failed = &seen[0];
    assert_eq!(
        (
            &failed["ok"],
            &failed["status_code"],
            &failed["error_class"],
            &failed["manual"]
        ),
        (&json!(false), &json!(503), &json!("status"), &json!(false))
    );
    assert_eq!(
        (&seen[2]["manual"], &seen[2]["scheduled_at"]),
        (&json!(true), &Value::Null)
    );

    // A range: from inclusive, to exclusive.
    let from = seen[5]["checked_at"].as_str().expect("time").replace('+', "%2B");
    let to = seen[1]["checked_at"].as_str().expect("time").replace('+', "%2B");
    let ranged = stack
        .call(
            Method::GET,
            &stack.path(&format!("/{id}/checks?from={from}&to={to}")),
            None,
        )
        .await
        .expect(200, "range");
    let latencies: Vec<i64> = ranged["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|check| check["latency_ms"].as_i64().expect("latency"))
        .collect();
    assert_eq!(latencies, vec![5, 30, 40, 50]);

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=nope", "cursor"),
        (&format!("from={to}&to={from}") as &str, "from"),
    ] {
        let answer = stack
            .call(Method::GET, &stack.path(&format!("/{id}/checks?{query}")), None)
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, "INVALID_PARAMETER"),
            "{query}"
        );
        assert_eq!(answer.body["error"]["details"]["parameter"], parameter, "{query}");
    }
    let answer = stack
        .call(Method::GET, &stack.path(&format!("/{id}/checks?from=yesterday")), None)
        .await;
    assert_eq!(answer.status.as_u16(), 400, "not RFC 3339");
}

#[tokio::test]
async fn stats_are_computed_from_the_checks_and_incidents() {
    let stack = MonitorStack::start(LOOPBACK).await;
    let target = Receiver::start().await;
    let id = stack.monitor("api", &target.url("")).await;
    let project = stack.project;
    // (age, ok, latency): 4 checks in the last day, 2 more in the week, 2 more in the month,
    // one older than 30 days that counts nowhere. The timeout and the connection failure
    // took time but got no answer: no response time, left out of the percentiles.
    stack
        .sql(&format!(
            "INSERT INTO monitor_checks (monitor_id, checked_at, ok, status_code, latency_ms, error_class)
             VALUES ('{id}', now() - interval '1 hour', true, 200, 100, NULL),
                    ('{id}', now() - interval '2 hours', true, 200, 200, NULL),
                    ('{id}', now() - interval '3 hours', false, 500, 300, 'status'),
                    ('{id}', now() - interval '4 hours', false, NULL, 10000, 'timeout'),
                    ('{id}', now() - interval '2 days', true, 200, 400, NULL),
                    ('{id}', now() - interval '3 days', true, 200, 500, NULL),
                    ('{id}', now() - interval '10 days', false, NULL, 3, 'connect'),
                    ('{id}', now() - interval '20 days', true, 200, 600, NULL),
                    ('{id}', now() - interval '40 days', true, 200, 700, NULL);
             INSERT INTO monitor_incidents (id, monitor_id, project_id, started_at, resolved_at, error_class, notifications)
             VALUES (gen_random_uuid(), '{id}', '{project}', now() - interval '2 hours', now() - interval '90 minutes', 'status', 2),
                    (gen_random_uuid(), '{id}', '{project}', now() - interval '3 days', now() - interval '3 days' + interval '1 hour', 'timeout', 2),
                    (gen_random_uuid(), '{id}', '{project}', now() - interval '20 days', now() - interval '20 days' + interval '2 hours', 'connect', 2),
                    (gen_random_uuid(), '{id}', '{project}', now() - interval '40 days', now() - interval '39 days' - interval '23 hours', 'dns', 2);"
        ))
        .await;
    let stats = stack
        .call(Method::GET, &stack.path(&format!("/{id}/stats")), None)
        .await
        .expect(200, "stats");
    assert_eq!(stats["monitor_id"], json!(id));
    // (window, checks, ok, uptime, p50, p95, p99, incidents, downtime)
    let expected = [
        ("24h", 4, 2, 50.0, 200.0, 290.0, 298.0, 1, 1800),
        ("7d", 6, 4, 400.0 / 6.0, 300.0, 480.0, 496.0, 2, 5400),
        ("30d", 8, 5, 62.5, 350.0, 575.0, 595.0, 3, 12600),
    ];
    for (name, checks, ok, uptime, p50, p95, p99, incidents, downtime) in expected {
        let window = &stats["windows"][name];
        assert_eq!(
            (&window["checks"], &window["ok_checks"]),
            (&json!(checks), &json!(ok)),
            "{name}: {window}"
        );
        close(&window["uptime_pct"], uptime, name);
        close(&window["latency_ms"]["p50"], p50, name);
        close(&window["latency_ms"]["p95"], p95, name);
        close(&window["latency_ms"]["p99"], p99, name);
        assert_eq!(
            (&window["incidents"], &window["downtime_s"]),
            (&json!(incidents), &json!(downtime)),
            "{name}: {window}"
        );
    }
    let recent = stats["recent_incidents"].as_array().expect("recent");
    let classes: Vec<&str> = recent
        .iter()
        .map(|incident| incident["error_class"].as_str().expect("class"))
        .collect();
    assert_eq!(classes, vec!["status", "timeout", "connect", "dns"]);
    assert_eq!(recent[0]["duration_s"], 1800);

    // Incidents list, paged newest first.
    let page = stack
        .call(Method::GET, &stack.path(&format!("/{id}/incidents?limit=3")), None)
        .await
        .expect(200, "incidents");
    assert_eq!(page["data"].as_array().expect("data").len(), 3);
    let cursor = page["next_cursor"].as_str().expect("more");
    let rest = stack
        .call(
            Method::GET,
            &stack.path(&format!("/{id}/incidents?limit=3&cursor={cursor}")),
            None,
        )
        .await
        .expect(200, "incidents 2");
    assert_eq!(rest["data"][0]["error_class"], "dns");
    assert_eq!(rest["next_cursor"], Value::Null);

    // A monitor without checks: no uptime, no percentiles, zero counts.
    let empty = stack.monitor("empty", &target.url("")).await;
    let stats = stack
        .call(Method::GET, &stack.path(&format!("/{empty}/stats")), None)
        .await
        .expect(200, "empty stats");
    let day = &stats["windows"]["24h"];
    assert_eq!(
        (
            &day["checks"],
            &day["uptime_pct"],
            &day["latency_ms"]["p50"],
            &day["downtime_s"]
        ),
        (&json!(0), &Value::Null, &Value::Null, &json!(0)),
        "{day}"
    );
}
