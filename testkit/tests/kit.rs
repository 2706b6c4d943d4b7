//! The test kit's own checks: each part works against the real PostgreSQL and Apache Kafka.

use std::time::Duration;

use pulse_testkit::kafka::header;
use pulse_testkit::{TcpProxy, TestBroker, TestDb, TestKafka};
use rdkafka::Message;

#[tokio::test]
async fn databases_are_migrated_and_isolated() {
    let (a, b) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(a.name, b.name);
    let project = a.create_project().await;
    assert_eq!(a.count_events(project.id).await, 0);
    let client = b.client().await;
    let projects: i64 = client
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(projects, 0, "b must not see a's project");
    let partitions: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass",
            &[],
        )
        .await
        .expect("partitions")
        .get(0);
    assert!(partitions >= 8, "default partition plus daily ones, got {partitions}");
}

#[tokio::test]
async fn topics_carry_messages_with_headers() {
    let kafka = TestKafka::shared().await;
    let topic = kafka.topics().events;
    kafka.produce_raw(&topic, b"key", b"payload", &[("h", "v")]).await;
    let messages = kafka.consume(&topic, 1, Duration::from_secs(30)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload(), Some(&b"payload"[..]));
    assert_eq!(header(&messages[0], "h").as_deref(), Some("v"));
}

#[tokio::test]
async fn own_broker_keeps_messages_across_a_sigkill_and_restart() {
    let mut broker = TestBroker::start().await;
    let kafka = TestKafka::on(&broker).await;
    let topic = kafka.topics().events;
    kafka.produce_raw(&topic, b"k", b"before restart", &[]).await;
    broker.stop().await;
    broker.start_again().await;
    kafka.produce_raw(&topic, b"k", b"after restart", &[]).await;
    let messages = kafka.consume(&topic, 2, Duration::from_secs(60)).await;
    let payloads: Vec<_> = messages
        .iter()
        .filter_map(|m| m.payload().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(payloads, vec![b"before restart".to_vec(), b"after restart".to_vec()]);
}

#[tokio::test]
async fn proxy_cuts_and_restores_postgres() {
    let db = TestDb::new().await;
    let target = "127.0.0.1:5432".parse().expect("addr");
    let proxy = TcpProxy::start(target);
    let url = proxy.postgres_url(&db.url);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("through proxy");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.expect("query through proxy");
    proxy.cut();
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "cut connection must fail"
    );
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_err(),
        "new connections refused"
    );
    proxy.restore();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("restored");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.expect("query after restore");
}
