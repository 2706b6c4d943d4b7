//! Re-notification: an incident still firing after `renotify_s` sends one reminder (an email
//! with its own `Message-ID`, an `alert.fired` with `"reminder": true`), and no more before the
//! next interval.

use std::time::Duration;

use pulse_testkit::{eventually, Receiver, SmtpCapture};
use serde_json::json;

use super::{events, AlertStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_incident_is_reminded_once_per_renotify_interval() {
    let alerts = AlertStack::start(SmtpCapture::start().await, &[], 2).await;
    alerts.disable_default_rule().await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = alerts
        .create_webhook(&receiver.url("/alerts"), &["event.created"])
        .await;
    receiver.set_secrets(&[&secret]);
    alerts
        .create_rule(json!({
            "name": "still broken",
            "renotify_s": 60,
            "condition": {"kind": "count", "filter": {"status": "error"}, "window_s": 3600,
                          "op": "above", "threshold": 2},
            "channels": {"emails": ["pager@example.com"], "webhook_ids": [webhook]},
        }))
        .await;
    alerts.ingest(&events(5, "job", "error")).await;

    let fired = alerts.wait_mail("pager@example.com", 1).await;
    assert!(
        fired[0].subject.contains("FIRING: still broken"),
        "{}",
        fired[0].subject
    );
    let reminded = eventually(Duration::from_secs(60) + PATIENCE, || async {
        let mail = alerts.mail_to("pager@example.com");
        (mail.len() >= 2).then_some(mail)
    })
    .await
    .expect("a reminder after renotify_s");
    assert!(
        reminded[1].subject.contains("STILL FIRING: still broken"),
        "{}",
        reminded[1].subject
    );
    assert!(
        reminded[1].message_id.starts_with("<alert.reminder."),
        "{}",
        reminded[1].message_id
    );
    assert!(
        reminded[1].message_id.contains(".2@"),
        "the second notice: {}",
        reminded[1].message_id
    );
    assert_ne!(reminded[1].message_id, fired[0].message_id);

    let hooks = eventually(PATIENCE, || async {
        let hooks: Vec<_> = receiver
            .accepted()
            .into_iter()
            .filter(|request| request.body["type"] == "alert.fired")
            .map(|request| request.body)
            .collect();
        (hooks.len() >= 2).then_some(hooks)
    })
    .await
    .expect("two alert.fired webhooks");
    assert_eq!(hooks[0]["data"]["reminder"], false);
    assert_eq!(hooks[1]["data"]["reminder"], true);
    assert_eq!(hooks[0]["data"]["incident_id"], hooks[1]["data"]["incident_id"]);

    // Nothing more inside the next interval.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(alerts.mail_to("pager@example.com").len(), 2);
    let incidents = alerts.incidents("firing").await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["notifications"], 2);
}
