//! What goes in comes out: tricky text and JSON survive the worker byte for byte, and a
//! redelivered event (same id, even with another timestamp) is stored once — both through a
//! real worker and straight through the store statement.

mod common;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use common::{wait_stored, worker_env, COMPLETE};
use pulse_shared::envelope::EventEnvelope;
use pulse_shared::event::Event;
use pulse_testkit::{PulseProcess, TestDb, TestKafka};
use pulse_worker::persist::store::{self, Columns, Written};
use serde_json::json;
use uuid::Uuid;

fn tricky_tags() -> Vec<String> {
    [
        "a,b",
        "quote\"d",
        "{brace}",
        "}",
        "{",
        ",",
        "back\\slash",
        "\\\"",
        "{\"a\",\"b\"}",
        "ünïcødé 🙂 中文",
        "",
        "NULL",
        " spaced ",
        "new\nline\ttab\r",
        "'single'",
        "$1::text[]",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn tricky_event(project_id: Uuid, timestamp: DateTime<Utc>) -> EventEnvelope {
    let event = Event {
        id: Uuid::now_v7(),
        timestamp,
        event_type: "type \"x\" {y} ,z\\".into(),
        source: Some("sõurce\\'\"".into()),
        user_id: Some("ユーザー 👩‍💻".into()),
        session_id: Some("NULL".into()),
        duration_ms: Some(i64::MAX),
        priority: Some(0),
        status: Some("multi\nline".into()),
        tags: tricky_tags(),
        data: json!({
            "quote\"key": "va\"l\\ue",
            "ünï": ["{", "}", ",", "\\", null, true, 1.5, -7, 9_007_199_254_740_993_u64],
            "nested": {"deep": [{"a": "\u{1}\u{1f}"}], "empty": {}},
            "html": "<script>alert('x')</script>",
        }),
        metadata: json!({"sql": "'); DROP TABLE events; --", "tags": "{a,b}"}),
    };
    let received_at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("time");
    EventEnvelope::new(project_id, received_at, event)
}

fn plain_event(project_id: Uuid, timestamp: DateTime<Utc>) -> EventEnvelope {
    let mut envelope = tricky_event(project_id, timestamp);
    envelope.event.tags = Vec::new();
    envelope.event.source = None;
    envelope.event.user_id = None;
    envelope.event.session_id = None;
    envelope.event.duration_ms = None;
    envelope.event.priority = None;
    envelope.event.status = None;
    envelope.event.data = json!({});
    envelope.event.metadata = json!({});
    envelope
}

/// Reads an event back and compares every column with what was produced.
async fn assert_stored_as(db: &TestDb, expected: &EventEnvelope) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT project_id, \"timestamp\", received_at, event_type, source, user_id, session_id, \
             duration_ms, priority, status, tags, data, metadata FROM events WHERE id = $1",
            &[&expected.event.id],
        )
        .await
        .expect("stored row");
    let event = &expected.event;
    assert_eq!(row.get::<_, Uuid>(0), expected.project_id);
    assert_eq!(row.get::<_, DateTime<Utc>>(1), event.timestamp);
    assert_eq!(row.get::<_, DateTime<Utc>>(2), expected.received_at);
    assert_eq!(row.get::<_, String>(3), event.event_type);
    assert_eq!(row.get::<_, Option<String>>(4), event.source);
    assert_eq!(row.get::<_, Option<String>>(5), event.user_id);
    assert_eq!(row.get::<_, Option<String>>(6), event.session_id);
    assert_eq!(row.get::<_, Option<i64>>(7), event.duration_ms);
    assert_eq!(row.get::<_, Option<i32>>(8), event.priority);
    assert_eq!(row.get::<_, Option<String>>(9), event.status);
    assert_eq!(row.get::<_, Vec<String>>(10), event.tags);
    assert_eq!(row.get::<_, serde_json::Value>(11), event.data);
    assert_eq!(row.get::<_, serde_json::Value>(12), event.metadata);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_text_round_trips_and_redeliveries_are_stored_once() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let project = Uuid::now_v7();
    let at = Utc::now().trunc_subsecs(6);
    let tricky = tricky_event(project, at);
    let plain = plain_event(project, at);

    // The same ids again, later, with another timestamp and type: the first one wins.
    let mut again = tricky.clone();
    again.event.timestamp = at - chrono::Duration::days(3);
    again.event.event_type = "redelivered".into();
    let mut plain_again = plain.clone();
    plain_again.event.timestamp = at + chrono::Duration::hours(1);

    // Repeats inside one batch (in-batch dedup) and in later batches (event_ids dedup).
    kafka
        .produce_envelopes(&[tricky.clone(), again.clone(), plain.clone(), plain_again.clone()])
        .await;
    let worker = PulseProcess::worker(&worker_env(&db, &kafka)).await;
    assert_eq!(wait_stored(&db, 2, COMPLETE).await, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    kafka.produce_envelopes(&[again, plain_again]).await;
    let consumed = pulse_testkit::eventually(COMPLETE, || async {
        (worker.metric("pulse_events_consumed_total").await >= 6.0).then_some(())
    })
    .await;
    assert!(consumed.is_some(), "{}", worker.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(common::counts(&db).await, (2, 2, 2));
    assert_stored_as(&db, &tricky).await;
    assert_stored_as(&db, &plain).await;
    let duplicates = pulse_testkit::eventually(Duration::from_secs(10), || async {
        let duplicates = worker.metric("pulse_events_duplicate_total").await;
        (duplicates >= 4.0).then_some(duplicates)
    })
    .await;
    assert_eq!(duplicates, Some(4.0));
    assert_eq!(worker.metric("pulse_events_persisted_total").await, 2.0);
}

async fn connection(db: &TestDb) -> diesel_async::AsyncPgConnection {
    use diesel_async::AsyncConnection;
    diesel_async::AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect")
}

/// The statement alone: a second write of the same rows stores nothing and says so, and two
/// writers racing on overlapping ids store each id once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_statement_is_idempotent_and_safe_under_concurrent_writers() {
    let db = TestDb::new().await;
    let project = Uuid::now_v7();
    let at = Utc::now().trunc_subsecs(6);
    let batch: Vec<EventEnvelope> = (0..500)
        .map(|i| {
            let mut envelope = tricky_event(project, at);
            envelope.event.tags.push(format!("row {i}"));
            envelope
        })
        .collect();

    let mut conn = connection(&db).await;
    let written = store::write(&mut conn, &Columns::from_events(batch.clone()))
        .await
        .expect("write");
    assert_eq!(
        written,
        Written {
            inserted: 500,
            duplicates: 0
        }
    );
    let again = store::write(&mut conn, &Columns::from_events(batch.clone()))
        .await
        .expect("rewrite");
    assert_eq!(
        again,
        Written {
            inserted: 0,
            duplicates: 500
        }
    );
    assert_stored_as(&db, &batch[123]).await;
    assert_eq!(
        store::write(&mut conn, &Columns::default()).await.expect("empty"),
        Written::default()
    );

    // Overlapping halves written at once from two connections, several rounds.
    for _ in 0..5 {
        let shared: Vec<EventEnvelope> = (0..400).map(|_| plain_event(project, at)).collect();
        let mut left: Vec<EventEnvelope> = shared[..300].to_vec();
        let mut right: Vec<EventEnvelope> = shared[100..].to_vec();
        left.reverse();
        right.rotate_left(37);
        let (mut a, mut b) = (connection(&db).await, connection(&db).await);
        let (left, right) = (Columns::from_events(left), Columns::from_events(right));
        let (x, y) = tokio::join!(store::write(&mut a, &left), store::write(&mut b, &right));
        let (x, y) = (x.expect("left"), y.expect("right"));
        assert_eq!(x.inserted + y.inserted, 400, "each id stored by exactly one writer");
        assert_eq!(x.duplicates + y.duplicates, 200);
    }
    assert_eq!(common::counts(&db).await, (2_500, 2_500, 2_500));
}
