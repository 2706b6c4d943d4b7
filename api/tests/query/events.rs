//! `GET /v1/events` and `GET /v1/events/{id}`: what comes back, each filter, who may read.

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids, ReadStack};

/// 24 events over the last 24 minutes (newest first by construction: index 0 is the newest),
/// with a spread of types, sources, users, sessions, priorities, statuses and tags.
fn sample() -> Vec<Value> {
    let now = Utc::now();
    (0..24)
        .map(|i: i64| {
            let mut tags = vec!["all".to_owned()];
            if i % 2 == 0 {
                tags.push("even".into());
            }
            if i % 3 == 0 {
                tags.push("third".into());
            }
            json!({
                "id": Uuid::now_v7(),
                "timestamp": (now - ChronoDuration::minutes(i)).to_rfc3339_opts(SecondsFormat::Millis, true),
                "event_type": if i % 4 == 0 { "purchase" } else { "page_view" },
                "source": if i % 2 == 0 { "web" } else { "ios" },
                "user_id": format!("u{}", i % 5),
                "session_id": format!("s{}", i % 3),
                "priority": i * 10,
                "status": if i % 6 == 0 { "error" } else { "ok" },
                "duration_ms": i * 100,
                "tags": tags,
                "data": {"i": i},
            })
        })
        .collect()
}

