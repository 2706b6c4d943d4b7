//! The retention job against real PostgreSQL: two projects keeping 3 and 30 days, rows of
//! every kept table at several ages inserted straight with SQL (one day old enough for its
//! whole daily partition to go, one partition some project still keeps), then exactly what
//! must remain remains, counted per table, project and age; a second run removes nothing;
//! pending webhook deliveries and emails stay however old; uptime checks, daily uptime, monitor
//! incidents and job runs by their own retentions; batches smaller than the data give the same
//! result.

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_testkit::{PulseEnv, PulseProcess, TestDb, TestKafka};
use tokio_postgres::Client;
use uuid::Uuid;

/// A timestamp `label` days (or hours) ago, as SQL; rows of one label spread from it by `i`
/// seconds (older), or, for the two partition days, from that day's noon (later, same day).
fn at(label: &str) -> String {
    match label {
        "1h" => "now() - interval '1 hour' - i * interval '1 second'".into(),
        "5d" | "45d" => format!(
            "((now() AT TIME ZONE 'UTC')::date - {})::timestamp AT TIME ZONE 'UTC' + interval '12 hours' + i * interval '1 second'",
            label.trim_end_matches('d')
        ),
        days => format!(
            "now() - interval '{} days' - i * interval '1 second'",
            days.trim_end_matches('d')
        ),
    }
}

const RAW_AGES: [&str; 6] = ["1h", "2d", "5d", "20d", "40d", "45d"];
const MINUTE_AGES: [&str; 4] = ["1h", "2d", "5d", "20d"];
const HOUR_AGES: [&str; 5] = ["1d", "100d", "399d", "401d", "500d"];

/// Age in days of a label ("1h" is 1/24).
fn age(label: &str) -> f64 {
    if label == "1h" {
        1.0 / 24.0
    } else {
        label.trim_end_matches('d').parse().expect("age label")
    }
}

/// Creates the daily partitions of 45 and 5 days ago of both partitioned tables (before any
/// row of those days lands in the DEFAULT partition).
async fn create_old_partitions(client: &Client) {
    client
        .batch_execute(
            "DO $$
             DECLARE day date; parent text;
             BEGIN
               FOREACH day IN ARRAY ARRAY[(now() AT TIME ZONE 'UTC')::date - 45, (now() AT TIME ZONE 'UTC')::date - 5] LOOP
                 FOREACH parent IN ARRAY ARRAY['events', 'metric_points'] LOOP
                   EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                     parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
                     day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
                 END LOOP;
               END LOOP;
             END $$",
        )
        .await
        .expect("create old partitions");
}

