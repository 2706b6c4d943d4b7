//! The SSRF guard at delivery time: an endpoint the api accepted (its allow-list covers
//! loopback) is refused by a notify worker whose allow-list does not, whether its URL names the
//! address or a name that resolves to it; the receiver never sees a request.

use std::time::Duration;

use pulse_testkit::{eventually, Receiver};
use serde_json::json;

use super::{events, WebhookStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_refuses_private_destinations_the_worker_does_not_allow() {
    let mut stack = WebhookStack::start(&[], 0).await;
    let strict = stack.stack.env.clone().set("PULSE_WEBHOOK_ALLOW_NETS", "192.0.2.0/24");
    stack.add_notify(&strict).await;
    let receiver = Receiver::start().await;
    let (by_address, _) = stack
        .create_webhook(
            json!({"name": "literal", "url": receiver.url("/a"), "event_types": ["event.created"], "max_attempts": 1}),
        )
        .await;
    let by_name_url = format!("http://localhost:{}/b", receiver.port());
    let (by_name, _) = stack
        .create_webhook(
            json!({"name": "name", "url": by_name_url, "event_types": ["event.created"], "max_attempts": 1}),
        )
        .await;
    stack.ingest(&events(3, "signup", "web")).await;
    for webhook in [by_address, by_name] {
        stack.wait_all(webhook, "failed", 1).await;
        let attempts = eventually(PATIENCE, || async {
            let attempts = stack.attempts(webhook).await;
            (!attempts.is_empty()).then_some(attempts)
        })
        .await
        .expect("an attempt is logged");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].3.as_deref(), Some("ssrf_refused"), "{attempts:?}");
        assert_eq!(attempts[0].2, None, "no response: nothing was sent");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty(), "the receiver saw no request");
}
