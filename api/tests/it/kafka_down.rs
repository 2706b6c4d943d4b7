//! Promise 1 when Kafka is gone: with the broker stopped, every ingest request answers 503
//! with Retry-After within a bounded time (produce timeout 2 s here), never a 2xx.

use std::time::{Duration, Instant};

use pulse_testkit::{TestBroker, TestDb, TestKafka};
use reqwest::StatusCode;
use serde_json::json;

use crate::{expect_accepted, expect_error, Stack};

/// Far above the 2 s produce timeout: the bound proves "never a hang", not speed.
const ANSWER_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_with_retry_after_and_never_2xx() {
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let db = TestDb::new().await;
    let stack = Stack::start_on(db, kafka, &[("PULSE_KAFKA_PRODUCE_TIMEOUT_MS", "2000")]).await;
    expect_accepted(stack.post_json("/v1/events", &json!({"event_type": "before"})).await).await;

    broker.stop().await;

    let mut requests = Vec::new();
    for i in 0..12 {
        let stack = &stack;
        requests.push(async move {
            let started = Instant::now();
            let response = if i % 2 == 0 {
                stack
                    .post_json("/v1/events", &json!({"event_type": format!("down_{i}")}))
                    .await
            } else {
                let events: Vec<_> = (0..50)
                    .map(|j| json!({"event_type": format!("down_{i}_{j}")}))
                    .collect();
                stack.post_json("/v1/events/batch", &json!({"events": events})).await
            };
            let elapsed = started.elapsed();
            assert!(!response.status().is_success(), "a 2xx while the broker is down");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "KAFKA_UNAVAILABLE").await;
            assert!(retry_after.is_some_and(|secs| secs >= 1), "Retry-After in seconds");
            assert!(elapsed < ANSWER_BOUND, "answered after {elapsed:?}");
        });
    }
    futures::future::join_all(requests).await;
    assert!(stack.api.metric("pulse_produce_failures_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_started_before_its_broker_waits_for_it_then_serves() {
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let db = TestDb::new().await;
    broker.stop().await;

    // The api retries topic creation (attempts of 10 s, for up to 60 s) while the broker is
    // away; the broker comes back during the second attempt and the api finds its topics there.
    let start_api = Stack::start_on(db, kafka, &[]);
    let restart_broker = async {
        tokio::time::sleep(Duration::from_secs(12)).await;
        broker.start_again().await;
    };
    let (stack, ()) = tokio::join!(start_api, restart_broker);
    expect_accepted(
        stack
            .post_json("/v1/events", &json!({"event_type": "after_wait"}))
            .await,
    )
    .await;
    assert!(
        stack.api.logs().contains("Kafka not ready, retrying"),
        "{}",
        stack.api.logs()
    );
}

/// Promise 1 when the producer's local queue is full: a batch larger than the queue, with no
/// broker to drain it, waits for room only until the produce timeout, then answers 503 with
/// Retry-After. A queue-full loop without that deadline would hang here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_local_queue_means_503_in_bounded_time_not_a_hang() {
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let db = TestDb::new().await;
    let stack = Stack::start_on(
        db,
        kafka,
        &[
            ("PULSE_KAFKA_PRODUCE_TIMEOUT_MS", "2000"),
            ("PULSE_KAFKA_QUEUE_MAX_MESSAGES", "10"),
        ],
    )
    .await;
    expect_accepted(stack.post_json("/v1/events", &json!({"event_type": "before"})).await).await;

    broker.stop().await;

    let events: Vec<_> = (0..50).map(|j| json!({"event_type": format!("queued_{j}")})).collect();
    let started = Instant::now();
    let response = stack.post_json("/v1/events/batch", &json!({"events": events})).await;
    let elapsed = started.elapsed();
    assert!(response.headers().contains_key("retry-after"), "Retry-After on the 503");
    expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "KAFKA_UNAVAILABLE").await;
    assert!(elapsed < ANSWER_BOUND, "answered after {elapsed:?}");
    assert!(
        stack
            .api
            .metric("pulse_produce_failures_total{kind=\"timed_out\"}")
            .await
            >= 40.0,
        "the events that never got room in the queue count as timed out"
    );
}
