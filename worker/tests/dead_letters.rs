//! Promise 4 on the worker side: a message it cannot decode goes to the dead-letter topic with
//! the reason and its source, and the events behind it on the same partition are stored.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{envelope, wait_stored, worker_env, COMPLETE};
use pulse_testkit::kafka::header;
use pulse_testkit::{PulseProcess, TestDb, TestKafka};
use pulse_worker::persist::dead_letter::{
    REASON_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER,
};
use rdkafka::Message;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_partition_keeps_moving() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let topics = kafka.topics();
    let project = Uuid::now_v7();
    let key = project.to_string();

    // One key, so one partition: 50 good, 4 bad, 50 good, in that order.
    let before: Vec<_> = (0..50).map(|i| envelope(project, i, Utc::now())).collect();
    let after: Vec<_> = (50..100).map(|i| envelope(project, i, Utc::now())).collect();
    let mut future = serde_json::to_value(envelope(project, 0, Utc::now())).expect("json");
    future["v"] = 99.into();
    let future = serde_json::to_vec(&future).expect("json");
    let mut nul = envelope(project, 0, Utc::now());
    nul.event.tags = vec!["a\u{0}b".into()];
    let poison: [(&str, Vec<u8>); 4] = [
        ("not a valid event envelope", b"{\"v\": 1, \"project_id\": ".to_vec()),
        ("envelope version 99", future),
        ("empty message", Vec::new()),
        ("NUL", nul.encode().expect("encode")),
    ];

    kafka.produce_envelopes(&before).await;
    for (_, payload) in &poison {
        kafka.produce_raw(&topics.events, key.as_bytes(), payload, &[]).await;
    }
    kafka.produce_envelopes(&after).await;

    let worker = PulseProcess::worker(&worker_env(&db, &kafka)).await;
    assert_eq!(wait_stored(&db, 100, COMPLETE).await, 100, "{}", worker.logs());

    let dead = kafka.consume(&topics.events_dlq, 4, Duration::from_secs(60)).await;
    assert_eq!(dead.len(), 4, "dead letters");
    let partition = header(&dead[0], SOURCE_PARTITION_HEADER).expect("partition header");
    for (index, (message, (reason, payload))) in dead.iter().zip(&poison).enumerate() {
        let found = header(message, REASON_HEADER).expect("reason header");
        assert!(found.contains(reason), "reason {found:?} should mention {reason:?}");
        assert_eq!(
            header(message, SOURCE_TOPIC_HEADER).as_deref(),
            Some(topics.events.as_str())
        );
        assert_eq!(header(message, SOURCE_PARTITION_HEADER), Some(partition.clone()));
        // The poison sits right behind the first 50 events of its partition.
        assert_eq!(header(message, SOURCE_OFFSET_HEADER), Some((50 + index).to_string()));
        assert_eq!(message.key(), Some(key.as_bytes()), "original key kept");
        assert_eq!(
            message.payload().unwrap_or_default(),
            payload.as_slice(),
            "original payload kept"
        );
    }

    for reason in ["malformed", "unknown_version", "empty", "unstorable"] {
        let series = format!("pulse_events_dead_lettered_total{{reason=\"{reason}\"}}");
        assert_eq!(worker.metric(&series).await, 1.0, "{series}");
    }
    assert_eq!(worker.metric("pulse_events_consumed_total").await, 104.0);
    assert_eq!(worker.metric("pulse_events_persisted_total").await, 100.0);
}
