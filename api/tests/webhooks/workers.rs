//! Sharing the work: two notify workers deliver each message once between them, and a dead
//! endpoint (its receiver hangs past the attempt timeout) does not hold up a live one.

use std::collections::HashSet;
use std::time::Duration;

use pulse_testkit::{eventually, Behaviour, Receiver};
use serde_json::json;

use super::{events, ids, wait_events_once, WebhookStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notify_workers_deliver_each_message_once() {
    let stack = WebhookStack::start(&[("PULSE_WEBHOOK_BATCH_MAX_EVENTS", "10")], 2).await;
    let mut receivers = Vec::new();
    for index in 0..3 {
        let receiver = Receiver::start().await;
        let (_, secret) = stack
            .create_webhook(
                json!({"name": format!("r{index}"), "url": receiver.url("/h"), "event_types": ["event.created"]}),
            )
            .await;
        receiver.set_secrets(&[&secret]);
        receivers.push(receiver);
    }
    let mut sent = Vec::new();
    for _ in 0..10 {
        let batch = events(30, "signup", "web");
        stack.ingest(&batch).await;
        sent.extend(batch);
    }
    for (index, receiver) in receivers.iter().enumerate() {
        wait_events_once(receiver, &ids(&sent), &format!("receiver {index}")).await;
        let requests = receiver.received();
        let unique: HashSet<&String> = requests.iter().map(|request| &request.webhook_id).collect();
        assert_eq!(unique.len(), requests.len(), "receiver {index}: each message sent once");
        assert!(requests.iter().all(|request| request.verified == vec![true]));
    }
    let mut attempts = 0.0;
    for worker in &stack.notify {
        let made = worker.metric("pulse_webhook_attempts_total").await;
        assert!(made > 0.0, "both workers took a share");
        attempts += made;
    }
    let requests: usize = receivers.iter().map(|receiver| receiver.received().len()).sum();
    assert_eq!(attempts, requests as f64, "every attempt is one request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_does_not_hold_up_a_live_one() {
    let stack = WebhookStack::start(
        &[
            ("PULSE_WEBHOOK_TIMEOUT_SECS", "90"),
            ("PULSE_WEBHOOK_CONNECT_TIMEOUT_SECS", "5"),
        ],
        1,
    )
    .await;
    let hanging = Receiver::start().await;
    hanging.set_behaviour(Behaviour::Slow(Duration::from_secs(300)));
    let live = Receiver::start().await;
    let (dead_id, _) = stack
        .create_webhook(json!({"name": "hanging", "url": hanging.url("/h"), "event_types": ["event.created"]}))
        .await;
    let (live_id, _) = stack
        .create_webhook(json!({"name": "live", "url": live.url("/l"), "event_types": ["event.created"]}))
        .await;
    let mut sent = Vec::new();
    for _ in 0..8 {
        let batch = events(5, "signup", "web");
        stack.ingest(&batch).await;
        sent.extend(batch);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    wait_events_once(&live, &ids(&sent), "live endpoint").await;
    let live_deliveries = stack.statuses(live_id).await;
    assert_eq!(live_deliveries.len(), 1, "{live_deliveries:?}");
    assert!(live_deliveries.contains_key("succeeded"));
    // The hanging endpoint's first attempts are all still in flight: none has ended.
    assert!(
        stack.attempts(dead_id).await.is_empty(),
        "no attempt of the hanging endpoint has ended yet"
    );
    let in_flight = eventually(PATIENCE, || async {
        let requests = hanging.received().len();
        (requests > 0).then_some(requests)
    })
    .await
    .expect("the hanging endpoint was tried");
    assert!(
        in_flight <= 4,
        "at most PULSE_WEBHOOK_ENDPOINT_CONCURRENCY attempts at once, saw {in_flight}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_notify_worker_loses_nothing() {
    let mut stack = WebhookStack::start(
        &[
            ("PULSE_WEBHOOK_TIMEOUT_SECS", "2"),
            ("PULSE_WEBHOOK_CONNECT_TIMEOUT_SECS", "1"),
        ],
        0,
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.set_behaviour(Behaviour::Slow(Duration::from_secs(60)));
    let (webhook, secret) = stack
        .create_webhook(json!({"name": "survivor", "url": receiver.url("/s"), "event_types": ["event.created"]}))
        .await;
    receiver.set_secrets(&[&secret]);

    // No notify worker yet: the message waits in the outbox.
    let batch = events(4, "signup", "web");
    stack.ingest(&batch).await;
    stack.stack.db.wait_for_events(stack.project, 4, PATIENCE).await;
    let client = stack.stack.db.client().await;
    let waiting: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_messages WHERE project_id = $1",
            &[&stack.project],
        )
        .await
        .expect("outbox")
        .get(0);
    assert_eq!(waiting, 1, "the persist transaction wrote the message");

    // A worker takes it, sends, and is killed while the receiver holds the request.
    let env = stack.stack.env.clone();
    stack.add_notify(&env).await;
    let first = eventually(PATIENCE, || async { receiver.received().into_iter().next() })
        .await
        .expect("the first attempt reaches the receiver");
    stack.notify[0].kill();
    receiver.set_behaviour(Behaviour::Accept);
    stack.add_notify(&env).await;

    // The lease runs out and the other worker sends the same message again.
    stack.wait_all(webhook, "succeeded", 1).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "one successful delivery");
    assert_eq!(accepted[0].webhook_id, first.webhook_id, "the same webhook-id");
    assert_eq!(accepted[0].raw_body, first.raw_body, "the same body");
    assert_eq!(accepted[0].verified, vec![true]);
    assert_eq!(ids(&accepted[0].events()), ids(&batch));
    let log = stack.attempts(webhook).await;
    assert_eq!(log.len(), 1, "the killed worker recorded nothing: {log:?}");
    assert_eq!(log[0].2, Some(200));
}
