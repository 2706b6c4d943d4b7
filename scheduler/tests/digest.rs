//! The scheduler's `digest` job against real PostgreSQL, real `pulse-scheduler` processes and a
//! real SMTP server (`SmtpCapture`, the mail sent by a real `pulse-worker notify`): a day of
//! events inserted with SQL for yesterday (UTC) and its rollups built by `pulse-api admin
//! rebuild-rollups`; two replicas starting at once (each runs the job at start) and two
//! `run-once digest` after them write one message per subscribed member and day, nobody else
//! (an unsubscribed member, a subscriber who is not a member, a deleted project's subscriber)
//! gets one, and the mail carries the day's figures.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use pulse_testkit::{eventually, PulseEnv, PulseProcess, SmtpCapture, TestDb, TestKafka};
use tokio_postgres::Client;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

async fn user(client: &Client, email: &str) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'not-a-login')",
            &[&id, &email],
        )
        .await
        .expect("insert user");
    id
}

async fn member(client: &Client, organization: Uuid, user: Uuid) {
    client
        .execute(
            "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'member')",
            &[&organization, &user],
        )
        .await
        .expect("insert membership");
}

async fn subscribe(client: &Client, project: Uuid, user: Uuid, enabled: bool) {
    client
        .execute(
            "INSERT INTO digest_subscriptions (project_id, user_id, enabled) VALUES ($1, $2, $3)",
            &[&project, &user, &enabled],
        )
        .await
        .expect("insert subscription");
}

