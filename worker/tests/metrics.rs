//! `pulse-worker metrics` against real Kafka and PostgreSQL: points stored once however often
//! they are delivered (the ids, the rollups and the latest rows alike, promises 2 and 3), and
//! undecodable messages dead-lettered while the partition keeps moving (promise 4).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use common::{worker_env, COMPLETE};
use pulse_shared::kafka::producer::{AckProducer, Outgoing};
use pulse_shared::metric::{MetricEnvelope, MetricPoint};
use pulse_testkit::kafka::header;
use pulse_testkit::{eventually, PulseProcess, TestDb, TestKafka};
use pulse_worker::persist::dead_letter::{REASON_HEADER, SOURCE_TOPIC_HEADER};
use uuid::Uuid;

/// (points, sum of rollup counts, rollup sum, latest rows) of a project.
async fn stored(db: &TestDb, project: Uuid) -> (i64, i64, f64, i64) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM metric_points WHERE project_id = $1),
                    (SELECT COALESCE(sum(count), 0)::int8 FROM metric_rollups WHERE project_id = $1),
                    (SELECT COALESCE(sum(sum), 0) FROM metric_rollups WHERE project_id = $1),
                    (SELECT count(*) FROM metric_latest WHERE project_id = $1)",
            &[&project],
        )
        .await
        .expect("counts");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// Sends every payload under `key` in one go and waits for every acknowledgement.
async fn send<'a>(producer: &AckProducer, topic: &str, key: &str, payloads: impl IntoIterator<Item = &'a Vec<u8>>) {
    let results = producer
        .send_all(payloads.into_iter().map(|payload| Outgoing {
            topic,
            key: key.as_bytes(),
            payload,
            headers: None,
            partition: None,
        }))
        .await;
    assert!(results.iter().all(Result::is_ok), "test produce acked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_points_are_stored_and_counted_once_and_poison_is_dead_lettered() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let topics = kafka.topics();
    let project = Uuid::now_v7();
    let key = project.to_string();
    let minute = (Utc::now() - TimeDelta::minutes(5))
        .duration_trunc(TimeDelta::minutes(1))
        .expect("minute");
    let envelopes: Vec<MetricEnvelope> = (0..300)
        .map(|i| {
            MetricEnvelope::new(
                project,
                Utc::now(),
                MetricPoint {
                    id: Uuid::now_v7(),
                    name: "worker.test".into(),
                    value: f64::from(i),
                    timestamp: minute + TimeDelta::milliseconds(i64::from(i) * 100),
                    labels: BTreeMap::from([("shard".to_owned(), (i % 3).to_string())]),
                },
            )
        })
        .collect();
    let payloads: Vec<Vec<u8>> = envelopes.iter().map(|e| e.encode().expect("encode")).collect();
    let producer = kafka.producer();
    // Every point twice in the stream (a producer retry), then poison.
    send(&producer, &topics.metrics, &key, payloads.iter().chain(&payloads)).await;
    let mut bad_name = serde_json::to_value(&envelopes[0]).expect("json");
    bad_name["point"]["name"] = "no spaces allowed".into();
    let poison = [b"{\"v\": 1".to_vec(), serde_json::to_vec(&bad_name).expect("json")];
    send(&producer, &topics.metrics, &key, &poison).await;

    let env = worker_env(&db, &kafka).set("PULSE_WORKER_METRICS_GROUP", &format!("{}metrics", kafka.prefix));
    let worker = PulseProcess::metrics_worker(&env).await;
    let expected_sum: f64 = (0..300).map(f64::from).sum();
    let done = eventually(COMPLETE, || async {
        (stored(&db, project).await == (300, 300, expected_sum, 3)).then_some(())
    })
    .await;
    assert!(done.is_some(), "{:?}\n{}", stored(&db, project).await, worker.logs());

    let dead = kafka.consume(&topics.metrics_dlq, 2, Duration::from_secs(60)).await;
    assert_eq!(dead.len(), 2, "dead letters");
    assert!(header(&dead[0], REASON_HEADER)
        .expect("reason")
        .contains("not a valid metric envelope"));
    assert!(header(&dead[1], REASON_HEADER).expect("reason").contains("name"));
    assert_eq!(
        header(&dead[1], SOURCE_TOPIC_HEADER).as_deref(),
        Some(topics.metrics.as_str())
    );

    // Delivered once more, after they were committed: nothing changes.
    send(&producer, &topics.metrics, &key, &payloads).await;
    // Counted after each batch committed: once all 600 repeats are counted, all are written.
    let settled = eventually(COMPLETE, || async {
        (worker.metric("pulse_metric_points_duplicate_total").await >= 600.0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "{}", worker.logs());
    assert_eq!(stored(&db, project).await, (300, 300, expected_sum, 3));
    assert_eq!(worker.metric("pulse_metric_points_persisted_total").await, 300.0);
    assert_eq!(worker.metric("pulse_metric_points_duplicate_total").await, 600.0);
    assert_eq!(
        worker
            .metric("pulse_metric_points_dead_lettered_total{reason=\"unstorable\"}")
            .await,
        1.0
    );
}
