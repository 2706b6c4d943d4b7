//! `GET /v1/events/analytics` against what SQL over the raw rows says: grouped by the rollups'
//! dimensions (counts and the dominant status exactly, distinct counts and quantiles within the
//! documented bounds), grouped by `data.KEY` and `user_id` from the raw events (exactly),
//! `having`, `order_by` and `limit`, and the 400s and the tenant boundary.

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::ReadStack;

/// Distinct counts and quantiles from the rollups: the bounds of `GET /v1/events/aggregated`.
const DISTINCT_BOUND: f64 = 0.02;
const QUANTILE_BOUND: f64 = 0.01;

/// 4,000 events over two hours: three event types, three sources (and none), statuses skewed
/// per event type, 800 users, `data.plan` a string or absent and `data.tier` a number.
fn data_set(first_hour: DateTime<Utc>) -> Vec<Value> {
    let mut seed: u64 = 0xa11a;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let types = ["page_view", "purchase", "signup"];
    let sources = [Some("web"), Some("ios"), Some("android"), None];
    let plans = [Some("free"), Some("pro"), None];
    (0..4_000)
        .map(|i| {
            let at = first_hour + ChronoDuration::milliseconds((next() % (2 * 3_600_000)) as i64);
            let event_type = types[i % 3];
            // page_view mostly ok, purchase mostly pending, signup mostly error.
            let status = match (i % 3, next() % 10) {
                (0, 0..=7) | (1, 0..=1) | (2, 0..=2) => "ok",
                (1, _) => "pending",
                _ => "error",
            };
            let mut data = json!({"tier": (i % 4) as i64});
            if let Some(plan) = plans[(i / 3) % 3] {
                data["plan"] = json!(plan);
            }
            json!({
                "id": Uuid::new_v4(),
                "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "event_type": event_type,
                "source": sources[(next() % 4) as usize],
                "status": status,
                "user_id": format!("user-{}", next() % 800),
                "session_id": format!("session-{}", next() % 500),
                "duration_ms": (i % 5 != 0).then(|| 1 + next() % 3_000),
                "data": data,
            })
        })
        .collect()
}

fn close(actual: f64, expected: f64, bound: f64) -> bool {
    if expected == 0.0 {
        return actual == 0.0;
    }
    ((actual - expected) / expected).abs() <= bound
}

