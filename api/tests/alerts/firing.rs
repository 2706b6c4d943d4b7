//! A breach and its end: with two notify workers, a burst of 10,000 error events opens one
//! incident, which sends one email per recipient and one signed `alert.fired` webhook; the end
//! of the burst sends one `alert.resolved` of each with how long it lasted; a second breach
//! within the cooldown sends nothing. The project's default rule mails its owner too.

use std::time::Duration;

use pulse_testkit::{eventually, Receiver, SmtpCapture};
use serde_json::json;

use super::{events, AlertStack, PATIENCE};

fn alert_webhooks(receiver: &Receiver, message_type: &str) -> Vec<serde_json::Value> {
    receiver
        .accepted()
        .into_iter()
        .filter(|request| request.body["type"] == message_type)
        .map(|request| request.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_breach_one_incident_one_email_one_webhook_then_one_recovery() {
    let alerts = AlertStack::start(SmtpCapture::start().await, &[("PULSE_ALERT_ERROR_THRESHOLD", "100")], 2).await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = alerts
        .create_webhook(&receiver.url("/alerts"), &["event.created"])
        .await;
    receiver.set_secrets(&[&secret]);
    let rule = alerts
        .create_rule(json!({
            "name": "checkout errors",
            "cooldown_s": 3600,
            "condition": {"kind": "count", "filter": {"event_type": "checkout", "status": "error"},
                          "window_s": 10, "op": "above", "threshold": 5},
            "channels": {"emails": ["ops@example.com", "oncall@example.com"], "webhook_ids": [webhook]},
        }))
        .await;

    // A burst: 10,000 errors (and some successes, which the filter leaves out).
    alerts.ingest(&events(10_000, "checkout", "error")).await;
    alerts.ingest(&events(50, "checkout", "ok")).await;

    let fired = alerts.wait_mail("ops@example.com", 1).await;
    let fired = &fired[0];
    assert!(
        fired.subject.contains("FIRING") && fired.subject.contains("checkout errors"),
        "{}",
        fired.subject
    );
    assert!(
        fired.message_id.starts_with("<alert.fired.") && fired.message_id.ends_with("@pulse.test>"),
        "{}",
        fired.message_id
    );
    assert!(fired.from.contains("alerts@pulse.test"), "{}", fired.from);
    assert!(
        fired
            .text
            .contains("more than 5 events with event_type checkout, status error in 10 s"),
        "{}",
        fired.text
    );
    assert!(fired.text.contains("Observed: "), "{}", fired.text);
    assert!(fired.text.contains(&format!(
        "https://pulse.test/v1/projects/{}/alerts/{rule}/incidents",
        alerts.project
    )));
    assert!(
        fired.html.contains("FIRING") && fired.html.contains("checkout errors"),
        "{}",
        fired.html
    );
    let oncall = alerts.wait_mail("oncall@example.com", 1).await;
    assert_eq!(oncall[0].message_id, fired.message_id, "one message, two recipients");

    // The default rule ("Errors", more than 100 per 5 minutes, to the owners) fired too.
    let owner = alerts.wait_mail(&alerts.owner_email, 1).await;
    assert!(owner[0].subject.contains("FIRING: Errors"), "{}", owner[0].subject);

    let fired_hooks = eventually(PATIENCE, || async {
        let hooks = alert_webhooks(&receiver, "alert.fired");
        (!hooks.is_empty()).then_some(hooks)
    })
    .await
    .expect("an alert.fired webhook");
    let data = &fired_hooks[0]["data"];
    assert_eq!(data["alert_id"], rule.to_string());
    assert_eq!(data["alert_name"], "checkout errors");
    assert_eq!(data["project_id"], alerts.project.to_string());
    assert_eq!(data["threshold"], 5.0);
    assert_eq!(data["window_s"], 10);
    assert!(data["observed"].as_f64().expect("observed") > 5.0, "{data}");
    assert!(
        data["started_at"].is_string() && data["incident_id"].is_string(),
        "{data}"
    );
    assert!(
        receiver.accepted().iter().all(|request| request.verified == vec![true]),
        "signed"
    );

    // The window empties: one recovery of each, with the incident's length.
    let resolved = alerts.wait_mail("ops@example.com", 2).await;
    assert!(resolved[1].subject.contains("RESOLVED"), "{}", resolved[1].subject);
    assert!(
        resolved[1].message_id.starts_with("<alert.resolved."),
        "{}",
        resolved[1].message_id
    );
    assert!(resolved[1].text.contains("Lasted: "), "{}", resolved[1].text);
    let resolved_hooks = eventually(PATIENCE, || async {
        let hooks = alert_webhooks(&receiver, "alert.resolved");
        (!hooks.is_empty()).then_some(hooks)
    })
    .await
    .expect("an alert.resolved webhook");
    let data = &resolved_hooks[0]["data"];
    assert_eq!(data["incident_id"], fired_hooks[0]["data"]["incident_id"]);
    assert!(data["resolved_at"].is_string(), "{data}");
    assert!(data["duration_s"].as_i64().expect("duration_s") >= 1, "{data}");

    // A second breach within the cooldown (3600 s) opens nothing.
    alerts.ingest(&events(20, "checkout", "error")).await;
    tokio::time::sleep(Duration::from_secs(6)).await;

    let to_ops = alerts.mail_to("ops@example.com");
    assert_eq!(
        to_ops.len(),
        2,
        "one FIRING and one RESOLVED: {:?}",
        to_ops.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_eq!(alerts.mail_to("oncall@example.com").len(), 2);
    assert_eq!(alert_webhooks(&receiver, "alert.fired").len(), 1, "one alert.fired");
    assert_eq!(
        alert_webhooks(&receiver, "alert.resolved").len(),
        1,
        "one alert.resolved"
    );
    let incidents = alerts
        .call(
            reqwest::Method::GET,
            &format!("/v1/projects/{}/alerts/{rule}/incidents", alerts.project),
            None,
        )
        .await
        .expect(200, "incidents")["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["state"], "resolved");
    assert!(incidents[0]["duration_s"].as_i64().expect("duration_s") >= 1);

    // The database agrees: one sent message per recipient and notice, nothing pending.
    let client = alerts.stack.db.client().await;
    let rows = client
        .query(
            "SELECT kind, status, count(*) FROM email_messages WHERE recipient = 'ops@example.com' GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .await
        .expect("email rows");
    let summary: Vec<(String, String, i64)> = rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    assert_eq!(
        summary,
        vec![
            ("alert.fired".to_owned(), "sent".to_owned(), 1),
            ("alert.resolved".to_owned(), "sent".to_owned(), 1)
        ]
    );
}
