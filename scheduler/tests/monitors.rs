//! Uptime checks end to end: monitors inserted in a real PostgreSQL, checked by real
//! `pulse-scheduler` processes against real local HTTP targets (`pulse_testkit::Receiver`,
//! made slow, failing or healthy again), their notices sent by a real `pulse-worker notify` over
//! SMTP to a real server (`SmtpCapture`) and as signed webhooks to a real receiver, and their
//! state changes pushed to a real SSE client of a real `pulse-api`.
//!
//! Most tests drive the schedule themselves: a monitor is inserted due in an hour and made due
//! now (`next_check_at = now()`) once per check the test wants, waiting for that check's row
//! before the next one, so the order of verdicts is the test's. The replica test lets the
//! schedule run on its own.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use pulse_shared::webhook::secret::Secret;
use pulse_testkit::{eventually, Behaviour, PulseEnv, PulseProcess, Receiver, SmtpCapture, TestDb, TestKafka};
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

/// Fast polling, loopback targets and receivers, quick retries.
fn env(db: &TestDb, kafka: &TestKafka, smtp: &SmtpCapture) -> PulseEnv {
    PulseEnv::new(db, kafka)
        .set("PULSE_MONITOR_ALLOW_NETS", "127.0.0.0/8")
        .set("PULSE_MONITOR_POLL_MS", "100")
        .set("PULSE_WEBHOOK_ALLOW_NETS", "127.0.0.0/8,::1/128")
        .set("PULSE_WEBHOOK_RETRY_SCHEDULE", "1,1,1,1,1,1")
        .set("PULSE_WEBHOOK_BATCH_DELAY_MS", "100")
        .set("PULSE_EMAIL_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1")
        .set("PULSE_SMTP_URL", &smtp.url())
        .set("PULSE_SMTP_FROM", "Pulse Monitors <monitors@pulse.test>")
        .set("PULSE_PUBLIC_URL", "https://pulse.test")
}

/// A monitor row as a test inserts it.
struct NewMonitor {
    url: String,
    timeout_ms: i32,
    failures_before_down: i32,
    renotify_s: i32,
    body_contains: Option<&'static str>,
    max_latency_ms: Option<i32>,
    maintenance: Value,
    emails: Vec<String>,
    webhook_ids: Vec<Uuid>,
    interval_s: i32,
    /// Due now (the schedule runs on its own) rather than in an hour.
    due_now: bool,
}

impl NewMonitor {
    fn new(url: String) -> Self {
        Self {
            url,
            timeout_ms: 2000,
            failures_before_down: 1,
            renotify_s: 0,
            body_contains: None,
            max_latency_ms: None,
            maintenance: json!([]),
            emails: Vec::new(),
            webhook_ids: Vec::new(),
            interval_s: 3600,
            due_now: false,
        }
    }

    async fn insert(&self, client: &Client, project: Uuid) -> Uuid {
        let id = Uuid::now_v7();
        let later = if self.due_now { "0 seconds" } else { "1 hour" };
        client
            .execute(
                &format!(
                    "INSERT INTO monitors (id, project_id, name, url, interval_s, timeout_ms, failures_before_down, \
                     renotify_s, body_contains, max_latency_ms, maintenance, emails, webhook_ids, next_check_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now() + interval '{later}')"
                ),
                &[
                    &id,
                    &project,
                    &format!("monitor {}", &id.simple().to_string()[24..]),
                    &self.url,
                    &self.interval_s,
                    &self.timeout_ms,
                    &self.failures_before_down,
                    &self.renotify_s,
                    &self.body_contains,
                    &self.max_latency_ms,
                    &self.maintenance,
                    &self.emails,
                    &self.webhook_ids,
                ],
            )
            .await
            .expect("insert monitor");
        id
    }
}

async fn count_checks(client: &Client, monitor: Uuid) -> i64 {
    client
        .query_one("SELECT count(*) FROM monitor_checks WHERE monitor_id = $1", &[&monitor])
        .await
        .expect("count checks")
        .get(0)
}