fn groups(answer: &Value) -> &Vec<Value> {
    answer["groups"].as_array().expect("groups")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_agree_with_sql_over_the_raw_rows() {
    let read = ReadStack::start(&[]).await;
    let first_hour = (Utc::now() - ChronoDuration::hours(3))
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour");
    let events = data_set(first_hour);
    for chunk in events.chunks(1_000) {
        read.ingest(chunk).await;
    }
    read.stored(4_000).await;
    let start = first_hour.to_rfc3339_opts(SecondsFormat::Secs, true);
    let end = (first_hour + ChronoDuration::hours(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let range = format!("start={start}&end={end}");
    let client = read.stack.db.client().await;

    // From the rollups: by event type, every metric the rollups can answer.
    let by_type = read
        .get(
            &format!(
                "/v1/events/analytics?{range}&group_by=event_type&metrics=count,unique_users,unique_sessions,\
                 unique_sources,avg_duration,min_duration,max_duration,p50_duration,p95_duration,dominant_status"
            ),
            &read.key,
        )
        .await
        .expect(200, "by event type");
    assert_eq!(by_type["answered_from"], "rollups", "{by_type}");
    assert_eq!(by_type["truncated"], false);
    let raw = client
        .query(
            "SELECT event_type, count(*), count(DISTINCT user_id), count(DISTINCT session_id),
                    count(DISTINCT source), avg(duration_ms)::float8, min(duration_ms), max(duration_ms),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
                    mode() WITHIN GROUP (ORDER BY status)
             FROM events WHERE project_id = $1 GROUP BY 1 ORDER BY 2 DESC, 1",
            &[&read.project],
        )
        .await
        .expect("raw by type");
    assert_eq!(groups(&by_type).len(), raw.len(), "{by_type}");
    for (group, row) in groups(&by_type).iter().zip(&raw) {
        assert_eq!(
            group["key"],
            json!({"event_type": row.get::<_, String>(0)}),
            "order: -count"
        );
        assert_eq!(group["count"].as_i64(), Some(row.get::<_, i64>(1)), "{group}");
        assert_eq!(group["unique_sources"].as_i64(), Some(row.get::<_, i64>(4)), "{group}");
        assert_eq!(group["min_duration"].as_i64(), Some(row.get::<_, i64>(6)));
        assert_eq!(group["max_duration"].as_i64(), Some(row.get::<_, i64>(7)));
        assert_eq!(
            group["dominant_status"].as_str(),
            Some(row.get::<_, String>(10).as_str()),
            "{group}"
        );
        assert!(
            close(group["avg_duration"].as_f64().expect("avg"), row.get(5), 1e-9),
            "{group}"
        );
        for (field, column) in [("unique_users", 2), ("unique_sessions", 3)] {
            let exact = row.get::<_, i64>(column) as f64;
            assert!(
                close(group[field].as_f64().expect(field), exact, DISTINCT_BOUND),
                "{field}: {group} vs {exact}"
            );
        }
        for (field, column) in [("p50_duration", 8), ("p95_duration", 9)] {
            let exact: f64 = row.get(column);
            assert!(
                close(group[field].as_f64().expect(field), exact, QUANTILE_BOUND),
                "{field}: {group} vs {exact}"
            );
        }
    }

    // Two dimensions, `null` as its own group, `having`, ascending order and a limit.
    let pairs = read
        .get(
            &format!("/v1/events/analytics?{range}&group_by=source,status&having=count>=100&order_by=count&limit=3"),
            &read.key,
        )
        .await
        .expect(200, "by source and status");
    let raw = client
        .query(
            "SELECT source, status, count(*) FROM events WHERE project_id = $1
             GROUP BY 1, 2 HAVING count(*) >= 100 ORDER BY 3, 1 NULLS LAST, 2 NULLS LAST",
            &[&read.project],
        )
        .await
        .expect("raw by source and status");
    assert!(raw.len() > 3, "the data set has more than three such groups");
    assert_eq!(pairs["truncated"], true, "{pairs}");
    let expected: Vec<Value> = raw
        .iter()
        .take(3)
        .map(|row| {
            json!({"key": {"source": row.get::<_, Option<String>>(0), "status": row.get::<_, String>(1)},
                   "count": row.get::<_, i64>(2)})
        })
        .collect();
    assert_eq!(groups(&pairs), &expected, "{pairs}");
    let nulls = read
        .get(
            &format!("/v1/events/analytics?{range}&group_by=source&limit=10"),
            &read.key,
        )
        .await
        .expect(200, "by source");
    assert!(
        groups(&nulls)
            .iter()
            .any(|group| group["key"] == json!({"source": null})),
        "events without a source are a group: {nulls}"
    );

    // From the raw events: by a key of `data` and by user, exactly what SQL says.
    let by_plan = read
        .get(
            &format!(
                "/v1/events/analytics?{range}&group_by=data.plan,data.tier&metrics=count,unique_users,p90_duration"
            ),
            &read.key,
        )
        .await
        .expect(200, "by data keys");
    assert_eq!(by_plan["answered_from"], "raw_events", "{by_plan}");
    assert_eq!(by_plan["group_by"], json!(["data.plan", "data.tier"]));
    let raw = client
        .query(
            "SELECT json_build_object('data.plan', data->'plan', 'data.tier', data->'tier')::text,
                    count(*), count(DISTINCT user_id),
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms)
             FROM events WHERE project_id = $1 GROUP BY data->'plan', data->'tier'
             ORDER BY 2 DESC, data->'plan' NULLS LAST, data->'tier' NULLS LAST",
            &[&read.project],
        )
        .await
        .expect("raw by plan");
    assert_eq!(groups(&by_plan).len(), raw.len(), "{by_plan}");
    for (group, row) in groups(&by_plan).iter().zip(&raw) {
        let key: Value = serde_json::from_str(row.get::<_, &str>(0)).expect("key");
        assert_eq!(group["key"], key, "{group}");
        assert!(group["key"]["data.tier"].is_i64(), "a number stays a number: {group}");
        assert_eq!(group["count"].as_i64(), Some(row.get::<_, i64>(1)));
        assert_eq!(
            group["unique_users"].as_i64(),
            Some(row.get::<_, i64>(2)),
            "exact from raw rows"
        );
        assert_eq!(group["p90_duration"].as_f64(), Some(row.get::<_, f64>(3)));
    }
    assert!(
        groups(&by_plan).iter().any(|group| group["key"]["data.plan"].is_null()),
        "events without the key are a group"
    );
    let top_users = read
        .get(
            &format!(
                "/v1/events/analytics?{range}&group_by=user_id&metrics=count,dominant_status&limit=5&having=count>1"
            ),
            &read.key,
        )
        .await
        .expect(200, "by user");
    let raw = client
        .query(
            "SELECT user_id, count(*), mode() WITHIN GROUP (ORDER BY status) FROM events
             WHERE project_id = $1 GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC, 1 LIMIT 5",
            &[&read.project],
        )
        .await
        .expect("raw by user");
    let expected: Vec<Value> = raw
        .iter()
        .map(|row| {
            json!({"key": {"user_id": row.get::<_, String>(0)}, "count": row.get::<_, i64>(1),
                   "dominant_status": row.get::<_, String>(2)})
        })
        .collect();
    assert_eq!(groups(&top_users), &expected, "{top_users}");

    // Filters narrow both paths alike.
    let purchases = read
        .get(
            &format!("/v1/events/analytics?{range}&event_type=purchase&group_by=status"),
            &read.key,
        )
        .await
        .expect(200, "filtered");
    let total: i64 = groups(&purchases)
        .iter()
        .map(|g| g["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(
        total,
        events.iter().filter(|e| e["event_type"] == "purchase").count() as i64
    );
    let purchases_raw = read
        .get(
            &format!("/v1/events/analytics?{range}&event_type=purchase&group_by=status,data.plan"),
            &read.key,
        )
        .await
        .expect(200, "filtered raw");
    let total_raw: i64 = groups(&purchases_raw)
        .iter()
        .map(|g| g["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(total_raw, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_ranges_and_tenants() {
    let read = ReadStack::start(&[]).await;
    read.ingest(&[json!({"event_type": "page_view", "user_id": "u1", "data": {"plan": "pro"}})])
        .await;
    read.stored(1).await;
    let long_ago = (Utc::now() - ChronoDuration::days(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    for (query, parameter) in [
        ("group_by=colour", "group_by"),
        ("metrics=median", "metrics"),
        ("having=count>>1", "having"),
        ("order_by=dominant_status", "order_by"),
        ("limit=5000", "limit"),
        ("frobnicate=1", "query"),
        (&format!("group_by=user_id&start={long_ago}") as &str, "start"),
    ] {
        let answer = read.get(&format!("/v1/events/analytics?{query}"), &read.key).await;
        let body = answer.expect(400, query);
        assert_eq!(body["error"]["code"], "INVALID_PARAMETER", "{query}: {body}");
        assert_eq!(body["error"]["details"]["parameter"], parameter, "{query}: {body}");
    }
    // A month is fine from the rollups.
    read.get(&format!("/v1/events/analytics?start={long_ago}"), &read.key)
        .await
        .expect(200, "a month from rollups");
    // An ingest-only key is 403; the member's token needs the project; another tenant sees nothing.
    read.get("/v1/events/analytics", &read.ingest_only)
        .await
        .expect(403, "ingest-only key");
    let mine = read
        .get(
            &format!("/v1/events/analytics?project_id={}&group_by=data.plan", read.project),
            &read.user.access,
        )
        .await
        .expect(200, "member's token");
    assert_eq!(groups(&mine), &vec![json!({"key": {"data.plan": "pro"}, "count": 1})]);
    let other = read
        .stack
        .register(&format!("other-{}@example.com", Uuid::new_v4()))
        .await;
    read.get(
        &format!("/v1/events/analytics?project_id={}", read.project),
        &other.access,
    )
    .await
    .expect(404, "other tenant's token");
    let other_project = read.stack.project(&other, json!({})).await;
    let (_, other_key) = read
        .stack
        .key(&other, other_project, json!({"name": "r", "scopes": ["read"]}))
        .await;
    for group_by in ["event_type", "user_id"] {
        let theirs = read
            .get(&format!("/v1/events/analytics?group_by={group_by}"), &other_key)
            .await
            .expect(200, "other key");
        assert_eq!(groups(&theirs), &Vec::<Value>::new(), "{group_by}: {theirs}");
    }
}
