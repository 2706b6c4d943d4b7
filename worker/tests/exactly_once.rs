//! Promise 2 (exactly once in the database) and promise 7 (shutdown loses nothing) with real
//! `pulse-worker` processes, a real PostgreSQL and a real Kafka-compatible broker.

mod common;

use std::time::Duration;

use common::{assert_exactly_once, envelopes, shared_kafka, stored, wait_stored, worker_env, COMPLETE};
use pulse_testkit::{PulseProcess, TestDb};
use pulse_worker::kafka::consumer::GroupConsumer;
use pulse_worker::kafka::context::GroupContext;
use pulse_worker::kafka::idle_watch::{self, Verdict};

const N: usize = 20_000;

/// SIGKILL mid-stream: batches committed in PostgreSQL whose offsets were not yet committed
/// are read again after restart, and the `event_ids` check keeps them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_stores_every_event_once() {
    let db = TestDb::new().await;
    let kafka = shared_kafka().await;
    let events = envelopes(N, 32);
    kafka.produce_envelopes(&events).await;

    let env = worker_env(&db, &kafka);
    let mut worker = PulseProcess::worker(&env).await;
    let before_kill = wait_stored(&db, 1_000, COMPLETE).await;
    worker.kill();
    let at_kill = stored(&db).await;
    assert!(before_kill >= 1_000, "the worker stored nothing before the kill");
    assert!(
        at_kill < N as i64,
        "the kill came too late to be mid-stream ({at_kill} stored)"
    );
    // Restarted at once: the killed member is still in the group until Kafka expires it
    // (session.timeout.ms is 10 s); then the group rebalances and the newcomer gets every
    // partition. (Tansu 0.6 never expires it: the newcomer stays idle, docs/operations.md.)
    let restarted = PulseProcess::worker(&env).await;
    let assigned = pulse_testkit::eventually(Duration::from_secs(60), || async {
        restarted.logs().contains("Partitions assigned").then_some(())
    })
    .await;
    assert!(
        assigned.is_some(),
        "no partitions after the session timeout:\n{}",
        restarted.logs()
    );
    let total = wait_stored(&db, N as i64, COMPLETE).await;
    assert_eq!(total, N as i64, "{}", restarted.logs());
    // A little longer: anything stored twice would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;
}

/// SIGTERM mid-stream: exit 0 after committing exactly what is in the database, so the next
/// worker neither reads a stored message again (`duplicate_total` 0, `consumed_total` is the
/// rest exactly) nor skips one. This also pins down the offset convention: storing the
/// message's own offset would re-read one message per partition, storing +2 would skip one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_exactly_what_is_stored_and_restart_resumes_there() {
    let db = TestDb::new().await;
    let kafka = shared_kafka().await;
    let events = envelopes(N, 32);
    kafka.produce_envelopes(&events).await;

    let env = worker_env(&db, &kafka);
    let mut worker = PulseProcess::worker(&env).await;
    wait_stored(&db, 1_000, COMPLETE).await;
    let status = worker.terminate(Duration::from_secs(60)).await;
    assert!(status.success(), "exit status {status}:\n{}", worker.logs());
    assert!(worker.logs().contains("Consumer closed"), "{}", worker.logs());
    let at_exit = stored(&db).await;
    assert!(at_exit < N as i64, "SIGTERM came too late to be mid-stream");

    let restarted = PulseProcess::worker(&env).await;
    assert_eq!(
        wait_stored(&db, N as i64, COMPLETE).await,
        N as i64,
        "{}",
        restarted.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;
    assert_eq!(
        restarted.metric("pulse_events_duplicate_total").await,
        0.0,
        "re-read after a clean stop"
    );
    assert_eq!(
        restarted.metric("pulse_events_consumed_total").await,
        (N as i64 - at_exit) as f64,
        "the restarted worker read exactly the messages not yet stored"
    );

    // And a clean stop with nothing in flight: the next worker reads nothing at all.
    let mut restarted = restarted;
    assert!(restarted.terminate(Duration::from_secs(60)).await.success());
    let idle = PulseProcess::worker(&env).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(idle.metric("pulse_events_consumed_total").await, 0.0, "{}", idle.logs());
}

/// Two workers in one group share the partitions and together store each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_in_one_group_share_the_work_and_store_each_event_once() {
    let db = TestDb::new().await;
    let kafka = shared_kafka().await;
    let env = worker_env(&db, &kafka);
    let first = PulseProcess::worker(&env).await;
    let second = PulseProcess::worker(&env).await;
    // Wait until the group settled with both members before producing.
    let settled = pulse_testkit::eventually(Duration::from_secs(60), || async {
        let assigned = |logs: String| logs.matches("Partitions assigned").count();
        (assigned(first.logs()) >= 1 && assigned(second.logs()) >= 1).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "group never settled:\n{}\n{}",
        first.logs(),
        second.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events = envelopes(N, 32);
    kafka.produce_envelopes(&events).await;
    assert_eq!(wait_stored(&db, N as i64, COMPLETE).await, N as i64);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;

    let persisted = (
        first.metric("pulse_events_persisted_total").await,
        second.metric("pulse_events_persisted_total").await,
    );
    assert!(
        persisted.0 > 0.0 && persisted.1 > 0.0,
        "both workers got work: {persisted:?}"
    );
    assert_eq!(
        persisted.0 + persisted.1,
        N as f64,
        "each event persisted by exactly one worker"
    );

    // The idle watch reads the group as Kafka describes it: an observer with no partitions
    // sees every partition owned (a misread assignment would call it starved and re-join).
    let group = env.get("PULSE_WORKER_GROUP").expect("group").to_owned();
    let topic = kafka.topics().events;
    let observer: GroupConsumer = pulse_shared::kafka::client::consumer(&kafka.config(), &group)
        .create_with_context(GroupContext::default())
        .expect("observer");
    let verdict = tokio::task::spawn_blocking(move || idle_watch::check(&observer, &group, &topic))
        .await
        .expect("check task")
        .expect("check");
    assert_eq!(verdict, Verdict::IdleByDesign);
    for worker in [&first, &second] {
        assert_eq!(
            worker
                .metric("pulse_kafka_client_recoveries_total{client=\"consumer\"}")
                .await,
            0.0,
            "no re-join on Kafka"
        );
    }
}
