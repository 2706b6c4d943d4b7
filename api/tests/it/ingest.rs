//! The happy paths: events go to Kafka as envelopes keyed by project, and the worker stores
//! them; the same id twice is stored once; a mixed batch stores only its good events.

use std::time::Duration;

use pulse_shared::envelope::{EventEnvelope, ENVELOPE_VERSION, VERSION_HEADER};
use pulse_testkit::kafka::header;
use pulse_testkit::PulseProcess;
use rdkafka::Message;
use serde_json::json;
use uuid::Uuid;

use crate::{expect_accepted, Stack};

const STORE_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_kafka_as_envelopes_and_the_worker_stores_them() {
    let stack = Stack::start(&[]).await;
    let worker = PulseProcess::worker(&stack.env).await;
    let own_id = Uuid::now_v7();

    let response = stack
        .http
        .post(stack.url("/v1/events"))
        .header("x-api-key", &stack.project.api_key)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", "test-request-1")
        .json(&json!({
            "id": own_id,
            "event_type": "signup",
            "timestamp": "2026-01-31T14:00:00+02:00",
            "user_id": "u1",
            "tags": ["a"],
            "data": {"plan": "pro"},
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "test-request-1");
    let single = expect_accepted(response).await;
    assert_eq!(single["id"], own_id.to_string());

    let batch = expect_accepted(
        stack
            .post_json(
                "/v1/events/batch",
                &json!({"events": [
                    {"event_type": "page_view"},
                    {"event_type": "click", "duration_ms": 12},
                    {"event_type": "purchase", "data": {"amount": 9.5}},
                ]}),
            )
            .await,
    )
    .await;
    assert_eq!(batch["accepted"], 3);
    assert_eq!(batch["ids"].as_array().expect("ids").len(), 3);
    assert_eq!(batch["rejected"], json!([]));

    let messages = stack
        .kafka
        .consume(&stack.kafka.topics().events, 4, Duration::from_secs(30))
        .await;
    assert_eq!(messages.len(), 4);
    let project_key = stack.project.id.to_string();
    for message in &messages {
        assert_eq!(message.key(), Some(project_key.as_bytes()));
        assert_eq!(header(message, VERSION_HEADER), Some(ENVELOPE_VERSION.to_string()));
        let envelope = EventEnvelope::decode(message.payload()).expect("envelope");
        assert_eq!(envelope.project_id, stack.project.id);
    }
    let signup = messages
        .iter()
        .map(|message| EventEnvelope::decode(message.payload()).expect("envelope"))
        .find(|envelope| envelope.event.id == own_id)
        .expect("the single event");
    assert_eq!(signup.event.timestamp.to_rfc3339(), "2026-01-31T12:00:00+00:00");
    assert_eq!(signup.event.data, json!({"plan": "pro"}));

    assert_eq!(
        stack.db.wait_for_events(stack.project.id, 4, STORE_TIMEOUT).await,
        4,
        "{}",
        worker.logs()
    );
    assert!(stack.api.metric("pulse_events_accepted_total").await >= 4.0);
    assert!(stack.api.metric("pulse_events_produced_total").await >= 4.0);
    let metrics = stack.http.get(stack.url("/metrics")).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    for family in [
        "pulse_http_requests_total",
        "pulse_http_request_duration_seconds",
        "pulse_events_accepted_total",
        "pulse_events_rejected_total",
        "pulse_events_produced_total",
        "pulse_produce_failures_total",
        "pulse_produce_duration_seconds",
        "pulse_ingest_batch_size",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing from /metrics"
        );
    }
    assert!(
        metrics.contains(r#"pulse_http_requests_total{method="POST",route="/v1/events/batch",status="202"}"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_sent_twice_is_stored_once() {
    let stack = Stack::start(&[]).await;
    let worker = PulseProcess::worker(&stack.env).await;
    let id = Uuid::now_v7();
    let event = json!({"id": id, "event_type": "retry_me", "timestamp": "2026-02-01T00:00:00Z"});

    expect_accepted(stack.post_json("/v1/events", &event).await).await;
    expect_accepted(stack.post_json("/v1/events", &event).await).await;
    expect_accepted(
        stack
            .post_json("/v1/events/batch", &json!({"events": [event, event]}))
            .await,
    )
    .await;
    // Same key, same partition: once this marker is stored, every copy before it was handled.
    let marker = json!({"id": Uuid::now_v7(), "event_type": "marker"});
    expect_accepted(stack.post_json("/v1/events", &marker).await).await;

    assert_eq!(
        stack.db.wait_for_events(stack.project.id, 2, STORE_TIMEOUT).await,
        2,
        "{}",
        worker.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.db.count_events(stack.project.id).await, 2);
    assert_eq!(stack.db.count_distinct_events(stack.project.id).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_accepts_the_good_events_and_reports_each_bad_one() {
    let stack = Stack::start(&[]).await;
    let worker = PulseProcess::worker(&stack.env).await;
    let body = json!({"events": [
        {"event_type": "good_0"},
        {"user_id": "no type"},
        {"event_type": "good_2", "tags": ["x"]},
        {"event_type": "bad_3", "duration_ms": -5},
        {"event_type": "bad_4", "colour": "red"},
        {"event_type": "bad_5", "timestamp": "last tuesday"},
        "not an object",
        {"event_type": "good_7", "metadata": {"k": "v"}},
    ]});
    let answer = expect_accepted(stack.post_json("/v1/events/batch", &body).await).await;
    assert_eq!(answer["accepted"], 3);
    assert_eq!(answer["ids"].as_array().expect("ids").len(), 3);
    let rejected = answer["rejected"].as_array().expect("rejected");
    let summary: Vec<(u64, &str, Option<&str>)> = rejected
        .iter()
        .map(|r| {
            assert_eq!(r["code"], "INVALID_EVENT");
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()));
            (
                r["index"].as_u64().expect("index"),
                r["code"].as_str().expect("code"),
                r["field"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "INVALID_EVENT", Some("event_type")),
            (3, "INVALID_EVENT", Some("duration_ms")),
            (4, "INVALID_EVENT", Some("colour")),
            (5, "INVALID_EVENT", Some("timestamp")),
            (6, "INVALID_EVENT", None),
        ]
    );

    assert_eq!(
        stack.db.wait_for_events(stack.project.id, 3, STORE_TIMEOUT).await,
        3,
        "{}",
        worker.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = stack.db.client().await;
    let types: Vec<String> = client
        .query(
            "SELECT event_type FROM events WHERE project_id = $1 ORDER BY event_type",
            &[&stack.project.id],
        )
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(types, vec!["good_0", "good_2", "good_7"]);
}