/// Makes `monitor` due now and waits for that check's row; returns `(ok, error_class)`.
async fn check_once(client: &Client, monitor: Uuid) -> (bool, Option<String>) {
    let before = count_checks(client, monitor).await;
    client
        .execute("UPDATE monitors SET next_check_at = now() WHERE id = $1", &[&monitor])
        .await
        .expect("make due");
    let checked = eventually(PATIENCE, || async {
        (count_checks(client, monitor).await > before).then_some(())
    })
    .await;
    assert!(checked.is_some(), "monitor {monitor} was checked");
    let row = client
        .query_one(
            "SELECT ok, error_class FROM monitor_checks WHERE monitor_id = $1 ORDER BY id DESC LIMIT 1",
            &[&monitor],
        )
        .await
        .expect("last check");
    (row.get(0), row.get(1))
}

async fn state(client: &Client, monitor: Uuid) -> String {
    client
        .query_one("SELECT state FROM monitors WHERE id = $1", &[&monitor])
        .await
        .expect("state")
        .get(0)
}

/// Outbox rows (webhook messages) about `monitor` of `message_type` (only while no notify
/// worker expands them).
async fn webhook_messages(client: &Client, monitor: Uuid, message_type: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM webhook_messages WHERE type = $1 AND payload->>'monitor_id' = $2",
            &[&message_type, &monitor.to_string()],
        )
        .await
        .expect("count webhook messages")
        .get(0)
}

