//! Failures: a receiver down for several retries and then failing once more gets each message
//! exactly once successfully, with the same `webhook-id` and body on every attempt; 410 Gone
//! disables the endpoint and tells the project's `webhook.disabled` subscribers; a redirect is
//! a failed attempt and is not followed; `Retry-After` pushes the next attempt back.

use std::collections::HashMap;

use pulse_testkit::{eventually, Behaviour, Receiver};
use reqwest::Method;
use serde_json::json;

use super::{accepted_event_ids, events, ids, WebhookStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_several_retries_gets_each_message_once() {
    let stack = WebhookStack::start(&[], 1).await;
    let mut receiver = Receiver::start().await;
    let (webhook, secret) = stack
        .create_webhook(json!({"name": "flaky", "url": receiver.url("/hook"), "event_types": ["event.created"], "max_attempts": 20}))
        .await;
    receiver.set_secrets(&[&secret]);
    receiver.down().await;

    let mut sent = Vec::new();
    for _ in 0..3 {
        let batch = events(10, "signup", "web");
        stack.ingest(&batch).await;
        sent.extend(batch);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // Every delivery fails to connect at least twice.
    let client = stack.stack.db.client().await;
    eventually(PATIENCE, || async {
        let row = client
            .query_one(
                "SELECT count(*), coalesce(min(attempts), 0) FROM webhook_deliveries WHERE webhook_id = $1",
                &[&webhook],
            )
            .await
            .expect("deliveries");
        let (deliveries, fewest): (i64, i32) = (row.get(0), row.get(1));
        (deliveries > 0 && fewest >= 2).then_some(())
    })
    .await
    .expect("every delivery was attempted twice while the receiver was down");
    let deliveries: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1",
            &[&webhook],
        )
        .await
        .expect("count")
        .get(0);

    // Up, but answering 500 once per message; then accepting.
    receiver.set_behaviour(Behaviour::Status(500, None));
    receiver.up().await;
    eventually(PATIENCE, || async {
        let seen: std::collections::HashSet<String> = receiver
            .received()
            .into_iter()
            .map(|request| request.webhook_id)
            .collect();
        (i64::try_from(seen.len()).expect("len") >= deliveries).then_some(())
    })
    .await
    .expect("every message reached the receiver once");
    receiver.set_behaviour(Behaviour::Accept);
    stack.wait_all(webhook, "succeeded", deliveries).await;

    let mut by_id: HashMap<String, Vec<pulse_testkit::receiver::Received>> = HashMap::new();
    for request in receiver.received() {
        assert_eq!(request.verified, vec![true]);
        by_id.entry(request.webhook_id.clone()).or_default().push(request);
    }
    assert_eq!(
        i64::try_from(by_id.len()).expect("len"),
        deliveries,
        "one webhook-id per delivery"
    );
    for (id, requests) in &by_id {
        let successes = requests.iter().filter(|request| request.answered == 200).count();
        assert_eq!(successes, 1, "{id}: exactly one successful delivery");
        assert!(
            requests.iter().all(|request| request.raw_body == requests[0].raw_body),
            "{id}: same body on every attempt"
        );
    }
    let delivered = accepted_event_ids(&receiver);
    assert_eq!(delivered.len(), sent.len(), "each event once");
    assert_eq!(
        delivered.into_iter().collect::<std::collections::HashSet<_>>(),
        ids(&sent)
    );
    let log = stack.attempts(webhook).await;
    assert!(
        log.iter().any(|(_, _, _, class)| class.as_deref() == Some("connect")),
        "{log:?}"
    );
    assert!(log
        .iter()
        .any(|(_, _, status, class)| *status == Some(500) && class.as_deref() == Some("http_status")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_and_redirects_are_not_followed() {
    let stack = WebhookStack::start(&[], 1).await;
    let gone = Receiver::start().await;
    gone.set_behaviour(Behaviour::Status(410, None));
    let target = Receiver::start().await;
    let redirecting = Receiver::start().await;
    redirecting.set_behaviour(Behaviour::Redirect(target.url("/elsewhere")));
    let watcher = Receiver::start().await;
    let (gone_id, _) = stack
        .create_webhook(json!({"name": "gone", "url": gone.url("/g"), "event_types": ["event.created"]}))
        .await;
    let (redirect_id, _) = stack
        .create_webhook(json!({"name": "redirect", "url": redirecting.url("/r"), "event_types": ["event.created"], "max_attempts": 2}))
        .await;
    let (_, watcher_secret) = stack
        .create_webhook(json!({"name": "watcher", "url": watcher.url("/w"), "event_types": ["webhook.disabled"]}))
        .await;
    watcher.set_secrets(&[&watcher_secret]);
    stack.ingest(&events(5, "signup", "web")).await;

    // 410: one attempt, the endpoint disabled, the watcher told.
    stack.wait_all(gone_id, "failed", 1).await;
    assert_eq!(gone.received().len(), 1, "no retry after 410");
    let endpoint = stack
        .call(Method::GET, &stack.webhook_path(gone_id), None)
        .await
        .expect(200, "endpoint");
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("410")),
        "{endpoint}"
    );
    let notice = eventually(PATIENCE, || async { watcher.received().into_iter().next() })
        .await
        .expect("webhook.disabled arrives");
    assert_eq!(notice.body["type"], "webhook.disabled");
    assert_eq!(notice.body["data"]["webhook_id"], gone_id.to_string());
    assert_eq!(notice.verified, vec![true]);
    // 307: a failed attempt each time, never followed.
    stack.wait_all(redirect_id, "failed", 1).await;
    let log = stack.attempts(redirect_id).await;
    assert_eq!(log.len(), 2, "max_attempts 2: {log:?}");
    assert!(log
        .iter()
        .all(|(_, _, status, class)| *status == Some(307) && class.as_deref() == Some("http_status")));
    assert!(target.received().is_empty(), "the redirect was not followed");
    // Disabled: new events make no deliveries for it.
    stack.ingest(&events(2, "signup", "web")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        stack.statuses(gone_id).await.values().sum::<i64>(),
        1,
        "a disabled endpoint gets no new deliveries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pushes_the_next_attempt_back() {
    let stack = WebhookStack::start(&[], 1).await;
    let busy = Receiver::start().await;
    busy.set_behaviour(Behaviour::Status(429, Some(120)));
    let (webhook, _) = stack
        .create_webhook(json!({"name": "busy", "url": busy.url("/b"), "event_types": ["event.created"]}))
        .await;
    stack.ingest(&events(1, "signup", "web")).await;
    let client = stack.stack.db.client().await;
    let wait_secs: f64 = eventually(PATIENCE, || async {
        let rows = client
            .query(
                "SELECT extract(epoch FROM next_attempt_at - last_attempt_at)::float8 FROM webhook_deliveries
                 WHERE webhook_id = $1 AND attempts = 1 AND status = 'pending' AND lease IS NULL",
                &[&webhook],
            )
            .await
            .expect("delivery");
        rows.first().map(|row| row.get::<_, f64>(0))
    })
    .await
    .expect("the first attempt is recorded");
    assert!(
        wait_secs >= 119.0,
        "Retry-After: 120 honoured over the 1 s schedule, got {wait_secs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_too_long_is_disabled() {
    // Every attempt fails; after PULSE_WEBHOOK_DISABLE_AFTER_SECS of failures it is disabled.
    let stack = WebhookStack::start(&[("PULSE_WEBHOOK_DISABLE_AFTER_SECS", "2")], 1).await;
    let failing = Receiver::start().await;
    failing.set_behaviour(Behaviour::Status(500, None));
    let (webhook, _) = stack
        .create_webhook(
            json!({"name": "failing", "url": failing.url("/f"), "event_types": ["event.created"], "max_attempts": 50}),
        )
        .await;
    stack.ingest(&events(1, "signup", "web")).await;
    let endpoint = eventually(PATIENCE, || async {
        let endpoint = stack
            .call(Method::GET, &stack.webhook_path(webhook), None)
            .await
            .expect(200, "endpoint");
        (endpoint["enabled"] == false).then_some(endpoint)
    })
    .await
    .expect("the endpoint is disabled");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("every attempt failed")),
        "{endpoint}"
    );
    assert!(endpoint["failing_since"].is_string(), "{endpoint}");
    // Its delivery stopped pending: failed, to be recovered once the endpoint is enabled again.
    stack.wait_all(webhook, "failed", 1).await;
    let attempts = stack.attempts(webhook).await;
    assert!(attempts.len() >= 2, "it kept trying until then: {attempts:?}");
    assert!(attempts.iter().all(|(_, _, status, _)| *status == Some(500)));
}
