//! Promises 1 and 2 through broker faults on real Apache Kafka, with the api and a worker as
//! real processes: a single broker SIGKILLed and restarted with an event in flight, and a
//! three-broker KRaft cluster losing one broker (no effect) and then two (503, never a 2xx).

use std::collections::HashSet;
use std::time::Duration;

use pulse_testkit::{PulseProcess, TestBroker, TestCluster, TestDb, TestKafka};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{expect_accepted, expect_error, Stack};

/// Generous bound for the pipeline to come back or to store everything (debug builds, 2 cores,
/// tests in parallel). A liveness bound, not a speed claim.
const RECOVER: Duration = Duration::from_secs(120);

/// How many rows of `events` hold `id`.
async fn rows_with_id(db: &TestDb, id: Uuid) -> i64 {
    let client = db.client().await;
    client
        .query_one("SELECT count(*) FROM events WHERE id = $1", &[&id])
        .await
        .expect("count by id")
        .get(0)
}

/// Posts `body` to `/v1/events` until it answers 202 or `RECOVER` passes; the status of every
/// answer before the 202, in order.
async fn post_until_accepted(stack: &Stack, body: &Value) -> Vec<StatusCode> {
    let deadline = tokio::time::Instant::now() + RECOVER;
    let mut before = Vec::new();
    loop {
        let response = stack.post_json("/v1/events", body).await;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return before;
        }
        assert!(!status.is_success(), "{status}: a 2xx other than 202 from /v1/events");
        before.push(status);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 202 within {RECOVER:?} after the broker came back: {before:?}\n{}",
            stack.api.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The broker is SIGKILLed, an event is sent while it is gone (librdkafka holds it and retries
/// in flight until the produce timeout), the broker comes back: the api answered 503 while it
/// was down, answers 202 again within seconds, the retried event (same id) is stored once, and
/// the worker resumes with everything that follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sigkilled_with_an_event_in_flight_then_restarted_recovers_and_stores_once() {
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let db = TestDb::new().await;
    let stack = Stack::start_on(db, kafka, &[("PULSE_KAFKA_PRODUCE_TIMEOUT_MS", "3000")]).await;
    let worker = PulseProcess::worker(&stack.env).await;
    let before = Uuid::now_v7();
    expect_accepted(
        stack
            .post_json("/v1/events", &json!({"id": before, "event_type": "before"}))
            .await,
    )
    .await;

    broker.stop().await;

    let in_flight = Uuid::now_v7();
    let event = json!({"id": in_flight, "event_type": "in_flight"});
    let response = stack.post_json("/v1/events", &event).await;
    expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "KAFKA_UNAVAILABLE").await;

    broker.start_again().await;
    // A producer retrying the same event, as a client holding a 503 should.
    let refused = post_until_accepted(&stack, &event).await;
    assert!(
        refused.iter().all(|status| *status == StatusCode::SERVICE_UNAVAILABLE),
        "only 503 while the broker came back: {refused:?}"
    );

    let after = Uuid::now_v7();
    expect_accepted(
        stack
            .post_json("/v1/events", &json!({"id": after, "event_type": "after"}))
            .await,
    )
    .await;
    let stored = pulse_testkit::eventually(RECOVER, || async {
        (rows_with_id(&stack.db, after).await == 1).then_some(())
    })
    .await;
    assert!(stored.is_some(), "the worker did not resume:\n{}", worker.logs());
    for id in [before, in_flight, after] {
        assert_eq!(rows_with_id(&stack.db, id).await, 1, "event {id} stored once");
    }
}

/// What a load loop saw: ids Kafka acknowledged (from the 202 bodies) and every status.
#[derive(Default)]
struct Outcomes {
    acked: Vec<Uuid>,
    statuses: Vec<StatusCode>,
}

impl Outcomes {
    fn successes(&self) -> usize {
        self.statuses.iter().filter(|status| status.is_success()).count()
    }
}

