//! Replay: `recover` re-sends exactly the failed deliveries since a time, each with its
//! original `webhook-id`; `retry` re-sends one delivery now.

use std::collections::HashMap;

use chrono::Utc;
use pulse_testkit::{eventually, Behaviour, Receiver};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::{events, WebhookStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_resends_exactly_the_failed_deliveries() {
    let stack = WebhookStack::start(&[], 1).await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = stack
        .create_webhook(
            json!({"name": "replayed", "url": receiver.url("/h"), "event_types": ["event.created"], "max_attempts": 1}),
        )
        .await;
    receiver.set_secrets(&[&secret]);
    let since = Utc::now();
    // Three rounds: failed, succeeded, failed.
    for (round, behaviour) in [
        Behaviour::Status(500, None),
        Behaviour::Accept,
        Behaviour::Status(503, None),
    ]
    .into_iter()
    .enumerate()
    {
        receiver.set_behaviour(behaviour);
        stack.ingest(&events(3, "signup", "web")).await;
        let expected = i64::try_from(round + 1).expect("round");
        eventually(PATIENCE, || async {
            let done: i64 = stack
                .statuses(webhook)
                .await
                .iter()
                .filter(|(status, _)| *status != "pending")
                .map(|(_, count)| *count)
                .sum();
            (done == expected).then_some(())
        })
        .await
        .expect("the round's delivery is done");
    }
    assert_eq!(stack.statuses(webhook).await.get("failed"), Some(&2));
    let before = receiver.received();
    assert_eq!(before.len(), 3);
    let failed_ids: Vec<String> = before
        .iter()
        .filter(|request| request.answered != 200)
        .map(|request| request.webhook_id.clone())
        .collect();

    receiver.set_behaviour(Behaviour::Accept);
    let answer = stack
        .call(
            Method::POST,
            &format!("{}/recover", stack.webhook_path(webhook)),
            Some(json!({"since": since})),
        )
        .await
        .expect(202, "recover");
    assert_eq!(answer["recovered"], 2, "{answer}");
    stack.wait_all(webhook, "succeeded", 3).await;
    let after = receiver.received();
    assert_eq!(after.len(), 5, "exactly the two failed ones were sent again");
    let resent: Vec<String> = after[3..].iter().map(|request| request.webhook_id.clone()).collect();
    let mut expected = failed_ids.clone();
    expected.sort();
    let mut got = resent.clone();
    got.sort();
    assert_eq!(got, expected, "re-sent with their original webhook-id");
    assert!(after[3..].iter().all(|request| request.verified == vec![true]));

    // retry: one delivery again now, same id and body.
    let client = stack.stack.db.client().await;
    let delivery: Uuid = client
        .query_one(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id LIMIT 1",
            &[&webhook],
        )
        .await
        .expect("delivery")
        .get(0);
    stack
        .call(
            Method::POST,
            &format!("{}/deliveries/{delivery}/retry", stack.webhook_path(webhook)),
            None,
        )
        .await
        .expect(202, "retry");
    let again = eventually(PATIENCE, || async { receiver.received().get(5).cloned() })
        .await
        .expect("the retried delivery arrives");
    let mut bodies: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for request in receiver.received() {
        bodies.entry(request.webhook_id).or_default().push(request.raw_body);
    }
    let same = &bodies[&again.webhook_id];
    assert!(
        same.len() >= 2 && same.iter().all(|body| body == &same[0]),
        "same id, same body"
    );
}
