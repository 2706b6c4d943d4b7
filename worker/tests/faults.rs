//! Promise 2 under faults: PostgreSQL cut off mid-stream, the broker restarted mid-stream.
//! The worker retries, skips nothing, and every event ends up stored exactly once.

mod common;

use std::time::Duration;

use common::{assert_exactly_once, envelopes, shared_kafka, stored, wait_stored, worker_env, COMPLETE};
use pulse_testkit::{PulseProcess, TcpProxy, TestBroker, TestDb, TestKafka};

const N: usize = 20_000;

/// A proxy in front of the test PostgreSQL server, so a test can cut the worker off.
async fn postgres_proxy() -> TcpProxy {
    let server = pulse_testkit::db::admin_url();
    let authority = server
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("authority");
    let host_port = authority.rsplit('@').next().expect("host:port");
    let target = tokio::net::lookup_host(host_port)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("PostgreSQL address");
    TcpProxy::start(target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_mid_stream_is_retried_and_nothing_is_skipped() {
    let db = TestDb::new().await;
    let kafka = shared_kafka().await;
    let proxy = postgres_proxy().await;
    let env = worker_env(&db, &kafka).set("PULSE_DATABASE_URL", &proxy.postgres_url(&db.url));

    let events = envelopes(N, 32);
    kafka.produce_envelopes(&events).await;
    let worker = PulseProcess::worker(&env).await;
    wait_stored(&db, 1_000, COMPLETE).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_cut = stored(&db).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        stored(&db).await,
        at_cut,
        "nothing can be stored while the database is cut off"
    );
    assert!(at_cut < N as i64, "the cut came too late to be mid-stream");
    assert!(
        worker.logs().contains("Database write failed; retrying the same batch"),
        "{}",
        worker.logs()
    );

    proxy.restore();
    assert_eq!(
        wait_stored(&db, N as i64, COMPLETE).await,
        N as i64,
        "{}",
        worker.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;
    assert!(worker.metric("pulse_db_retries_total").await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_and_repeats_nothing() {
    let db = TestDb::new().await;
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let events = envelopes(N, 32);
    let (first, second) = events.split_at(N / 2);
    kafka.produce_envelopes(first).await;

    let worker = PulseProcess::worker(&worker_env(&db, &kafka)).await;
    wait_stored(&db, 1_000, COMPLETE).await;
    broker.stop().await;
    let at_stop = stored(&db).await;
    assert!(at_stop < (N / 2) as i64, "the broker stopped too late to be mid-stream");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.start_again().await;
    kafka.produce_envelopes(second).await;

    assert_eq!(
        wait_stored(&db, N as i64, COMPLETE).await,
        N as i64,
        "{}",
        worker.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;
}

/// SIGTERM while PostgreSQL is unreachable: the batches in flight are abandoned without
/// storing their offsets, the worker still exits 0 promptly, and the next worker stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_is_down_abandons_the_batch_and_loses_nothing() {
    let db = TestDb::new().await;
    let kafka = shared_kafka().await;
    let proxy = postgres_proxy().await;
    let env = worker_env(&db, &kafka).set("PULSE_DATABASE_URL", &proxy.postgres_url(&db.url));

    let events = envelopes(N, 32);
    kafka.produce_envelopes(&events).await;
    let mut worker = PulseProcess::worker(&env).await;
    wait_stored(&db, 1_000, COMPLETE).await;
    proxy.cut();
    let retrying = pulse_testkit::eventually(Duration::from_secs(30), || async {
        worker.logs().contains("Database write failed; retrying").then_some(())
    })
    .await;
    assert!(retrying.is_some(), "{}", worker.logs());

    let status = worker.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", worker.logs());
    assert!(
        worker.logs().contains("batch abandoned, offsets stay unstored"),
        "{}",
        worker.logs()
    );
    assert!(stored(&db).await < N as i64);

    proxy.restore();
    let restarted = PulseProcess::worker(&env).await;
    assert_eq!(
        wait_stored(&db, N as i64, COMPLETE).await,
        N as i64,
        "{}",
        restarted.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_exactly_once(&db, &events).await;
}