async fn emails_to(client: &Client, recipient: &str) -> Vec<String> {
    client
        .query(
            "SELECT kind FROM email_messages WHERE recipient = $1 ORDER BY created_at, id",
            &[&recipient],
        )
        .await
        .expect("emails")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A webhook endpoint of `project` at `url`, inserted as the api would; returns its id and secret.
async fn insert_webhook(client: &Client, project: Uuid, url: &str) -> (Uuid, String) {
    let id = Uuid::now_v7();
    let secret = Secret::generate().as_str().to_owned();
    client
        .execute(
            "INSERT INTO webhooks (id, project_id, name, url, event_types, max_attempts, secret) \
             VALUES ($1, $2, 'monitors', $3, ARRAY['monitor.down', 'monitor.up'], 5, $4)",
            &[&id, &project, &url, &secret],
        )
        .await
        .expect("insert webhook");
    (id, secret)
}

/// Webhooks of `message_type` `receiver` got.
fn hooks(receiver: &Receiver, message_type: &str) -> Vec<Value> {
    receiver
        .received()
        .into_iter()
        .filter(|request| request.body["type"] == message_type)
        .map(|request| {
            assert_eq!(request.verified, vec![true], "signed with the endpoint's secret");
            request.body
        })
        .collect()
}

#[tokio::test]
async fn a_monitor_goes_down_after_n_failures_and_up_again_with_one_notice_each() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Status(503, None));
    let hook = Receiver::start().await;
    let (webhook_id, secret) = insert_webhook(&client, project.id, &hook.url("/hooks")).await;
    hook.set_secrets(&[&secret]);
    let recipient = format!("ops-{}@example.com", Uuid::new_v4().simple());
    let monitor = NewMonitor {
        failures_before_down: 3,
        emails: vec![recipient.clone()],
        webhook_ids: vec![webhook_id],
        ..NewMonitor::new(target.url("/health"))
    }
    .insert(&client, project.id)
    .await;
    let _scheduler = PulseProcess::scheduler(&env).await;
    let _notify = PulseProcess::notify_worker(&env).await;

    assert_eq!(check_once(&client, monitor).await, (false, Some("status".into())));
    assert!(!check_once(&client, monitor).await.0);
    assert_eq!(
        state(&client, monitor).await,
        "pending",
        "two failures of three: not down yet"
    );
    check_once(&client, monitor).await;
    assert_eq!(state(&client, monitor).await, "down", "the third failure in a row");
    // Still down: no second notice.
    check_once(&client, monitor).await;

    let mail = eventually(PATIENCE, || async {
        let mail: Vec<_> = smtp
            .messages()
            .into_iter()
            .filter(|m| m.recipients.contains(&recipient))
            .collect();
        (!mail.is_empty()).then_some(mail)
    })
    .await
    .expect("the monitor.down mail arrives");
    assert!(mail[0].subject.contains("DOWN"), "{}", mail[0].subject);
    assert!(mail[0].text.contains("Error: status: answered 503"), "{}", mail[0].text);
    assert!(mail[0].html.contains("<table>"));
    let down = eventually(PATIENCE, || async {
        let down = hooks(&hook, "monitor.down");
        (!down.is_empty()).then_some(down)
    })
    .await
    .expect("the monitor.down webhook arrives");
    assert_eq!(down[0]["data"]["monitor_id"], monitor.to_string());
    assert_eq!(down[0]["data"]["error_class"], "status");
    assert_eq!(down[0]["data"]["reminder"], false);
    let incidents: i64 = client
        .query_one(
            "SELECT count(*) FROM monitor_incidents WHERE monitor_id = $1 AND resolved_at IS NULL",
            &[&monitor],
        )
        .await
        .expect("incidents")
        .get(0);
    assert_eq!(incidents, 1);

    target.set_behaviour(Behaviour::Accept);
    assert_eq!(check_once(&client, monitor).await, (true, None));
    assert_eq!(state(&client, monitor).await, "up");
    let up = eventually(PATIENCE, || async {
        let up = hooks(&hook, "monitor.up");
        (!up.is_empty()).then_some(up)
    })
    .await
    .expect("the monitor.up webhook arrives");
    assert_eq!(up[0]["data"]["state"], "up");
    assert!(up[0]["data"]["duration_s"].as_i64().is_some());
    let mail = eventually(PATIENCE, || async {
        let mail: Vec<_> = smtp
            .messages()
            .into_iter()
            .filter(|m| m.recipients.contains(&recipient))
            .collect();
        (mail.len() >= 2).then_some(mail)
    })
    .await
    .expect("the monitor.up mail arrives");
    assert!(mail[1].subject.contains("UP"), "{}", mail[1].subject);
    // Exactly one notice each way: in the email outbox (what was sent) and at the receiver
    // (the notify worker expands webhook messages into deliveries and removes them).
    assert_eq!(emails_to(&client, &recipient).await, vec!["monitor.down", "monitor.up"]);
    assert_eq!(hooks(&hook, "monitor.down").len(), 1);
    assert_eq!(hooks(&hook, "monitor.up").len(), 1);
    let resolved: i64 = client
        .query_one(
            "SELECT count(*) FROM monitor_incidents WHERE monitor_id = $1 AND resolved_at IS NOT NULL",
            &[&monitor],
        )
        .await
        .expect("incidents")
        .get(0);
    assert_eq!(resolved, 1);
    let daily: (i32, i32) = client
        .query_one(
            "SELECT checks, ok_checks FROM monitor_daily WHERE monitor_id = $1",
            &[&monitor],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .expect("daily");
    assert_eq!(daily, (5, 1));
}

