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
    // away; the broker comes back (empty: memory storage) during the second attempt and the api
    // creates its topics there.
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
