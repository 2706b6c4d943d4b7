//! Helpers shared by the worker's integration tests: envelopes to produce, a worker
//! environment with small batches, and exact-count checks on the test database.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use pulse_shared::envelope::EventEnvelope;
use pulse_shared::event::Event;
use pulse_testkit::{PulseEnv, TestDb, TestKafka};
use serde_json::json;
use uuid::Uuid;

/// Generous bound for a worker to store everything (debug build, 2 cores, tests in parallel).
pub const COMPLETE: Duration = Duration::from_secs(180);

/// A topic prefix of the test's own on the shared Apache Kafka broker. Tests that kill or
/// restart the broker start one of their own ([`pulse_testkit::TestBroker`]) instead.
pub async fn shared_kafka() -> TestKafka {
    TestKafka::shared().await
}

/// `n` events for `projects` projects round-robin (so keys spread over every partition).
pub fn envelopes(n: usize, projects: usize) -> Vec<EventEnvelope> {
    let project_ids: Vec<Uuid> = (0..projects).map(|_| Uuid::now_v7()).collect();
    (0..n)
        .map(|i| envelope(project_ids[i % projects], i, Utc::now()))
        .collect()
}

pub fn envelope(project_id: Uuid, i: usize, timestamp: DateTime<Utc>) -> EventEnvelope {
    let event = Event {
        id: Uuid::now_v7(),
        timestamp,
        event_type: format!("type-{}", i % 7),
        source: Some("worker-test".into()),
        user_id: Some(format!("user-{}", i % 101)),
        session_id: (i % 3 == 0).then(|| format!("session-{}", i % 13)),
        duration_ms: (i % 2 == 0).then_some(i as i64),
        priority: None,
        status: Some("ok".into()),
        tags: vec!["load".into(), format!("n{}", i % 10)],
        data: json!({"i": i, "nested": {"ok": true}}),
        metadata: json!({}),
    };
    EventEnvelope::new(project_id, Utc::now(), event)
}

/// The worker's environment for a test: small batches so a kill lands mid-stream, quick
/// retries so fault tests finish promptly.
pub fn worker_env(db: &TestDb, kafka: &TestKafka) -> PulseEnv {
    // A group of the test's own: on the shared broker every test's workers would otherwise
    // join one `pulse-persist` group and rebalance each other.
    PulseEnv::new(db, kafka)
        .set("PULSE_WORKER_GROUP", &format!("{}persist", kafka.prefix))
        .set("PULSE_WORKER_BATCH_SIZE", "200")
        .set("PULSE_WORKER_BATCH_WAIT_MS", "20")
        .set("PULSE_WORKER_RETRY_MAX_MS", "1000")
        .set("PULSE_DATABASE_POOL_TIMEOUT_MS", "2000")
}

/// `(rows in events, distinct ids in events, rows in event_ids)` of the whole database.
pub async fn counts(db: &TestDb) -> (i64, i64, i64) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT id) FROM events), \
             (SELECT count(*) FROM event_ids)",
            &[],
        )
        .await
        .expect("counts");
    (row.get(0), row.get(1), row.get(2))
}

/// Rows in `events`, or -1 if the database could not be asked.
pub async fn stored(db: &TestDb) -> i64 {
    let client = db.client().await;
    client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or(-1)
}

/// Waits until at least `at_least` events are stored; returns the count then (or at timeout).
pub async fn wait_stored(db: &TestDb, at_least: i64, timeout: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let count = stored(db).await;
        if count >= at_least || tokio::time::Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts every one of `envelopes` is stored exactly once and nothing else is.
pub async fn assert_exactly_once(db: &TestDb, envelopes: &[EventEnvelope]) {
    let n = envelopes.len() as i64;
    let (rows, distinct, ids) = counts(db).await;
    assert_eq!(
        (rows, distinct, ids),
        (n, n, n),
        "events rows, distinct ids, event_ids rows"
    );
    let client = db.client().await;
    let expected: Vec<Uuid> = envelopes.iter().map(|e| e.event.id).collect();
    let missing: i64 = client
        .query_one(
            "SELECT count(*) FROM unnest($1::uuid[]) AS wanted(id) WHERE NOT EXISTS \
             (SELECT 1 FROM events WHERE events.id = wanted.id)",
            &[&expected],
        )
        .await
        .expect("missing ids")
        .get(0);
    assert_eq!(missing, 0, "ids produced but not stored");
}
