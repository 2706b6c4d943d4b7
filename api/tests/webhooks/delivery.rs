//! What a receiver gets: signed `event.created` batches it verifies with `standardwebhooks`,
//! filtered per endpoint, with its custom headers; the events exactly as the read API shows
//! them; a rotated secret signing with both secrets during its grace period; the test message.

use pulse_testkit::{eventually, Receiver};
use reqwest::Method;
use serde_json::json;

use super::{events, ids, wait_events_once, WebhookStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_signed_batched_and_filtered() {
    let stack = WebhookStack::start(&[], 1).await;
    let all = Receiver::start().await;
    let signups = Receiver::start().await;
    let (all_id, all_secret) = stack
        .create_webhook(json!({"name": "all", "url": all.url("/all"), "event_types": ["event.created"]}))
        .await;
    let (signups_id, signups_secret) = stack
        .create_webhook(json!({
            "name": "signups from web", "url": signups.url("/signups"), "event_types": ["event.created"],
            "filter": {"event_types": ["signup"], "sources": ["web"]},
            "headers": {"X-Tenant": "acme"},
        }))
        .await;
    all.set_secrets(&[&all_secret]);
    signups.set_secrets(&[&signups_secret]);

    let web_signups = events(20, "signup", "web");
    let ios_signups = events(5, "signup", "ios");
    let purchases = events(10, "purchase", "web");
    let mut batch = web_signups.clone();
    batch.extend(ios_signups.clone());
    batch.extend(purchases.clone());
    stack.ingest(&batch).await;

    wait_events_once(&all, &ids(&batch), "every event").await;
    wait_events_once(&signups, &ids(&web_signups), "signups from web").await;
    for (receiver, name) in [(&all, "all"), (&signups, "signups")] {
        let requests = receiver.received();
        assert!(
            requests.len() < 20,
            "{name}: events travel in batches, not one request each ({} requests)",
            requests.len()
        );
        for request in &requests {
            assert_eq!(
                request.verified,
                vec![true],
                "{name}: standardwebhooks verifies the signature"
            );
            assert_eq!(request.body["type"], "event.created");
            assert!(request.webhook_id.starts_with("msg_"), "{}", request.webhook_id);
            assert!(request
                .header("user-agent")
                .is_some_and(|agent| agent.starts_with("Pulse-Webhooks/")));
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert!(request.body["timestamp"].is_string());
        }
    }
    assert!(signups
        .received()
        .iter()
        .all(|request| request.header("x-tenant") == Some("acme")));

    // An event is shown exactly as GET /v1/events/{id} shows it.
    let sent = &all.accepted()[0].events()[0];
    let read = stack
        .stack
        .get(&format!("/v1/events/{}", sent["id"].as_str().expect("id")), &stack.key)
        .await
        .expect(200, "read back");
    assert_eq!(sent, &read);

    stack
        .wait_all(all_id, "succeeded", i64::try_from(all.received().len()).expect("count"))
        .await;
    stack
        .wait_all(
            signups_id,
            "succeeded",
            i64::try_from(signups.received().len()).expect("count"),
        )
        .await;
    let log = stack.attempts(all_id).await;
    assert!(log
        .iter()
        .all(|(_, attempt, status, class)| *attempt == 1 && *status == Some(200) && class.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_with_both_during_its_grace_period() {
    let stack = WebhookStack::start(&[], 1).await;
    let receiver = Receiver::start().await;
    let (webhook, old) = stack
        .create_webhook(json!({"name": "rotating", "url": receiver.url("/r"), "event_types": ["event.created"]}))
        .await;
    let rotated = stack
        .call(
            Method::POST,
            &format!("{}/secret/rotate", stack.webhook_path(webhook)),
            Some(json!({})),
        )
        .await
        .expect(200, "rotate");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    receiver.set_secrets(&[&old, &new]);

    stack
        .call(Method::POST, &format!("{}/test", stack.webhook_path(webhook)), None)
        .await
        .expect(202, "test message");
    let request = eventually(PATIENCE, || async { receiver.received().into_iter().next() })
        .await
        .expect("the test message arrives");
    assert_eq!(request.body["type"], "webhook.test");
    assert_eq!(request.signature.split(' ').count(), 2, "{}", request.signature);
    assert_eq!(
        request.verified,
        vec![true, true],
        "each secret alone verifies the request"
    );

    // A rotation without grace: only the new secret signs.
    let again = stack
        .call(
            Method::POST,
            &format!("{}/secret/rotate", stack.webhook_path(webhook)),
            Some(json!({"grace_period_secs": 0})),
        )
        .await
        .expect(200, "rotate without grace");
    let newest = again["secret"].as_str().expect("newest").to_owned();
    receiver.set_secrets(&[&new, &newest]);
    stack
        .call(Method::POST, &format!("{}/test", stack.webhook_path(webhook)), None)
        .await
        .expect(202, "second test message");
    let second = eventually(PATIENCE, || async { receiver.received().get(1).cloned() })
        .await
        .expect("the second test message arrives");
    assert_eq!(second.signature.split(' ').count(), 1);
    assert_eq!(second.verified, vec![false, true]);
}