/// Sends batches of 20 events for `keys` round-robin for `duration`, one request at a time.
async fn load(stack: &Stack, keys: &[String], duration: Duration) -> Outcomes {
    let mut outcomes = Outcomes::default();
    let deadline = tokio::time::Instant::now() + duration;
    let mut round = 0usize;
    while tokio::time::Instant::now() < deadline {
        let key = &keys[round % keys.len()];
        round += 1;
        let events: Vec<Value> = (0..20)
            .map(|i| json!({"event_type": "cluster_load", "data": {"round": round, "i": i}}))
            .collect();
        let response = stack
            .http
            .post(stack.url("/v1/events/batch"))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        outcomes.statuses.push(status);
        if status == StatusCode::ACCEPTED {
            let body: Value = response.json().await.expect("json");
            outcomes.acked.extend(
                body["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|id| id.as_str().and_then(|id| id.parse::<Uuid>().ok()).expect("uuid")),
            );
        }
    }
    outcomes
}

/// Three brokers, topics with replication factor 3 and `min.insync.replicas=2`, load all along:
/// one broker SIGKILLed → every request still 202; a second one killed → 503, never a 2xx;
/// both back → 202 again; every acknowledged event stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_broker_cluster_keeps_acks_through_one_loss_and_refuses_at_two() {
    // Fence a dead broker (and drop it from the ISRs) in 3 s rather than 9 s, so leadership
    // moves well within the produce timeout.
    let mut cluster = TestCluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
            "replica.lag.time.max.ms=5000",
        ],
    )
    .await;
    let kafka = TestKafka::on_cluster(&cluster).await;
    let db = TestDb::new().await;
    let stack = Stack::start_on(
        db,
        kafka,
        &[
            ("PULSE_KAFKA_PRODUCE_TIMEOUT_MS", "15000"),
            ("PULSE_KAFKA_REPLICATION_FACTOR", "3"),
        ],
    )
    .await;
    // Three projects, so the load spreads over several partitions and their leaders.
    let mut keys = vec![stack.project.api_key.clone()];
    for _ in 0..2 {
        keys.push(stack.db.create_project().await.api_key);
    }
    let worker = PulseProcess::worker(&stack.env).await;

    let healthy = load(&stack, &keys, Duration::from_secs(3)).await;
    assert_eq!(
        healthy.successes(),
        healthy.statuses.len(),
        "all 202 with three brokers"
    );

    cluster.stop(0).await;
    let one_down = load(&stack, &keys, Duration::from_secs(10)).await;
    assert!(!one_down.statuses.is_empty());
    assert!(
        one_down.statuses.iter().all(|status| *status == StatusCode::ACCEPTED),
        "one broker of three down must not refuse anything: {:?}\n{}",
        one_down.statuses,
        stack.api.logs()
    );

    cluster.stop(1).await;
    let two_down = load(&stack, &keys, Duration::from_secs(20)).await;
    assert!(!two_down.statuses.is_empty());
    assert_eq!(two_down.successes(), 0, "a 2xx with one in-sync replica of three");
    assert!(
        two_down
            .statuses
            .iter()
            .all(|status| *status == StatusCode::SERVICE_UNAVAILABLE),
        "{:?}",
        two_down.statuses
    );

    cluster.start_again(0).await;
    cluster.start_again(1).await;
    let probe = json!({"event_type": "cluster_back"});
    post_until_accepted(&stack, &probe).await;
    let recovered = load(&stack, &keys, Duration::from_secs(3)).await;
    assert_eq!(
        recovered.successes(),
        recovered.statuses.len(),
        "all 202 with the brokers back"
    );

    let acked: Vec<Uuid> = [healthy, one_down, recovered]
        .into_iter()
        .flat_map(|outcomes| outcomes.acked)
        .collect();
    let unique: HashSet<Uuid> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "the api handed out an id twice");
    let client = stack.db.client().await;
    let stored = pulse_testkit::eventually(RECOVER, || async {
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT id) FROM events WHERE id = ANY($1)",
                &[&acked],
            )
            .await
            .expect("count acked");
        let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
        (rows == acked.len() as i64).then_some(distinct)
    })
    .await;
    assert_eq!(
        stored,
        Some(acked.len() as i64),
        "every acknowledged event stored exactly once\n{}",
        worker.logs()
    );
    let duplicates: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) AS twice",
            &[],
        )
        .await
        .expect("duplicates")
        .get(0);
    assert_eq!(duplicates, 0, "no event stored twice");
}