#[tokio::test]
async fn failures_are_classified_by_what_went_wrong() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let slow = Receiver::start().await;
    slow.set_behaviour(Behaviour::Slow(Duration::from_secs(3)));
    let failing = Receiver::start().await;
    failing.set_behaviour(Behaviour::Status(500, None));
    let healthy = Receiver::start().await;
    let sluggish = Receiver::start().await;
    sluggish.set_behaviour(Behaviour::Slow(Duration::from_millis(400)));
    let closed_port = pulse_testkit::net::free_port();

    let cases = [
        (
            NewMonitor {
                timeout_ms: 300,
                ..NewMonitor::new(slow.url("/t"))
            },
            Some("timeout"),
        ),
        (NewMonitor::new(failing.url("/s")), Some("status")),
        (
            NewMonitor {
                body_contains: Some("healthy"),
                ..NewMonitor::new(healthy.url("/b"))
            },
            Some("body"),
        ),
        (
            NewMonitor {
                max_latency_ms: Some(150),
                ..NewMonitor::new(sluggish.url("/l"))
            },
            Some("latency"),
        ),
        (
            NewMonitor::new(format!("http://127.0.0.1:{closed_port}/c")),
            Some("connect"),
        ),
        // Loopback is allowed as 127.0.0.0/8 only.
        (
            NewMonitor::new(format!("http://[::1]:{}/r", healthy.port())),
            Some("refused"),
        ),
        (NewMonitor::new("http://no-such-host.invalid/d".into()), Some("dns")),
        // HTTPS to a server that speaks plain HTTP: the handshake fails.
        (
            NewMonitor::new(format!("https://127.0.0.1:{}/tls", healthy.port())),
            Some("tls"),
        ),
        (
            NewMonitor {
                body_contains: Some("ok"),
                max_latency_ms: Some(5000),
                ..NewMonitor::new(healthy.url("/ok"))
            },
            None,
        ),
    ];
    let _scheduler = PulseProcess::scheduler(&env).await;
    for (monitor, expected) in cases {
        let id = monitor.insert(&client, project.id).await;
        let (ok, class) = check_once(&client, id).await;
        assert_eq!(class.as_deref(), expected, "{}", monitor.url);
        assert_eq!(ok, expected.is_none());
    }
    let (status, latency): (Option<i32>, Option<i32>) = client
        .query_one(
            "SELECT status_code, latency_ms FROM monitor_checks c JOIN monitors m ON m.id = c.monitor_id \
             WHERE m.url LIKE '%/l'",
            &[],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .expect("latency check");
    assert_eq!(status, Some(200), "a slow answer keeps its status");
    assert!(latency.is_some_and(|ms| ms >= 400), "{latency:?}");
}

#[tokio::test]
async fn maintenance_holds_back_notices() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Status(500, None));
    let hook = Receiver::start().await;
    let (webhook_id, secret) = insert_webhook(&client, project.id, &hook.url("/hooks")).await;
    hook.set_secrets(&[&secret]);
    let quiet = format!("quiet-{}@example.com", Uuid::new_v4().simple());
    let loud = format!("loud-{}@example.com", Uuid::new_v4().simple());
    let now = chrono::Utc::now();
    let in_maintenance = NewMonitor {
        maintenance: json!([{"start": now - chrono::TimeDelta::hours(1), "end": now + chrono::TimeDelta::hours(1)}]),
        emails: vec![quiet.clone()],
        webhook_ids: vec![webhook_id],
        ..NewMonitor::new(target.url("/quiet"))
    }
    .insert(&client, project.id)
    .await;
    // The same failure outside maintenance: notified.
    let control = NewMonitor {
        emails: vec![loud.clone()],
        webhook_ids: vec![webhook_id],
        ..NewMonitor::new(target.url("/loud"))
    }
    .insert(&client, project.id)
    .await;
    let _scheduler = PulseProcess::scheduler(&env).await;

    check_once(&client, in_maintenance).await;
    check_once(&client, control).await;
    assert_eq!(state(&client, in_maintenance).await, "down");
    assert_eq!(state(&client, control).await, "down");
    let flagged: bool = client
        .query_one(
            "SELECT in_maintenance FROM monitor_incidents WHERE monitor_id = $1",
            &[&in_maintenance],
        )
        .await
        .expect("incident")
        .get(0);
    assert!(flagged, "the incident is marked as opened in maintenance");
    target.set_behaviour(Behaviour::Accept);
    check_once(&client, in_maintenance).await;
    assert_eq!(state(&client, in_maintenance).await, "up");

    // The notices are written in the transaction of the state change: what is not in the
    // outboxes now was never sent.
    assert_eq!(emails_to(&client, &quiet).await, Vec::<String>::new());
    assert_eq!(webhook_messages(&client, in_maintenance, "monitor.down").await, 0);
    assert_eq!(webhook_messages(&client, in_maintenance, "monitor.up").await, 0);
    assert_eq!(emails_to(&client, &loud).await, vec!["monitor.down"]);
    assert_eq!(webhook_messages(&client, control, "monitor.down").await, 1);
}