/// Inserts an event of `day` at `second` past midnight, with its dedup row.
async fn event(
    client: &Client,
    project: Uuid,
    day: NaiveDate,
    second: i32,
    event_type: &str,
    user: &str,
    status: &str,
) {
    client
        .execute(
            "WITH e AS (SELECT $1::uuid AS id, $3::date::timestamp AT TIME ZONE 'UTC' + $4 * interval '1 second' AS ts),
                  ids AS (INSERT INTO event_ids (id, project_id, \"timestamp\") SELECT id, $2, ts FROM e)
             INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type, user_id, status)
             SELECT id, $2, ts, now(), $5, $6, $7 FROM e",
            &[&Uuid::now_v7(), &project, &day, &f64::from(second), &event_type, &user, &status],
        )
        .await
        .expect("insert event");
}

async fn digest_rows(client: &Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT recipient, message_id FROM email_messages WHERE kind = 'digest.daily' ORDER BY recipient",
            &[],
        )
        .await
        .expect("digest rows")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_two_more_runs_send_each_member_one_digest_a_day() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = PulseEnv::new(&db, &kafka)
        .set("PULSE_SMTP_URL", &smtp.url())
        .set("PULSE_SMTP_FROM", "Pulse <digest@pulse.test>")
        .set("PULSE_PUBLIC_URL", "https://pulse.test")
        .set("PULSE_EMAIL_RETRY_SCHEDULE", "1,1,1,1,1")
        // Due from midnight on: the job's day is always yesterday.
        .set("PULSE_DIGEST_HOUR_UTC", "0");
    let client = db.client().await;

    let project = db.create_project().await;
    let deleted = db.create_project().await;
    client
        .execute("UPDATE projects SET deleted_at = now() WHERE id = $1", &[&deleted.id])
        .await
        .expect("delete project");
    let suffix = Uuid::new_v4().simple().to_string();
    let (first, second, quiet, outsider, of_deleted) = (
        format!("first-{suffix}@example.com"),
        format!("second-{suffix}@example.com"),
        format!("quiet-{suffix}@example.com"),
        format!("outsider-{suffix}@example.com"),
        format!("deleted-{suffix}@example.com"),
    );
    for (address, is_member, subscribed) in [
        (&first, true, Some(true)),
        (&second, true, Some(true)),
        (&quiet, true, Some(false)),
        (&outsider, false, Some(true)),
    ] {
        let id = user(&client, address).await;
        if is_member {
            member(&client, project.organization_id, id).await;
        }
        if let Some(enabled) = subscribed {
            subscribe(&client, project.id, id, enabled).await;
        }
    }
    let id = user(&client, &of_deleted).await;
    member(&client, deleted.organization_id, id).await;
    subscribe(&client, deleted.id, id, true).await;

    // Yesterday: 7 events, 2 users, 3 errors; one event today that must not count.
    let today = Utc::now().date_naive();
    let day = today.checked_sub_days(Days::new(1)).expect("yesterday");
    for (second, user) in [(0, "x"), (3600, "y"), (7200, "x"), (86_399, "y")] {
        event(&client, project.id, day, second, "signup", user, "ok").await;
    }
    for second in [40_000, 40_001, 40_002] {
        event(&client, project.id, day, second, "checkout", "x", "error").await;
    }
    event(&client, project.id, today, 0, "signup", "z", "error").await;
    let mut rebuild = PulseProcess::spawn(
        "pulse-api",
        &[
            "admin",
            "rebuild-rollups",
            "--project",
            &project.id.to_string(),
            "--from",
            &format!("{day}T00:00:00Z"),
            "--to",
            &format!("{today}T00:00:00Z"),
        ],
        &env,
    );
    let status = rebuild.wait(PATIENCE).await;
    assert!(status.success(), "rebuild-rollups: {status}\n{}", rebuild.logs());

    // Two replicas at once, each running the job at start.
    let (env_a, env_b) = (
        env.clone().set("PULSE_SCHEDULER_REPLICA", "replica-a"),
        env.clone().set("PULSE_SCHEDULER_REPLICA", "replica-b"),
    );
    let (a, b) = tokio::join!(PulseProcess::scheduler(&env_a), PulseProcess::scheduler(&env_b));
    let runs = eventually(PATIENCE, || async {
        let finished: i64 = client
            .query_one(
                "SELECT count(*) FROM job_runs WHERE job = 'digest' AND outcome = 'ok'",
                &[],
            )
            .await
            .expect("job runs")
            .get(0);
        let metric = a
            .metric("pulse_scheduler_job_runs_total{job=\"digest\",outcome=\"ok\"}")
            .await
            + a.metric("pulse_scheduler_job_runs_total{job=\"digest\",outcome=\"skipped\"}")
                .await
            + b.metric("pulse_scheduler_job_runs_total{job=\"digest\",outcome=\"ok\"}")
                .await
            + b.metric("pulse_scheduler_job_runs_total{job=\"digest\",outcome=\"skipped\"}")
                .await;
        (finished >= 1 && metric >= 2.0).then_some(finished)
    })
    .await
    .expect("both replicas ran (or skipped) the digest at start");
    assert!(runs >= 1);
    let rows = digest_rows(&client).await;
    assert_eq!(
        rows.iter().map(|(to, _)| to.as_str()).collect::<Vec<_>>(),
        vec![first.as_str(), second.as_str()],
        "{rows:?}"
    );
    assert_eq!(rows[0].1, rows[1].1, "one message, two recipients");

    // Two more runs: nothing more written.
    for _ in 0..2 {
        let mut once = PulseProcess::spawn("pulse-scheduler", &["run-once", "digest"], &env);
        let status = once.wait(PATIENCE).await;
        assert!(status.success(), "run-once digest: {status}\n{}", once.logs());
    }
    assert_eq!(digest_rows(&client).await, rows);
    let summaries: Vec<String> = client
        .query(
            "SELECT summary FROM job_runs WHERE job = 'digest' AND outcome = 'ok' ORDER BY tick_at",
            &[],
        )
        .await
        .expect("summaries")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let last = summaries.last().expect("a run");
    assert_eq!(
        last,
        &format!("digest of {day}: 1 projects, 0 emails written, 2 already had it")
    );
    assert!(
        summaries
            .iter()
            .any(|summary| summary == &format!("digest of {day}: 1 projects, 2 emails written, 0 already had it")),
        "{summaries:?}"
    );

    // The notify worker sends them: one each, with the day's figures.
    let _notify = PulseProcess::notify_worker(&env).await;
    let sent = eventually(PATIENCE, || async {
        let sent: i64 = client
            .query_one(
                "SELECT count(*) FROM email_messages WHERE kind = 'digest.daily' AND status = 'sent'",
                &[],
            )
            .await
            .expect("sent")
            .get(0);
        (sent == 2).then_some(sent)
    })
    .await;
    assert_eq!(sent, Some(2));
    // Recorded as sent only after the server accepted: every message is there by now.
    let messages = smtp.messages();
    let mut recipients: Vec<String> = messages.iter().flat_map(|m| m.recipients.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, vec![first.clone(), second.clone()]);
    for message in &messages {
        assert_eq!(message.subject, format!("[Pulse] Daily digest of test for {day}"));
        for line in [
            "Events: 7",
            "Unique users: 2",
            "Error ratio: 42.9 % (3 of 7 events)",
            "  signup: 4",
            "  checkout: 3",
        ] {
            assert!(message.text.lines().any(|l| l == line), "{line:?} in\n{}", message.text);
        }
    }
}
