//! The daily digest end to end from the api's side: the subscription routes
//! (`GET/PUT /v1/projects/{project_id}/digest`: any member, bad bodies 400, non-members 404),
//! and `pulse-api admin send-digest` for a day of events ingested over HTTP with timestamps in
//! that day (stored with their rollups by a real persist worker from real Kafka), alert and
//! monitor incidents inserted around it, the mail sent by a real `pulse-worker notify` to a
//! real SMTP server (`SmtpCapture`): each subscribed member gets exactly one message with the
//! day's exact figures, an unsubscribed member, a member who left and a non-member get none,
//! and a re-send goes out again under a new Message-ID.

use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveTime, Utc};
use pulse_testkit::management::{ManagementStack, User};
use pulse_testkit::{eventually, Captured, PulseProcess, SmtpCapture};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

const SETTINGS: &[(&str, &str)] = &[
    ("PULSE_EMAIL_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1"),
    ("PULSE_SMTP_FROM", "Pulse <digest@pulse.test>"),
    ("PULSE_PUBLIC_URL", "https://pulse.test"),
];

fn digest_path(project: Uuid) -> String {
    format!("/v1/projects/{project}/digest")
}

async fn put(stack: &ManagementStack, user: &User, project: Uuid, body: Value) -> pulse_testkit::management::Answer {
    stack
        .call(Method::PUT, &digest_path(project), Some(&user.access), Some(body))
        .await
}

async fn add_member(stack: &ManagementStack, owner: &User, email: &str) {
    stack
        .post(
            &format!("/v1/organizations/{}/members", owner.organization),
            Some(&owner.access),
            json!({"email": email, "role": "member"}),
        )
        .await
        .expect(201, "add member");
}

fn email() -> String {
    format!("m-{}@example.com", Uuid::new_v4().simple())
}

#[tokio::test]
async fn members_turn_their_own_digest_on_and_off_and_others_cannot() {
    let stack = ManagementStack::start(&[]).await;
    let owner = stack.register(&email()).await;
    let project = stack.project(&owner, json!({})).await;
    let member_email = email();
    let member = stack.register(&member_email).await;
    add_member(&stack, &owner, &member_email).await;
    let stranger = stack.register(&email()).await;

    // Nothing yet: off.
    let read = stack.get(&digest_path(project), &owner.access).await.expect(200, "get");
    assert_eq!(
        read,
        json!({"project_id": project, "enabled": false, "updated_at": null})
    );

    // On for the member (a plain member may), and only for them.
    let on = put(&stack, &member, project, json!({"enabled": true}))
        .await
        .expect(200, "put on");
    assert_eq!(
        (on["project_id"].clone(), on["enabled"].clone()),
        (json!(project), json!(true))
    );
    assert!(on["updated_at"].is_string(), "{on}");
    let read = stack
        .get(&digest_path(project), &member.access)
        .await
        .expect(200, "get");
    assert_eq!(read["enabled"], true);
    let read = stack.get(&digest_path(project), &owner.access).await.expect(200, "get");
    assert_eq!(read["enabled"], false);

    // Off again (the row is updated, not duplicated).
    let off = put(&stack, &member, project, json!({"enabled": false}))
        .await
        .expect(200, "put off");
    assert_eq!(off["enabled"], false);
    let read = stack
        .get(&digest_path(project), &member.access)
        .await
        .expect(200, "get");
    assert_eq!(read["enabled"], false);
    put(&stack, &member, project, json!({"enabled": true}))
        .await
        .expect(200, "on again");
    let client = stack.db.client().await;
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM digest_subscriptions WHERE project_id = $1 AND enabled",
            &[&project],
        )
        .await
        .expect("rows")
        .get(0);
    assert_eq!(rows, 1);

    // Bad bodies: 400 with the error envelope.
    for body in [
        json!({}),
        json!({"enabled": "yes"}),
        json!({"enabled": null}),
        json!({"enabled": true, "colour": "red"}),
        json!([true]),
        json!(true),
    ] {
        let answer = put(&stack, &owner, project, body.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "INVALID_JSON", "{body}: {}", answer.body);
    }

    // Someone outside the organization: 404 (never learns the project exists), and no token: 401.
    let answer = stack.get(&digest_path(project), &stranger.access).await;
    assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);
    let answer = put(&stack, &stranger, project, json!({"enabled": true})).await;
    assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);
    let answer = stack.call(Method::GET, &digest_path(project), None, None).await;
    assert_eq!(answer.status.as_u16(), 401, "{}", answer.body);
    let answer = stack.get(&digest_path(Uuid::now_v7()), &owner.access).await;
    assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);
    let strangers: i64 = client
        .query_one(
            "SELECT count(*) FROM digest_subscriptions WHERE user_id = $1",
            &[&stranger.id],
        )
        .await
        .expect("rows")
        .get(0);
    assert_eq!(strangers, 0);
}