/// The state of the breaker of `127.0.0.1:port`.
async fn breaker(client: &Client, port: u16) -> Option<String> {
    client
        .query_opt(
            "SELECT state FROM monitor_breakers WHERE target = $1",
            &[&format!("127.0.0.1:{port}")],
        )
        .await
        .expect("breaker")
        .map(|row| row.get(0))
}

#[tokio::test]
async fn a_dead_target_opens_its_breaker_is_probed_less_and_recovers() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp)
        .set("PULSE_MONITOR_BREAKER_FAILURES", "3")
        .set("PULSE_MONITOR_BREAKER_OPEN_SECS", "30");
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Slow(Duration::from_secs(5)));
    let mut monitors = Vec::new();
    for path in ["/a", "/b"] {
        monitors.push(
            NewMonitor {
                timeout_ms: 200,
                failures_before_down: 2,
                ..NewMonitor::new(target.url(path))
            }
            .insert(&client, project.id)
            .await,
        );
    }
    let _scheduler = PulseProcess::scheduler(&env).await;
    // Three timeouts of the target, whichever monitor: open.
    assert_eq!(check_once(&client, monitors[0]).await.1.as_deref(), Some("timeout"));
    assert_eq!(check_once(&client, monitors[1]).await.1.as_deref(), Some("timeout"));
    assert_eq!(breaker(&client, target.port()).await.as_deref(), Some("closed"));
    check_once(&client, monitors[0]).await;
    assert_eq!(breaker(&client, target.port()).await.as_deref(), Some("open"));
    let hits = target.received().len();

    // Open: due checks of the target are moved past retry_at, not run.
    client
        .execute(
            "UPDATE monitors SET next_check_at = now() WHERE id = ANY($1)",
            &[&monitors],
        )
        .await
        .expect("make due");
    let deferred = eventually(PATIENCE, || async {
        let moved: i64 = client
            .query_one(
                "SELECT count(*) FROM monitors m JOIN monitor_breakers b ON b.target = $2 \
                 WHERE m.id = ANY($1) AND m.next_check_at >= b.retry_at",
                &[&monitors, &format!("127.0.0.1:{}", target.port())],
            )
            .await
            .expect("moved")
            .get(0);
        (moved == 2).then_some(())
    })
    .await;
    assert!(
        deferred.is_some(),
        "both checks were held back past the breaker's retry_at"
    );
    assert_eq!(target.received().len(), hits, "no request reached the dead target");
    let states: Vec<String> = client
        .query(
            "SELECT state FROM monitors WHERE id = ANY($1) ORDER BY id",
            &[&monitors],
        )
        .await
        .expect("states")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(states, vec!["down", "pending"], "the monitors keep their state");

    // The target heals; after retry_at one probe goes through (half-open) and closes it.
    target.set_behaviour(Behaviour::Accept);
    client
        .execute(
            "UPDATE monitor_breakers SET retry_at = now() WHERE target = $1",
            &[&format!("127.0.0.1:{}", target.port())],
        )
        .await
        .expect("retry now");
    let (ok, _) = check_once(&client, monitors[0]).await;
    assert!(ok, "the half-open probe succeeded");
    assert_eq!(breaker(&client, target.port()).await.as_deref(), Some("closed"));
    assert_eq!(state(&client, monitors[0]).await, "up");
    let (ok, _) = check_once(&client, monitors[1]).await;
    assert!(ok, "checks run again once closed");
    assert_eq!(target.received().len(), hits + 2);
}

