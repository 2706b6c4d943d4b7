//! The email outbox: an SMTP server down for a while loses nothing and sends each message once
//! when it returns (every failed attempt logged); a server answering 451 is retried; a
//! disabled webhook endpoint is mailed to the project's owners.

use std::time::Duration;

use pulse_testkit::{eventually, Behaviour, Receiver, SmtpCapture};
use serde_json::json;

use super::{events, mail_to, AlertStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_server_down_then_up_gets_each_message_once() {
    let mut alerts = AlertStack::start(SmtpCapture::start().await, &[], 2).await;
    alerts.disable_default_rule().await;
    alerts.smtp.down().await;
    alerts
        .create_rule(json!({
            "name": "errors while mail is down",
            "condition": {"kind": "count", "filter": {"status": "error"}, "window_s": 3600,
                          "op": "above", "threshold": 2},
            "channels": {"emails": ["first@example.com", "second@example.com"]},
        }))
        .await;
    alerts.ingest(&events(10, "job", "error")).await;

    // Attempts fail while the server is down, and each is logged.
    let client = alerts.stack.db.client().await;
    let failed_attempts = eventually(PATIENCE, || async {
        let row = client
            .query_one("SELECT count(*) FROM email_attempts WHERE error IS NOT NULL", &[])
            .await
            .expect("attempts");
        let failed: i64 = row.get(0);
        (failed >= 4).then_some(failed)
    })
    .await
    .expect("failed attempts logged while SMTP is down");
    assert!(failed_attempts >= 4);
    assert!(alerts.smtp.messages().is_empty());

    alerts.smtp.up().await;
    let first = alerts.wait_mail("first@example.com", 1).await;
    let second = alerts.wait_mail("second@example.com", 1).await;
    assert!(first[0].subject.contains("FIRING"), "{}", first[0].subject);
    assert_eq!(first[0].message_id, second[0].message_id);
    // Nothing more comes: each message once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(alerts.smtp.messages().len(), 2, "{:?}", alerts.smtp.messages());
    let rows = client
        .query("SELECT status, attempts FROM email_messages ORDER BY recipient", &[])
        .await
        .expect("messages");
    for row in rows {
        let (status, attempts): (String, i32) = (row.get(0), row.get(1));
        assert_eq!(status, "sent");
        assert!(attempts >= 2, "the first attempts failed: {attempts}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_refusal_is_retried_and_a_disabled_endpoint_is_mailed_to_the_owners() {
    let alerts = AlertStack::start(SmtpCapture::start_failing_first(2).await, &[], 1).await;
    alerts.disable_default_rule().await;
    let receiver = Receiver::start().await;
    receiver.set_behaviour(Behaviour::Status(410, None));
    let (_, secret) = alerts.create_webhook(&receiver.url("/gone"), &["event.created"]).await;
    receiver.set_secrets(&[&secret]);
    alerts.ingest(&events(1, "signup", "ok")).await;

    // 410 Gone disables the endpoint; its owner hears of it (after two 451s from the server).
    let mail = alerts.wait_mail(&alerts.owner_email, 1).await;
    assert!(
        mail[0].subject.contains("Webhook endpoint disabled: alerts"),
        "{}",
        mail[0].subject
    );
    assert!(mail[0].text.contains(&receiver.url("/gone")), "{}", mail[0].text);
    assert!(mail[0].html.contains("Webhook endpoint disabled"), "{}", mail[0].html);
    // The worker records the attempt just after the server accepted it: wait for the row.
    let client = alerts.stack.db.client().await;
    let (status, attempts, refused) = eventually(PATIENCE, || async {
        let row = client
            .query_one(
                "SELECT m.status, m.attempts, (SELECT count(*) FROM email_attempts a WHERE a.email_id = m.id AND a.error LIKE '%451%')
                 FROM email_messages m WHERE m.kind = 'webhook.disabled'",
                &[],
            )
            .await
            .expect("the notice");
        let (status, attempts, refused): (String, i32, i64) = (row.get(0), row.get(1), row.get(2));
        (status == "sent").then_some((status, attempts, refused))
    })
    .await
    .expect("the notice recorded as sent");
    assert_eq!((status.as_str(), attempts, refused), ("sent", 3, 2));
    assert_eq!(mail_to(&alerts.smtp, &alerts.owner_email).len(), 1);
}