/// Inserts `k` rows of every kind, per age, for a project.
async fn seed(client: &Client, project: Uuid, k: i64) {
    for label in RAW_AGES {
        let ts = at(label);
        client
            .execute(
                &format!(
                    "WITH rows AS (SELECT gen_random_uuid() AS id, {ts} AS ts FROM generate_series(1, $2::bigint) AS i),
                     ids AS (INSERT INTO event_ids (id, project_id, \"timestamp\") SELECT id, $1, ts FROM rows)
                     INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type)
                     SELECT id, $1, ts, now(), '{label}' FROM rows"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert events");
        client
            .execute(
                &format!(
                    "WITH rows AS (SELECT gen_random_uuid() AS id, {ts} AS ts FROM generate_series(1, $2::bigint) AS i),
                     ids AS (INSERT INTO metric_point_ids (id, project_id, \"timestamp\") SELECT id, $1, ts FROM rows)
                     INSERT INTO metric_points (id, project_id, name, \"timestamp\", value, received_at)
                     SELECT id, $1, '{label}', ts, 1.0, now() FROM rows"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert metric points");
    }
    for label in MINUTE_AGES {
        let ts = at(label);
        client
            .execute(
                &format!(
                    "INSERT INTO event_rollups (project_id, bucket, event_type, events, durations, duration_sum, compacted)
                     SELECT $1, date_trunc('minute', {ts}), '{label}', 1, 0, 0, true FROM generate_series(1, $2::bigint) AS i"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert minute rollups");
        client
            .execute(
                &format!(
                    "INSERT INTO metric_rollups (project_id, name, bucket, count, sum, min, max, sketch)
                     SELECT $1, '{label}', date_trunc('minute', {ts}), 1, 1, 1, 1, '\\x00' FROM generate_series(1, $2::bigint) AS i"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert metric rollups");
    }
    // A delta the compaction has not folded yet, past every minute retention: left to it.
    client
        .execute(
            &format!(
                "INSERT INTO event_rollups (project_id, bucket, event_type, events, durations, duration_sum, compacted)
                 SELECT $1, date_trunc('minute', {}), 'delta', 1, 0, 0, false FROM generate_series(1, $2::bigint) AS i",
                at("20d")
            ),
            &[&project, &k],
        )
        .await
        .expect("insert rollup delta");
    for label in HOUR_AGES {
        let days = age(label);
        client
            .execute(
                &format!(
                    "INSERT INTO event_rollups_hourly (project_id, bucket, event_type, source, events, durations, duration_sum)
                     SELECT $1, date_trunc('hour', now() - interval '{days} days'), '{label}', i::text, 1, 0, 0
                     FROM generate_series(1, $2::bigint) AS i"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert hourly rollups");
        // One row per hour: that hour and the later ones of the next day, so that none of
        // them is within an hour of the 400-day line (a row an hour from it would cross it
        // while the test runs, and be removed by a later tick, when it runs at xx:59).
        client
            .execute(
                &format!(
                    "INSERT INTO event_rollups_hourly_totals (project_id, bucket, events, durations, duration_sum)
                     SELECT $1, date_trunc('hour', now() - interval '{days} days') + i * interval '1 hour', 1, 0, 0
                     FROM generate_series(0, $2::bigint - 1) AS i"
                ),
                &[&project, &totals_rows(k)],
            )
            .await
            .expect("insert hourly totals");
    }

    // Webhook deliveries with two attempts each: (type label, status, completed days ago,
    // created days ago).
    let webhook = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO webhooks (id, project_id, name, url, event_types, max_attempts, secret)
             VALUES ($1, $2, 'hook', 'https://example.com/hook', ARRAY['event.created'], 3, 'whsec_' || gen_random_uuid()::text)",
            &[&webhook, &project],
        )
        .await
        .expect("insert webhook");
    for (label, status, completed, created) in [
        ("succeeded_40d", "succeeded", Some(40), 40),
        ("failed_40d", "failed", Some(40), 41),
        ("succeeded_10d", "succeeded", Some(10), 10),
        ("pending_100d", "pending", None, 100),
    ] {
        let completed = completed.map_or("NULL".to_owned(), |days| format!("now() - interval '{days} days'"));
        client
            .execute(
                &format!(
                    "WITH rows AS (
                         INSERT INTO webhook_deliveries (id, webhook_id, project_id, message_id, type, status, created_at, completed_at, next_attempt_at)
                         SELECT gen_random_uuid(), $1, $2, 'msg_' || gen_random_uuid(), '{label}', '{status}',
                                now() - interval '{created} days', {completed},
                                CASE WHEN '{status}' = 'pending' THEN now() + interval '1 hour' END
                         FROM generate_series(1, $3::bigint) RETURNING id)
                     INSERT INTO webhook_attempts (id, delivery_id, webhook_id, attempt, attempted_at, duration_ms)
                     SELECT gen_random_uuid(), rows.id, $1, n, now() - interval '{created} days', 5
                     FROM rows, generate_series(1, 2) AS n"
                ),
                &[&webhook, &project, &k],
            )
            .await
            .expect("insert deliveries");
    }

    // Emails with two attempts each: (kind label, status, sent days ago, created days ago).
    for (label, status, sent, created) in [
        ("sent_40d", "sent", Some(40), 40),
        ("failed_40d", "failed", None, 40),
        ("sent_10d", "sent", Some(10), 10),
        ("pending_100d", "pending", None, 100),
    ] {
        let sent = sent.map_or("NULL".to_owned(), |days| format!("now() - interval '{days} days'"));
        client
            .execute(
                &format!(
                    "WITH rows AS (
                         INSERT INTO email_messages (id, project_id, kind, message_id, recipient, subject, text_body, html_body, status, created_at, sent_at)
                         SELECT gen_random_uuid(), $1, '{label}', '<' || gen_random_uuid() || '@pulse>', 'ops@example.com', 's', 't', 'h',
                                '{status}', now() - interval '{created} days', {sent}
                         FROM generate_series(1, $2::bigint) RETURNING id)
                     INSERT INTO email_attempts (id, email_id, attempt, attempted_at, duration_ms)
                     SELECT gen_random_uuid(), rows.id, n, now() - interval '{created} days', 5
                     FROM rows, generate_series(1, 2) AS n"
                ),
                &[&project, &k],
            )
            .await
            .expect("insert emails");
    }

    // Alert incidents: resolved 500 and 100 days ago, and one still firing since 500 days.
    let rule = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO alert_rules (id, project_id, name, kind, window_s) VALUES ($1, $2, 'rule', 'count', 60)",
            &[&rule, &project],
        )
        .await
        .expect("insert rule");
    for (label, state, resolved, count) in [
        ("resolved_500d", "resolved", "now() - interval '500 days'", k),
        ("resolved_100d", "resolved", "now() - interval '100 days'", k),
        ("firing_500d", "firing", "NULL", 1),
    ] {
        client
            .execute(
                &format!(
                    "INSERT INTO alert_incidents (id, rule_id, project_id, state, rule_name, kind, op, threshold, window_s,
                                                  observed, last_observed, started_at, resolved_at, last_notified_at)
                     SELECT gen_random_uuid(), $1, $2, '{state}', '{label}', 'count', 'above', 1, 60, 2, 2,
                            now() - interval '501 days', {resolved}, now() - interval '501 days'
                     FROM generate_series(1, $3::bigint)"
                ),
                &[&rule, &project, &count],
            )
            .await
            .expect("insert incidents");
    }

    // Password resets of a user of this project's test: used / expired two days ago (gone), a
    // live one and one used an hour ago (kept a day).
    let user = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO users (id, email, password_hash) VALUES ($1, gen_random_uuid()::text || '@example.com', 'x')",
            &[&user],
        )
        .await
        .expect("insert user");
    for (expires, used) in [
        ("now() + interval '1 hour'", "now() - interval '2 days'"),
        ("now() - interval '2 days'", "NULL"),
        ("now() + interval '1 hour'", "NULL"),
        ("now() + interval '1 hour'", "now() - interval '1 hour'"),
    ] {
        client
            .execute(
                &format!(
                    "INSERT INTO password_resets (token_hash, user_id, expires_at, used_at)
                     SELECT decode(md5(gen_random_uuid()::text), 'hex'), $1, {expires}, {used}
                     FROM generate_series(1, $2::bigint)"
                ),
                &[&user, &k],
            )
            .await
            .expect("insert password resets");
    }

    // Uptime monitors (paused: the serving schedulers of the two-replica test would check them
    // and add rows): checks 1 hour, 2 and 40 days old (checks are kept 32 days), daily
    // uptime of 1, 100 and 500 days ago (kept 400), incidents resolved 500 and 100 days ago and
    // one open since 500 days.
    let monitor = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO monitors (id, project_id, name, url, interval_s, paused) VALUES ($1, $2, 'm', 'http://127.0.0.1:9/', 60, true)",
            &[&monitor, &project],
        )
        .await
        .expect("insert monitor");
    for label in ["1h", "2d", "40d"] {
        client
            .execute(
                &format!(
                    "INSERT INTO monitor_checks (monitor_id, checked_at, ok, error)
                     SELECT $1, {}, true, '{label}' FROM generate_series(1, $2::bigint) AS i",
                    at(label)
                ),
                &[&monitor, &k],
            )
            .await
            .expect("insert checks");
    }
    // One monitor per age of daily rows, so that k consecutive days of each never overlap.
    for days in [1, 100, 500] {
        let daily_monitor = Uuid::now_v7();
        client
            .execute(
                "INSERT INTO monitors (id, project_id, name, url, interval_s, paused) VALUES ($1, $2, 'd', 'http://127.0.0.1:9/', 60, true)",
                &[&daily_monitor, &project],
            )
            .await
            .expect("insert monitor");
        client
            .execute(
                "INSERT INTO monitor_daily (monitor_id, day, checks, ok_checks)
                 SELECT $1, (now() AT TIME ZONE 'UTC')::date - $2::int - i::int, 10, 9 FROM generate_series(0, $3::bigint - 1) AS i",
                &[&daily_monitor, &days, &k],
            )
            .await
            .expect("insert daily uptime");
    }
    for (label, resolved, count) in [
        ("resolved_500d", "now() - interval '500 days'", k),
        ("resolved_100d", "now() - interval '100 days'", k),
        ("open_500d", "NULL", 1),
    ] {
        client
            .execute(
                &format!(
                    "INSERT INTO monitor_incidents (id, monitor_id, project_id, started_at, resolved_at, error)
                     SELECT gen_random_uuid(), $1, $2, now() - interval '501 days', {resolved}, '{label}'
                     FROM generate_series(1, $3::bigint)"
                ),
                &[&monitor, &project, &count],
            )
            .await
            .expect("insert monitor incidents");
    }
}

fn totals_rows(k: i64) -> i64 {
    k.min(24)
}

/// Rows per (table, project, label) for the given projects.
async fn census(client: &Client, projects: &[(&str, Uuid)]) -> BTreeMap<String, i64> {
    let queries = [
        ("events", "SELECT event_type, count(*) FROM events WHERE project_id = $1 GROUP BY 1"),
        (
            "event_ids",
            "SELECT e.event_type, count(*) FROM event_ids i JOIN events e ON e.id = i.id WHERE i.project_id = $1 GROUP BY 1",
        ),
        (
            "orphan_event_ids",
            "SELECT 'none', count(*) FROM event_ids i WHERE i.project_id = $1 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = i.id) HAVING count(*) > 0",
        ),
        ("metric_points", "SELECT name, count(*) FROM metric_points WHERE project_id = $1 GROUP BY 1"),
        (
            "metric_point_ids",
            "SELECT p.name, count(*) FROM metric_point_ids i JOIN metric_points p ON p.id = i.id WHERE i.project_id = $1 GROUP BY 1",
        ),
        (
            "orphan_metric_point_ids",
            "SELECT 'none', count(*) FROM metric_point_ids i WHERE i.project_id = $1 AND NOT EXISTS (SELECT 1 FROM metric_points p WHERE p.id = i.id) HAVING count(*) > 0",
        ),
        ("event_rollups", "SELECT event_type, count(*) FROM event_rollups WHERE project_id = $1 GROUP BY 1"),
        ("metric_rollups", "SELECT name, count(*) FROM metric_rollups WHERE project_id = $1 GROUP BY 1"),
        (
            "event_rollups_hourly",
            "SELECT event_type, count(*) FROM event_rollups_hourly WHERE project_id = $1 GROUP BY 1",
        ),
        (
            "event_rollups_hourly_totals",
            "SELECT CASE WHEN bucket > now() - interval '400 days' THEN 'kept' ELSE 'old' END, count(*)
             FROM event_rollups_hourly_totals WHERE project_id = $1 GROUP BY 1",
        ),
        ("webhook_deliveries", "SELECT type, count(*) FROM webhook_deliveries WHERE project_id = $1 GROUP BY 1"),
        (
            "webhook_attempts",
            "SELECT d.type, count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.project_id = $1 GROUP BY 1",
        ),
        ("email_messages", "SELECT kind, count(*) FROM email_messages WHERE project_id = $1 GROUP BY 1"),
        (
            "email_attempts",
            "SELECT m.kind, count(*) FROM email_attempts a JOIN email_messages m ON m.id = a.email_id WHERE m.project_id = $1 GROUP BY 1",
        ),
        ("alert_incidents", "SELECT rule_name, count(*) FROM alert_incidents WHERE project_id = $1 GROUP BY 1"),
        (
            "monitor_checks",
            "SELECT c.error, count(*) FROM monitor_checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.project_id = $1 GROUP BY 1",
        ),
        (
            "monitor_daily",
            "SELECT CASE WHEN d.day > now() - interval '400 days' THEN 'kept' ELSE 'old' END, count(*)
             FROM monitor_daily d JOIN monitors m ON m.id = d.monitor_id WHERE m.project_id = $1 GROUP BY 1",
        ),
        ("monitor_incidents", "SELECT error, count(*) FROM monitor_incidents WHERE project_id = $1 GROUP BY 1"),
    ];
    let mut counts = BTreeMap::new();
    for (project_label, project) in projects {
        for (table, sql) in queries {
            for row in client.query(sql, &[project]).await.expect(table) {
                let label: String = row.get(0);
                let count: i64 = row.get(1);
                counts.insert(format!("{table} {project_label} {label}"), count);
            }
        }
    }
    let total: i64 = client
        .query_one("SELECT count(*) FROM password_resets", &[])
        .await
        .expect("password resets")
        .get(0);
    counts.insert("password_resets".into(), total);
    let job_runs: i64 = client
        .query_one("SELECT count(*) FROM job_runs WHERE job LIKE 'seeded%'", &[])
        .await
        .expect("job runs")
        .get(0);
    counts.insert("job_runs".into(), job_runs);
    counts
}

/// What must remain of `seed(k)` for projects keeping `(label, retention_days)` with the
/// default variables (1m rollups 14 days, 1h 400, webhooks and email 30, incidents 400).
fn expected(projects: &[(&str, i32)], k: i64) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for &(project, days) in projects {
        let days = f64::from(days);
        for label in RAW_AGES.into_iter().filter(|label| age(label) < days) {
            for table in ["events", "event_ids", "metric_points", "metric_point_ids"] {
                counts.insert(format!("{table} {project} {label}"), k);
            }
        }
        let minute_days = days.min(14.0);
        for label in MINUTE_AGES.into_iter().filter(|label| age(label) < minute_days) {
            counts.insert(format!("event_rollups {project} {label}"), k);
            counts.insert(format!("metric_rollups {project} {label}"), k);
        }
        counts.insert(format!("event_rollups {project} delta"), k);
        for label in HOUR_AGES.into_iter().filter(|label| age(label) < 400.0) {
            counts.insert(format!("event_rollups_hourly {project} {label}"), k);
        }
        counts.insert(
            format!("event_rollups_hourly_totals {project} kept"),
            3 * totals_rows(k),
        );
        for label in ["succeeded_10d", "pending_100d"] {
            counts.insert(format!("webhook_deliveries {project} {label}"), k);
            counts.insert(format!("webhook_attempts {project} {label}"), 2 * k);
        }
        for label in ["sent_10d", "pending_100d"] {
            counts.insert(format!("email_messages {project} {label}"), k);
            counts.insert(format!("email_attempts {project} {label}"), 2 * k);
        }
        counts.insert(format!("alert_incidents {project} resolved_100d"), k);
        counts.insert(format!("alert_incidents {project} firing_500d"), 1);
        for label in ["1h", "2d"] {
            counts.insert(format!("monitor_checks {project} {label}"), k);
        }
        counts.insert(format!("monitor_daily {project} kept"), 2 * k);
        counts.insert(format!("monitor_incidents {project} resolved_100d"), k);
        counts.insert(format!("monitor_incidents {project} open_500d"), 1);
    }
    counts.insert("password_resets".into(), 2 * k * projects.len() as i64);
    // Of the job runs 40 days and 1 day old, the recent ones.
    counts.insert("job_runs".into(), k);
    counts
}

async fn partition_exists(client: &Client, parent: &str, days_ago: i32) -> bool {
    client
        .query_one(
            "SELECT to_regclass($1 || '_p' || to_char((now() AT TIME ZONE 'UTC')::date - $2::int, 'YYYYMMDD')) IS NOT NULL",
            &[&parent, &days_ago],
        )
        .await
        .expect("partition lookup")
        .get(0)
}

async fn retired_tables(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM pg_class WHERE relname LIKE 'retired\\_%'", &[])
        .await
        .expect("retired tables")
        .get(0)
}

/// Runs `pulse-scheduler run-once retention` with `PULSE_RETENTION_BATCH=batch`; returns the
/// summary it prints.
async fn run_retention(db: &TestDb, batch: i64) -> String {
    let env = PulseEnv::empty()
        .set("PULSE_DATABASE_URL", &db.url)
        .set("PULSE_DATABASE_POOL_SIZE", "2")
        .set("PULSE_RETENTION_BATCH", &batch.to_string());
    let mut run = PulseProcess::spawn("pulse-scheduler", &["run-once", "retention"], &env);
    let status = run.wait(Duration::from_secs(120)).await;
    let logs = run.logs();
    assert!(status.success(), "run-once retention: {status}\n{logs}");
    logs.lines()
        .find_map(|line| line.strip_prefix("retention: "))
        .unwrap_or_else(|| panic!("a summary line in:\n{logs}"))
        .to_owned()
}

/// Two projects (3 and 30 days) seeded with `k` rows per age; returns them as census labels.
async fn seeded(db: &TestDb, k: i64) -> [(&'static str, Uuid); 2] {
    let client = db.client().await;
    let short = db.create_project().await;
    let long = db.create_project().await;
    for (project, days) in [(&short, 3), (&long, 30)] {
        client
            .execute(
                "UPDATE projects SET retention_days = $2 WHERE id = $1",
                &[&project.id, &days],
            )
            .await
            .expect("set retention");
    }
    create_old_partitions(&client).await;
    client
        .execute(
            "INSERT INTO job_runs (job, tick_at, replica, outcome)
             SELECT 'seeded_' || age, now() - age::interval - i * interval '1 second', 'test', 'ok'
             FROM unnest(ARRAY['40 days', '1 day']) AS age, generate_series(1, $1::bigint) AS i",
            &[&k],
        )
        .await
        .expect("insert job runs");
    seed(&client, short.id, k).await;
    seed(&client, long.id, k).await;
    [("short", short.id), ("long", long.id)]
}

/// Seeds two projects (3 and 30 days), runs retention twice with `batch`, checks the counts.
async fn keeps_exactly_what_it_must(k: i64, batch: i64) {
    let db = TestDb::new().await;
    let client = db.client().await;
    let projects = seeded(&db, k).await;
    let before = census(&client, &projects).await;
    assert_eq!(before["events short 45d"], k, "seeded into the partition to drop");

    let summary = run_retention(&db, batch).await;
    assert!(summary.contains("dropped"), "{summary}");
    assert_eq!(
        census(&client, &projects).await,
        expected(&[("short", 3), ("long", 30)], k),
        "{summary}"
    );
    for parent in ["events", "metric_points"] {
        assert!(
            !partition_exists(&client, parent, 45).await,
            "{parent}: the day nobody keeps is dropped"
        );
        assert!(
            partition_exists(&client, parent, 5).await,
            "{parent}: the day the 30-day project keeps stays"
        );
    }
    assert_eq!(
        retired_tables(&client).await,
        0,
        "retired partitions are drained and dropped"
    );
    let in_default: i64 = client
        .query_one(
            "SELECT count(*) FROM events_default WHERE \"timestamp\" < now() - interval '30 days'",
            &[],
        )
        .await
        .expect("default partition")
        .get(0);
    assert_eq!(
        in_default, 0,
        "old rows in the DEFAULT partition are deleted in batches"
    );

    let again = run_retention(&db, batch).await;
    assert_eq!(again, "nothing past its retention", "a second run removes nothing");
    assert_eq!(
        census(&client, &projects).await,
        expected(&[("short", 3), ("long", 30)], k)
    );
}

#[tokio::test]
async fn retention_keeps_exactly_what_each_project_keeps() {
    keeps_exactly_what_it_must(5, 10_000).await;
}

#[tokio::test]
async fn retention_in_batches_smaller_than_the_data_gives_the_same_result() {
    keeps_exactly_what_it_must(250, 100).await;
}

/// Two replicas with retention due every second (`PULSE_RETENTION_INTERVAL_SECS=1`): each tick has one `job_runs` row, run by one
/// replica (its `ok` count) and skipped by the other, none failed, and together they removed
/// exactly what one run removes. (The framework's own test, `tests/jobs.rs`, checks the claim
/// in detail on the partitions job.)
#[tokio::test]
async fn two_replicas_run_each_retention_tick_once() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let projects = seeded(&db, 50).await;
    let env = PulseEnv::new(&db, &kafka)
        .set("PULSE_RETENTION_INTERVAL_SECS", "1")
        .set("PULSE_RETENTION_BATCH", "20");
    let (env_a, env_b) = (
        env.clone().set("PULSE_SCHEDULER_REPLICA", "replica-a"),
        env.set("PULSE_SCHEDULER_REPLICA", "replica-b"),
    );
    let (first, second) = tokio::join!(PulseProcess::scheduler(&env_a), PulseProcess::scheduler(&env_b));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let client = db.client().await;
    let logs = || format!("{}\n----\n{}", first.logs(), second.logs());
    let metric = |outcome: &str| format!("pulse_scheduler_job_runs_total{{job=\"retention\",outcome=\"{outcome}\"}}");

    // Sample between two ticks: rows and counters still the same a moment later.
    let mut settled = None;
    for _ in 0..50 {
        let read = || async {
            let rows: Vec<(String, String)> = client
                .query(
                    "SELECT replica, outcome FROM job_runs WHERE job = 'retention' ORDER BY tick_at",
                    &[],
                )
                .await
                .expect("job_runs")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            let mut counts = Vec::new();
            for replica in [&first, &second] {
                for outcome in ["ok", "skipped", "error"] {
                    counts.push(replica.metric(&metric(outcome)).await);
                }
            }
            (rows, counts)
        };
        let before = read().await;
        let after = read().await;
        if before == after && after.0.iter().all(|(_, outcome)| outcome != "running") {
            settled = Some(after);
            break;
        }
        tokio::time::sleep(Duration::from_millis(97)).await;
    }
    let (rows, counts) = settled.expect("a moment between two ticks");
    assert!(rows.len() >= 3, "a run every second: {rows:?}\n{}", logs());
    assert!(rows.iter().all(|(_, outcome)| outcome == "ok"), "{rows:?}\n{}", logs());
    for (index, name) in ["replica-a", "replica-b"].into_iter().enumerate() {
        let mine = rows.iter().filter(|(replica, _)| replica == name).count() as f64;
        assert_eq!(counts[index * 3], mine, "{name}'s ok runs are its job_runs rows");
        assert_eq!(counts[index * 3 + 2], 0.0, "{name} had no failed run:\n{}", logs());
    }
    assert!(
        counts[1] + counts[4] >= 1.0,
        "a tick both saw was skipped by one: {counts:?}"
    );
    // The serving schedulers also compact: the old delta was folded into its hour (one hourly
    // row and one more totals row), then removed as a compacted minute past retention.
    let mut expected = expected(&[("short", 3), ("long", 30)], 50);
    for (project, _) in &projects {
        expected.remove(&format!("event_rollups {project} delta"));
        expected.insert(format!("event_rollups_hourly {project} delta"), 1);
        *expected
            .entry(format!("event_rollups_hourly_totals {project} kept"))
            .or_default() += 1;
    }
    // Compaction runs every few seconds: wait for it, then for the next retention tick.
    let reached = pulse_testkit::eventually(Duration::from_secs(30), || async {
        (census(&client, &projects).await == expected).then_some(())
    })
    .await;
    if reached.is_none() {
        assert_eq!(census(&client, &projects).await, expected, "{}", logs());
    }
}