#[tokio::test]
async fn two_replicas_run_each_due_check_once() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    let mut monitors = Vec::new();
    for index in 0..20 {
        monitors.push(
            NewMonitor {
                interval_s: 10,
                due_now: true,
                ..NewMonitor::new(target.url(&format!("/m{index}")))
            }
            .insert(&client, project.id)
            .await,
        );
    }
    let (first, _second) = tokio::join!(PulseProcess::scheduler(&env), PulseProcess::scheduler(&env));
    // Two rounds of every monitor (the first due at once, the second an interval later).
    let done = eventually(Duration::from_secs(90), || async {
        let least: i64 = client
            .query_one(
                "SELECT min(n) FROM (SELECT count(c.id) AS n FROM monitors m \
                 LEFT JOIN monitor_checks c ON c.monitor_id = m.id GROUP BY m.id) counts",
                &[],
            )
            .await
            .expect("counts")
            .get(0);
        (least >= 2).then_some(())
    })
    .await;
    assert!(done.is_some(), "every monitor was checked twice");
    // Stop the schedule, then compare what reached the target with what was recorded.
    client
        .execute("UPDATE monitors SET paused = true", &[])
        .await
        .expect("pause");
    let settled = eventually(PATIENCE, || async {
        let leased: i64 = client
            .query_one("SELECT count(*) FROM monitors WHERE lease_until IS NOT NULL", &[])
            .await
            .expect("leases")
            .get(0);
        (leased == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the checks in flight were recorded");
    let mut recorded: HashMap<String, i64> = HashMap::new();
    for row in client
        .query(
            "SELECT m.url, count(*) FROM monitor_checks c JOIN monitors m ON m.id = c.monitor_id GROUP BY m.url",
            &[],
        )
        .await
        .expect("recorded")
    {
        let url: String = row.get(0);
        let path = url
            .rsplit_once('/')
            .map(|(_, path)| format!("/{path}"))
            .unwrap_or_default();
        recorded.insert(path, row.get(1));
    }
    let mut hits: HashMap<String, i64> = HashMap::new();
    for request in target.received() {
        *hits.entry(request.path).or_default() += 1;
    }
    assert_eq!(
        hits, recorded,
        "every check reached the target once and was recorded once"
    );
    let duplicates: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT monitor_id, scheduled_at FROM monitor_checks \
             GROUP BY 1, 2 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .expect("duplicates")
        .get(0);
    assert_eq!(duplicates, 0, "no due time was checked twice");
    // The loop is listed in GET /jobs with this replica's last round.
    let jobs: Value = reqwest::get(format!("{}/jobs", first.base_url()))
        .await
        .expect("GET /jobs")
        .json()
        .await
        .expect("jobs json");
    let listed = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|job| job["job"] == "monitors")
        .cloned()
        .expect("the monitors loop is listed");
    assert_eq!(listed["kind"], "interval");
    assert!(listed["last_run"].is_object(), "{listed}");
}

#[tokio::test]
async fn a_state_change_reaches_the_projects_live_stream() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Status(502, None));
    let monitor = NewMonitor::new(target.url("/live")).insert(&client, project.id).await;
    let api = PulseProcess::api(&env).await;
    let _scheduler = PulseProcess::scheduler(&env).await;

    let response = reqwest::Client::new()
        .get(format!("{}/v1/stream/sse", api.base_url()))
        .bearer_auth(&project.api_key)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    // The stream is open once its greeting (a comment) arrived.
    let mut buffer = String::new();
    while !buffer.contains("\n\n") {
        let chunk = tokio::time::timeout(PATIENCE, body.next())
            .await
            .expect("greeting in time")
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    check_once(&client, monitor).await;
    let frame = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(start) = buffer.find("event: monitor\n") {
                if let Some(end) = buffer[start..].find("\n\n") {
                    return buffer[start..start + end].to_owned();
                }
            }
            match body.next().await {
                Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("stream ended before the monitor message: {buffer}"),
            }
        }
    })
    .await
    .expect("the monitor message arrives");
    let data = frame
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("data line");
    let message: Value = serde_json::from_str(data).expect("json");
    assert_eq!(message["type"], "monitor");
    assert_eq!(message["data"]["monitor_id"], monitor.to_string());
    assert_eq!(message["data"]["state"], "down");
    assert_eq!(message["data"]["previous"], "pending");
    assert_eq!(message["data"]["error_class"], "status");
    assert!(message["data"]["at"].is_string() && message["data"]["name"].is_string());
}