/// `time` on `day`, RFC 3339.
fn at(day: NaiveDate, time: &str) -> String {
    let time: NaiveTime = time.parse().expect("time");
    day.and_time(time).and_utc().to_rfc3339()
}

fn event(day: NaiveDate, time: &str, event_type: &str, user: Option<&str>, status: Option<&str>) -> Value {
    let mut event = json!({"id": Uuid::now_v7(), "timestamp": at(day, time), "event_type": event_type});
    if let Some(user) = user {
        event["user_id"] = json!(user);
    }
    if let Some(status) = status {
        event["status"] = json!(status);
    }
    event
}

fn mail_to(smtp: &SmtpCapture, recipient: &str) -> Vec<Captured> {
    smtp.messages()
        .into_iter()
        .filter(|message| message.recipients.iter().any(|to| to == recipient))
        .collect()
}

async fn wait_mail(smtp: &SmtpCapture, recipient: &str, count: usize) -> Vec<Captured> {
    eventually(PATIENCE, || async {
        let mail = mail_to(smtp, recipient);
        (mail.len() >= count).then_some(mail)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "expected {count} messages to {recipient}, got {:?}",
            mail_to(smtp, recipient)
        )
    })
}

/// Runs `pulse-api admin send-digest` and returns what it printed.
async fn send_digest(stack: &ManagementStack, project: Uuid, day: NaiveDate) -> Value {
    let mut command = PulseProcess::spawn(
        "pulse-api",
        &[
            "admin",
            "send-digest",
            "--project",
            &project.to_string(),
            "--date",
            &day.to_string(),
        ],
        &stack.env,
    );
    let status = command.wait(PATIENCE).await;
    let logs = command.logs();
    assert!(status.success(), "send-digest: {status}\n{logs}");
    logs.lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line).ok().filter(Value::is_object))
        .unwrap_or_else(|| panic!("no JSON printed:\n{logs}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_digest_mails_each_subscribed_member_the_days_exact_figures() {
    let smtp = SmtpCapture::start().await;
    let smtp_url = smtp.url();
    let mut settings = SETTINGS.to_vec();
    settings.push(("PULSE_SMTP_URL", &smtp_url));
    let stack = ManagementStack::start(&settings).await;
    let _worker = PulseProcess::worker(&stack.env).await;
    let _notify = PulseProcess::notify_worker(&stack.env).await;

    let owner_email = email();
    let owner = stack.register(&owner_email).await;
    let project = stack.project(&owner, json!({"name": "shop <main>"})).await;
    let (_, key) = stack
        .key(&owner, project, json!({"name": "rw", "scopes": ["ingest", "read"]}))
        .await;
    let (subscribed_email, quiet_email, leaver_email) = (email(), email(), email());
    let subscribed = stack.register(&subscribed_email).await;
    let _quiet = stack.register(&quiet_email).await;
    let leaver = stack.register(&leaver_email).await;
    for member in [&subscribed_email, &quiet_email, &leaver_email] {
        add_member(&stack, &owner, member).await;
    }
    for user in [&owner, &subscribed, &leaver] {
        put(&stack, user, project, json!({"enabled": true}))
            .await
            .expect(200, "subscribe");
    }
    // The leaver subscribed, then left the organization: no digest for them.
    stack
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{}/members/{}", owner.organization, leaver.id),
            Some(&owner.access),
            None,
        )
        .await
        .expect(204, "remove member");

    // The day: yesterday (UTC). 12 events in it, 3 users, 3 errors; 2 just outside it.
    let today = Utc::now().date_naive();
    let day = today.checked_sub_days(Days::new(1)).expect("yesterday");
    let before = day.checked_sub_days(Days::new(1)).expect("the day before");
    let mut events = Vec::new();
    for (time, user) in [
        ("00:00:00", "u1"),
        ("01:00:00", "u2"),
        ("02:00:00", "u3"),
        ("03:00:00", "u1"),
        ("23:59:59", "u2"),
    ] {
        events.push(event(day, time, "signup", Some(user), Some("ok")));
    }
    for (time, status) in [
        ("10:00:00", "error"),
        ("10:01:00", "error"),
        ("10:02:00", "error"),
        ("10:03:00", "ok"),
    ] {
        events.push(event(day, time, "checkout", Some("u1"), Some(status)));
    }
    events.push(event(day, "12:00:00", "page", None, None));
    events.push(event(day, "12:30:00", "page", None, None));
    events.push(event(day, "13:00:00", "<b>bold</b>", None, None));
    events.push(event(before, "23:59:59", "signup", Some("u9"), Some("error")));
    events.push(event(today, "00:00:00", "signup", Some("u9"), Some("error")));
    let answer = stack
        .post("/v1/events/batch", Some(&key), json!({"events": events}))
        .await
        .expect(202, "batch");
    assert_eq!(answer["accepted"], 14, "{answer}");
    assert_eq!(stack.db.wait_for_events(project, 14, PATIENCE).await, 14);

    // Alert incidents: one fired in the day, one open across its start, one over before it.
    // (Of the default rule, turned off so that nothing else mails the owner.)
    let client = stack.db.client().await;
    let rule: Uuid = client
        .query_one("SELECT id FROM alert_rules WHERE project_id = $1 LIMIT 1", &[&project])
        .await
        .expect("the default rule")
        .get(0);
    stack
        .call(
            Method::PATCH,
            &format!("/v1/projects/{project}/alerts/{rule}"),
            Some(&owner.access),
            Some(json!({"enabled": false})),
        )
        .await
        .expect(200, "turn the default rule off");
    for (name, started, resolved) in [
        ("errors <5m>", at(day, "10:00:00"), at(day, "10:30:00")),
        ("overnight", at(before, "23:00:00"), at(day, "01:00:00")),
        ("long ago", at(before, "08:00:00"), at(before, "12:00:00")),
    ] {
        client
            .execute(
                "INSERT INTO alert_incidents (id, rule_id, project_id, state, rule_name, kind, op, threshold, window_s,
                                              observed, last_observed, started_at, resolved_at, last_notified_at)
                 VALUES ($1, $2, $3, 'resolved', $4, 'count', 'above', 2, 300, 3, 3, $5::text::timestamptz,
                         $6::text::timestamptz, $5::text::timestamptz)",
                &[&Uuid::now_v7(), &rule, &project, &name, &started, &resolved],
            )
            .await
            .expect("insert incident");
    }
    // A monitor down 330 s in the day, then from 23:50 on (still open: 600 s inside the day).
    let monitor = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO monitors (id, project_id, name, url, interval_s, paused) VALUES ($1, $2, 'api <eu>', 'http://127.0.0.1:9/', 60, true)",
            &[&monitor, &project],
        )
        .await
        .expect("insert monitor");
    for (started, resolved) in [
        (at(before, "10:00:00"), Some(at(before, "11:00:00"))),
        (at(day, "06:00:00"), Some(at(day, "06:05:30"))),
        (at(day, "23:50:00"), None),
    ] {
        client
            .execute(
                "INSERT INTO monitor_incidents (id, monitor_id, project_id, started_at, resolved_at, error_class)
                 VALUES ($1, $2, $3, $4::text::timestamptz, $5::text::timestamptz, 'connect')",
                &[&Uuid::now_v7(), &monitor, &project, &started, &resolved],
            )
            .await
            .expect("insert monitor incident");
    }

    let sent = send_digest(&stack, project, day).await;
    assert_eq!(sent["recipients"], 2, "{sent}");
    assert_eq!(sent["sequence"], 0, "{sent}");
    assert_eq!(sent["date"], day.to_string(), "{sent}");

    let to_owner = wait_mail(&smtp, &owner_email, 1).await;
    let to_member = wait_mail(&smtp, &subscribed_email, 1).await;
    let mail = &to_owner[0];
    assert_eq!(mail.subject, format!("[Pulse] Daily digest of shop <main> for {day}"));
    assert_eq!(
        mail.message_id,
        format!("<{}>", sent["message_id"].as_str().expect("id"))
    );
    assert_eq!(to_member[0].message_id, mail.message_id);
    let text: Vec<&str> = mail.text.lines().collect();
    for line in [
        "Events: 12".to_owned(),
        "Unique users: 3".to_owned(),
        "Error ratio: 25.0 % (3 of 12 events)".to_owned(),
        "Alert incidents: 2".to_owned(),
        "Monitor downtime: 15m 30s".to_owned(),
        "  signup: 5".to_owned(),
        "  checkout: 4".to_owned(),
        "  page: 2".to_owned(),
        "  <b>bold</b>: 1".to_owned(),
        format!("  overnight: fired {before} 23:00 UTC, resolved {day} 01:00 UTC"),
        format!("  errors <5m>: fired {day} 10:00 UTC, resolved {day} 10:30 UTC"),
        "  api <eu>: 15m 30s down (2 incidents)".to_owned(),
        format!(
            "Details: https://pulse.test/v1/analytics/overview?project_id={project}&start={day}T00:00:00Z&end={today}T00:00:00Z"
        ),
    ] {
        assert!(text.contains(&line.as_str()), "{line:?} in\n{}", mail.text);
    }
    assert!(!mail.text.contains("long ago"), "{}", mail.text);
    // The top types in order; what the project named is escaped in the HTML part.
    let signup = mail.text.find("  signup: 5").expect("signup");
    let checkout = mail.text.find("  checkout: 4").expect("checkout");
    assert!(signup < checkout);
    assert!(!mail.html.contains("<b>bold</b>"), "{}", mail.html);
    assert!(mail.html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{}", mail.html);
    assert!(mail.html.contains("shop &lt;main&gt;"), "{}", mail.html);
    assert!(mail.html.contains("api &lt;eu&gt;"), "{}", mail.html);

    // A re-send goes out again, under a message id of its own; still only to the two.
    let again = send_digest(&stack, project, day).await;
    assert_eq!(
        (again["recipients"].clone(), again["sequence"].clone()),
        (json!(2), json!(1)),
        "{again}"
    );
    assert_ne!(again["message_id"], sent["message_id"]);
    let to_owner = wait_mail(&smtp, &owner_email, 2).await;
    wait_mail(&smtp, &subscribed_email, 2).await;
    assert_ne!(to_owner[0].message_id, to_owner[1].message_id);
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM email_messages WHERE kind = 'digest.daily' AND project_id = $1",
            &[&project],
        )
        .await
        .expect("rows")
        .get(0);
    assert_eq!(rows, 4);
    let sent_rows = eventually(PATIENCE, || async {
        let sent: i64 = client
            .query_one(
                "SELECT count(*) FROM email_messages WHERE kind = 'digest.daily' AND status = 'sent'",
                &[],
            )
            .await
            .expect("rows")
            .get(0);
        (sent == 4).then_some(sent)
    })
    .await;
    assert_eq!(sent_rows, Some(4));
    // Everything the outbox held was delivered: nobody else got anything.
    let recipients: Vec<String> = smtp
        .messages()
        .iter()
        .flat_map(|message| message.recipients.clone())
        .collect();
    assert_eq!(recipients.len(), 4, "{recipients:?}");
    for address in [&quiet_email, &leaver_email] {
        assert!(!recipients.contains(address), "{address} got mail: {recipients:?}");
    }
    // A project that does not exist: refused.
    let mut missing = PulseProcess::spawn(
        "pulse-api",
        &[
            "admin",
            "send-digest",
            "--project",
            &Uuid::now_v7().to_string(),
            "--date",
            &day.to_string(),
        ],
        &stack.env,
    );
    let status = missing.wait(PATIENCE).await;
    assert!(!status.success(), "{}", missing.logs());
    assert!(missing.logs().contains("no live project"), "{}", missing.logs());
}