/// A filter as a query string and the same rule over the sample.
type Case = (&'static str, Box<dyn Fn(&Value) -> bool>);

/// The sample's ids for which `keep` holds, newest first.
fn expected(sample: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    sample
        .iter()
        .filter(|event| keep(event))
        .map(|event| event["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_back_filtered_newest_first_and_only_to_their_readers() {
    let read = ReadStack::start(&[]).await;
    let sample = sample();
    let old = json!({"id": Uuid::now_v7(), "event_type": "old", "timestamp": (Utc::now() - ChronoDuration::days(2)).to_rfc3339()});
    read.ingest(&sample).await;
    read.ingest(std::slice::from_ref(&old)).await;
    read.stored(25).await;

    // The default range is the last 24 hours: the old event is not in it.
    let page = read.get("/v1/events", &read.key).await.expect(200, "list");
    assert_eq!(ids(&page), expected(&sample, |_| true));
    assert_eq!(page["next_cursor"], Value::Null);
    let first = &page["data"][0];
    for field in [
        "event_type",
        "source",
        "user_id",
        "session_id",
        "priority",
        "status",
        "duration_ms",
        "tags",
        "data",
    ] {
        assert_eq!(first[field], sample[0][field], "{field}");
    }
    assert!(
        first["received_at"].is_string() && first["metadata"] == json!({}),
        "{first}"
    );

    // Each filter, alone and together, against the same rule applied to the sample.
    let cases: Vec<Case> = vec![
        ("event_type=purchase", Box::new(|e| e["event_type"] == "purchase")),
        ("source=ios", Box::new(|e| e["source"] == "ios")),
        ("user_id=u3", Box::new(|e| e["user_id"] == "u3")),
        ("session_id=s1", Box::new(|e| e["session_id"] == "s1")),
        ("status=error", Box::new(|e| e["status"] == "error")),
        ("min_priority=150", Box::new(|e| e["priority"].as_i64() >= Some(150))),
        (
            "tag=even&tag=third",
            Box::new(|e| {
                let tags = e["tags"].as_array().expect("tags");
                tags.contains(&json!("even")) && tags.contains(&json!("third"))
            }),
        ),
        (
            "source=web&status=ok&min_priority=40",
            Box::new(|e| e["source"] == "web" && e["status"] == "ok" && e["priority"].as_i64() >= Some(40)),
        ),
    ];
    for (query, keep) in cases {
        let page = read
            .get(&format!("/v1/events?{query}"), &read.key)
            .await
            .expect(200, query);
        let want = expected(&sample, keep);
        assert!(!want.is_empty(), "{query} selects something");
        assert_eq!(ids(&page), want, "{query}");
    }
    let start = (Utc::now() - ChronoDuration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let page = read
        .get(&format!("/v1/events?event_type=old&start={start}"), &read.key)
        .await
        .expect(200, "explicit range");
    assert_eq!(ids(&page), [old["id"].as_str().expect("id")]);

    // One event, the same object as in the list.
    let id = first["id"].as_str().expect("id");
    let one = read
        .get(&format!("/v1/events/{id}"), &read.key)
        .await
        .expect(200, "one");
    assert_eq!(&one, first);
    read.get(&format!("/v1/events/{}", Uuid::now_v7()), &read.key)
        .await
        .expect(404, "unknown id");
    read.get("/v1/events/not-a-uuid", &read.key).await.expect(400, "bad id");

    // X-Api-Key works as well as Bearer.
    let response = read
        .stack
        .http
        .get(format!("{}/v1/events?limit=1", read.stack.api.base_url()))
        .header("x-api-key", &read.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);

    // Who may read: not an ingest-only key, not nobody.
    let denied = read.get("/v1/events", &read.ingest_only).await;
    assert_eq!(
        (denied.status.as_u16(), denied.code()),
        (403, "FORBIDDEN"),
        "{}",
        denied.body
    );
    let anonymous = read.stack.call(reqwest::Method::GET, "/v1/events", None, None).await;
    assert_eq!(anonymous.status.as_u16(), 401);

    // A member's access token, with project_id.
    let as_member = read
        .get(
            &format!("/v1/events?project_id={}&event_type=purchase", read.project),
            &read.user.access,
        )
        .await
        .expect(200, "member");
    assert_eq!(ids(&as_member), expected(&sample, |e| e["event_type"] == "purchase"));
    read.get(
        &format!("/v1/events/{id}?project_id={}", read.project),
        &read.user.access,
    )
    .await
    .expect(200, "member reads one");
    let missing = read.get("/v1/events", &read.user.access).await;
    assert_eq!(missing.status.as_u16(), 400);
    assert_eq!(
        missing.body["error"]["details"]["parameter"], "project_id",
        "{}",
        missing.body
    );

    // Another tenant sees nothing of it, by token or by its own key.
    let other = read
        .stack
        .register(&format!("other-{}@example.com", Uuid::new_v4()))
        .await;
    read.get(&format!("/v1/events?project_id={}", read.project), &other.access)
        .await
        .expect(404, "other tenant's token");
    let other_project = read.stack.project(&other, json!({})).await;
    let (_, other_key) = read
        .stack
        .key(&other, other_project, json!({"name": "r", "scopes": ["read"]}))
        .await;
    let theirs = read.get("/v1/events", &other_key).await.expect(200, "other key");
    assert_eq!(theirs["data"], json!([]));
    read.get(&format!("/v1/events/{id}"), &other_key)
        .await
        .expect(404, "other key, our id");
    read.get(&format!("/v1/events?project_id={}", read.project), &other_key)
        .await
        .expect(404, "other key naming our project");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_a_400_naming_them() {
    let read = ReadStack::start(&[("PULSE_QUERY_MAX_RAW_DAYS", "3")]).await;
    let long_ago = (Utc::now() - ChronoDuration::days(4)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let future = (Utc::now() + ChronoDuration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    for (query, parameter) in [
        ("start=yesterday".to_owned(), "start"),
        ("end=2026-02-30T00:00:00Z".to_owned(), "end"),
        (format!("start={long_ago}"), "start"),
        (format!("start={future}"), "start"),
        ("limit=0".to_owned(), "limit"),
        ("limit=1001".to_owned(), "limit"),
        ("min_priority=-1".to_owned(), "min_priority"),
        ("cursor=abc".to_owned(), "cursor"),
        ("colour=red".to_owned(), "query"),
        ("status=a&status=b".to_owned(), "status"),
    ] {
        let answer = read.get(&format!("/v1/events?{query}"), &read.key).await;
        assert_eq!(answer.status.as_u16(), 400, "{query}: {}", answer.body);
        assert_eq!(answer.code(), "INVALID_PARAMETER", "{query}");
        assert_eq!(
            answer.body["error"]["details"]["parameter"], parameter,
            "{query}: {}",
            answer.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_have_their_own_rate_limit() {
    let read = ReadStack::start(&[("PULSE_READ_RATE_LIMIT_PER_SEC", "2")]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let answer = read.get("/v1/events", &read.key).await;
        if answer.status.as_u16() == 429 {
            assert!(answer.headers.contains_key("retry-after"), "429 says when to retry");
        }
        statuses.push(answer.status.as_u16());
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Ingest is limited apart: the same key still ingests.
    read.stack
        .post("/v1/events", Some(&read.key), json!({"event_type": "x"}))
        .await
        .expect(202, "ingest is not the read limit");
}