#[tokio::test]
async fn a_monitor_still_down_is_reminded_and_a_notice_held_back_by_maintenance_follows_it() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Status(500, None));
    let reminded = format!("reminded-{}@example.com", Uuid::new_v4().simple());
    let held = format!("held-{}@example.com", Uuid::new_v4().simple());
    let monitor = NewMonitor {
        renotify_s: 3600,
        emails: vec![reminded.clone()],
        ..NewMonitor::new(target.url("/reminded"))
    }
    .insert(&client, project.id)
    .await;
    let now = chrono::Utc::now();
    let in_window = NewMonitor {
        maintenance: json!([{"start": now - chrono::TimeDelta::hours(1), "end": now + chrono::TimeDelta::hours(1)}]),
        emails: vec![held.clone()],
        ..NewMonitor::new(target.url("/held"))
    }
    .insert(&client, project.id)
    .await;
    let _scheduler = PulseProcess::scheduler(&env).await;

    check_once(&client, monitor).await;
    check_once(&client, monitor).await;
    assert_eq!(
        emails_to(&client, &reminded).await,
        vec!["monitor.down"],
        "no reminder within renotify_s"
    );
    // An hour later (the last notice moved back rather than waiting for it).
    client
        .execute(
            "UPDATE monitor_incidents SET last_notified_at = now() - interval '1 hour' WHERE monitor_id = $1",
            &[&monitor],
        )
        .await
        .expect("backdate");
    check_once(&client, monitor).await;
    assert_eq!(
        emails_to(&client, &reminded).await,
        vec!["monitor.down", "monitor.reminder"]
    );
    check_once(&client, monitor).await;
    assert_eq!(
        emails_to(&client, &reminded).await.len(),
        2,
        "one reminder per renotify_s"
    );

    check_once(&client, in_window).await;
    assert_eq!(state(&client, in_window).await, "down");
    assert_eq!(emails_to(&client, &held).await, Vec::<String>::new());
    // The window is over and it is still down: the held-back notice goes out.
    client
        .execute("UPDATE monitors SET maintenance = '[]' WHERE id = $1", &[&in_window])
        .await
        .expect("end maintenance");
    check_once(&client, in_window).await;
    assert_eq!(emails_to(&client, &held).await, vec!["monitor.down"]);
}

#[tokio::test]
async fn sigterm_waits_for_the_checks_in_flight_to_be_recorded() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let smtp = SmtpCapture::start().await;
    let env = env(&db, &kafka, &smtp);
    let project = db.create_project().await;
    let client = db.client().await;
    let target = Receiver::start().await;
    target.set_behaviour(Behaviour::Slow(Duration::from_secs(2)));
    let monitor = NewMonitor {
        timeout_ms: 10_000,
        ..NewMonitor::new(target.url("/slow"))
    }
    .insert(&client, project.id)
    .await;
    let mut scheduler = PulseProcess::scheduler(&env).await;
    client
        .execute("UPDATE monitors SET next_check_at = now() WHERE id = $1", &[&monitor])
        .await
        .expect("make due");
    // The request is at the target, which answers 2 s later: SIGTERM goes while it is in flight.
    let arrived = eventually(PATIENCE, || async { (!target.received().is_empty()).then_some(()) }).await;
    assert!(arrived.is_some(), "the check reached the target");
    let status = scheduler.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert_eq!(
        count_checks(&client, monitor).await,
        1,
        "the check in flight was recorded before exit"
    );
    let (ok, lease): (bool, Option<chrono::DateTime<chrono::Utc>>) = client
        .query_one(
            "SELECT c.ok, m.lease_until FROM monitor_checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.id = $1",
            &[&monitor],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .expect("check");
    assert!(ok, "a slow answer within its timeout passes");
    assert_eq!(lease, None, "the lease ended with the check");
}
