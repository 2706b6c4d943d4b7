//! Silence: an `absent` rule (dead man's switch) fires when heartbeats stop and resolves when
//! they return; a `count … below` rule fires while too few events arrive. Both are judged on
//! the evaluation timer, not by arriving events.

use std::time::Duration;

use pulse_testkit::SmtpCapture;
use serde_json::json;

use super::{events, AlertStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_fires_when_events_stop_and_resolves_when_they_return_and_below_fires() {
    let alerts = AlertStack::start(SmtpCapture::start().await, &[], 1).await;
    alerts.disable_default_rule().await;
    alerts
        .create_rule(json!({
            "name": "heartbeat missing",
            "condition": {"kind": "absent", "filter": {"event_type": "heartbeat"}, "window_s": 10},
            "channels": {"emails": ["heartbeat@example.com"]},
        }))
        .await;
    alerts
        .create_rule(json!({
            "name": "too few signups",
            "condition": {"kind": "count", "filter": {"event_type": "signup"}, "window_s": 10,
                          "op": "below", "threshold": 3},
            "channels": {"emails": ["signups@example.com"]},
        }))
        .await;

    // Heartbeats for a while: nothing fires, and the signup rule waits for a whole window.
    for _ in 0..4 {
        alerts.ingest(&events(1, "heartbeat", "ok")).await;
        alerts.ingest(&events(5, "signup", "ok")).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(alerts.mail_to("heartbeat@example.com").is_empty(), "heartbeats arrive");
    assert!(alerts.mail_to("signups@example.com").is_empty(), "enough signups");

    // They stop: both fire.
    let heartbeat = alerts.wait_mail("heartbeat@example.com", 1).await;
    assert!(
        heartbeat[0].subject.contains("FIRING: heartbeat missing"),
        "{}",
        heartbeat[0].subject
    );
    assert!(
        heartbeat[0]
            .text
            .contains("no events with event_type heartbeat in 10 s"),
        "{}",
        heartbeat[0].text
    );
    let signups = alerts.wait_mail("signups@example.com", 1).await;
    assert!(
        signups[0].subject.contains("FIRING: too few signups"),
        "{}",
        signups[0].subject
    );
    assert!(signups[0].text.contains("fewer than 3 events"), "{}", signups[0].text);

    // They return: both resolve.
    alerts.ingest(&events(1, "heartbeat", "ok")).await;
    alerts.ingest(&events(5, "signup", "ok")).await;
    let heartbeat = alerts.wait_mail("heartbeat@example.com", 2).await;
    assert!(heartbeat[1].subject.contains("RESOLVED"), "{}", heartbeat[1].subject);
    let signups = alerts.wait_mail("signups@example.com", 2).await;
    assert!(signups[1].subject.contains("RESOLVED"), "{}", signups[1].subject);
    assert_eq!(alerts.incidents("resolved").await.len(), 2);
    assert!(alerts.incidents("firing").await.is_empty());
}
