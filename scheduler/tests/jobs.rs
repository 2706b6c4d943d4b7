//! The job framework against real PostgreSQL and real `pulse-scheduler` processes: each cron
//! tick run once across two replicas (the others count it skipped), `GET /jobs`, `run-once`
//! (the partitions job draining the default partition), and a run the database refuses ending
//! as `error` after its retries.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pulse_testkit::{PulseEnv, PulseProcess, TestDb, TestKafka};
use serde_json::Value;
use tokio_postgres::Client;

const EVERY_SECOND: &str = "*/1 * * * * *";

fn ok_metric(outcome: &str) -> String {
    format!("pulse_scheduler_job_runs_total{{job=\"partitions\",outcome=\"{outcome}\"}}")
}

struct Sample {
    ok: [f64; 2],
    skipped: [f64; 2],
    errors: [f64; 2],
    rows: Vec<(DateTime<Utc>, String, String)>,
}

async fn sample(client: &Client, replicas: [&PulseProcess; 2]) -> Sample {
    let mut sample = Sample {
        ok: [0.0; 2],
        skipped: [0.0; 2],
        errors: [0.0; 2],
        rows: Vec::new(),
    };
    for (index, replica) in replicas.iter().enumerate() {
        sample.ok[index] = replica.metric(&ok_metric("ok")).await;
        sample.skipped[index] = replica.metric(&ok_metric("skipped")).await;
        sample.errors[index] = replica.metric(&ok_metric("error")).await;
    }
    sample.rows = client
        .query(
            "SELECT tick_at, replica, outcome FROM job_runs WHERE job = 'partitions' ORDER BY tick_at",
            &[],
        )
        .await
        .expect("job_runs")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    sample
}

#[tokio::test]
async fn two_replicas_run_each_tick_once_and_count_the_other_as_skipped() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_PARTITIONS_CRON", EVERY_SECOND);
    let (env_a, env_b) = (
        env.clone().set("PULSE_SCHEDULER_REPLICA", "replica-a"),
        env.set("PULSE_SCHEDULER_REPLICA", "replica-b"),
    );
    let (first, second) = tokio::join!(PulseProcess::scheduler(&env_a), PulseProcess::scheduler(&env_b));
    let both_ready = Utc::now();
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Metrics and rows read at one moment between ticks: every claimed tick finished and
    // counted. Ticks keep coming, so sample until one falls between two.
    let client = db.client().await;
    let mut consistent = None;
    for _ in 0..50 {
        let before = sample(&client, [&first, &second]).await;
        let after = sample(&client, [&first, &second]).await;
        let settled = before.ok == after.ok
            && before.skipped == after.skipped
            && before.rows == after.rows
            && before.rows.iter().all(|(_, _, outcome)| outcome != "running");
        if settled {
            consistent = Some(after);
            break;
        }
        tokio::time::sleep(Duration::from_millis(97)).await;
    }
    let sample = consistent.expect("a moment between two ticks");
    let logs = || format!("{}\n----\n{}", first.logs(), second.logs());

    assert_eq!(sample.errors, [0.0, 0.0], "no run failed:\n{}", logs());
    assert!(
        sample.rows.iter().all(|(_, _, outcome)| outcome == "ok"),
        "every run ok: {:?}",
        sample.rows
    );
    // The primary key makes a tick's row unique; each replica's `ok` count is its own rows.
    for (index, name) in ["replica-a", "replica-b"].iter().enumerate() {
        let mine = sample.rows.iter().filter(|(_, replica, _)| replica == name).count();
        assert_eq!(sample.ok[index], mine as f64, "{name}'s ok runs are its rows");
    }
    let ticks: Vec<i64> = sample.rows.iter().map(|(tick, _, _)| tick.timestamp()).collect();
    assert!(ticks.len() >= 5, "ticks of about 6 seconds: {ticks:?}");
    // No tick was missed while both ran: consecutive seconds.
    let overlap: Vec<i64> = ticks
        .iter()
        .copied()
        .filter(|tick| *tick > both_ready.timestamp())
        .collect();
    assert!(
        overlap.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "one run per second: {overlap:?}"
    );
    // Every tick both replicas saw was run by one and skipped by the other; none twice.
    let skipped = sample.skipped[0] + sample.skipped[1];
    assert!(
        skipped >= overlap.len() as f64 && skipped <= ticks.len() as f64,
        "skipped {skipped} between {} (ticks while both ran) and {} (all ticks):\n{}",
        overlap.len(),
        ticks.len(),
        logs()
    );
    assert!(sample.skipped[0] > 0.0 || sample.skipped[1] > 0.0);
}

#[tokio::test]
async fn jobs_endpoint_lists_schedule_last_and_next_run() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_SCHEDULER_REPLICA", "replica-jobs");
    let scheduler = PulseProcess::scheduler(&env).await;
    let url = format!("{}/jobs", scheduler.base_url());

    // The partitions job runs at start; the loops' first rounds follow at once. (Other cron
    // jobs of the registry may not have run yet: their `last_run` is null until they do.)
    let ran = |jobs: &[Value], name: &str| {
        jobs.iter()
            .any(|job| job["job"] == name && job["last_run"]["outcome"] == "ok")
    };
    let body: Value = pulse_testkit::eventually(Duration::from_secs(20), || async {
        let body: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        let jobs = body["jobs"].as_array()?;
        let ready = ["partitions", "purge", "rollup_compaction"]
            .iter()
            .all(|name| ran(jobs, name));
        ready.then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("every job ran once:\n{}", scheduler.logs()));
    let jobs = body["jobs"].as_array().expect("jobs");
    let names: Vec<&str> = jobs.iter().filter_map(|job| job["job"].as_str()).collect();
    assert_eq!(names[0], "partitions", "the registry's cron jobs first: {names:?}");
    assert_eq!(
        names[names.len() - 3..],
        ["purge", "rollup_compaction", "monitors"],
        "then the loops: {names:?}"
    );
    for job in jobs {
        assert!(
            job["schedule"].is_string() && job["next_run"].is_string() || job["kind"] == "interval",
            "{job}"
        );
        assert!(job["last_run"].is_object() || job["last_run"].is_null(), "{job}");
    }

    let partitions = &jobs[0];
    assert_eq!(partitions["kind"], "cron");
    assert_eq!(partitions["scope"], "cluster");
    assert_eq!(partitions["schedule"], "0 0 * * * *");
    let next: DateTime<Utc> = partitions["next_run"]
        .as_str()
        .expect("next_run")
        .parse()
        .expect("RFC 3339");
    let now = Utc::now();
    assert!(
        next > now && next - now <= chrono::Duration::hours(1),
        "next hour: {next}"
    );
    assert_eq!(next.timestamp() % 3600, 0, "on the hour: {next}");
    let last = &partitions["last_run"];
    assert_eq!(last["replica"], "replica-jobs");
    assert_eq!(last["attempts"], 1);
    assert!(last["error"].is_null());
    assert!(
        last["summary"]
            .as_str()
            .is_some_and(|s| s.contains("partitions created")),
        "{last}"
    );
    for field in ["tick_at", "started_at", "finished_at"] {
        assert!(
            last[field]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                .is_some(),
            "{field} is RFC 3339: {last}"
        );
    }
    assert!(last["duration_ms"].as_i64().is_some_and(|ms| ms >= 0));

    for job in &jobs[jobs.len() - 3..] {
        assert_eq!(job["kind"], "interval");
        assert_eq!(job["scope"], "replica");
        let every = if job["job"] == "monitors" {
            "every 250 ms"
        } else {
            "every 5 s"
        };
        assert_eq!(job["schedule"], every, "{job}");
        assert!(job["next_run"].as_str().is_some(), "{job}");
        assert!(job["last_run"]["finished_at"].as_str().is_some(), "{job}");
    }
}

/// Rows of day `today + offset` (noon UTC) in `events` and `metric_points`; returns the day's
/// `YYYYMMDD`.
async fn insert_rows_of_day(client: &Client, offset: i32, count: i64) -> String {
    client
        .execute(
            "INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type)
             SELECT gen_random_uuid(), gen_random_uuid(),
                    ((now() AT TIME ZONE 'UTC')::date + $1::int)::timestamp AT TIME ZONE 'UTC' + interval '12 hours'
                        + n * interval '1 second',
                    now(), 'drain.test'
             FROM generate_series(1, $2::bigint) AS n",
            &[&offset, &count],
        )
        .await
        .expect("insert events");
    client
        .execute(
            "INSERT INTO metric_points (id, project_id, name, \"timestamp\", value, received_at)
             SELECT gen_random_uuid(), gen_random_uuid(), 'drain.test',
                    ((now() AT TIME ZONE 'UTC')::date + $1::int)::timestamp AT TIME ZONE 'UTC' + interval '12 hours',
                    n, now()
             FROM generate_series(1, $2::bigint) AS n",
            &[&offset, &count],
        )
        .await
        .expect("insert metric points");
    client
        .query_one(
            "SELECT to_char((now() AT TIME ZONE 'UTC')::date + $1::int, 'YYYYMMDD')",
            &[&offset],
        )
        .await
        .expect("day")
        .get(0)
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test]
async fn run_once_partitions_drains_the_default_partition_into_new_partitions() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let client = db.client().await;
    // The template has partitions 7 days ahead: day 10 has none, so its rows go to the default.
    let day = insert_rows_of_day(&client, 10, 50).await;
    let beyond = insert_rows_of_day(&client, 30, 3).await;
    let exists = |table: String| {
        let client = &client;
        async move {
            count(
                client,
                &format!("SELECT (to_regclass('{table}') IS NOT NULL)::int::bigint"),
            )
            .await
        }
    };
    assert_eq!(exists(format!("events_p{day}")).await, 0, "no partition for day 10 yet");
    assert_eq!(count(&client, "SELECT count(*) FROM ONLY events_default").await, 53);

    let env = PulseEnv::new(&db, &kafka)
        .set("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", "12")
        // Several bounded statements for the day's 50 rows.
        .set("PULSE_PARTITION_DRAIN_BATCH", "7");
    let mut once = PulseProcess::spawn("pulse-scheduler", &["run-once", "partitions"], &env);
    let status = once.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "run-once succeeded: {status}\n{}", once.logs());
    assert!(
        once.logs().contains("made from the default partition (100 rows moved)"),
        "{}",
        once.logs()
    );

    for parent in ["events", "metric_points"] {
        assert_eq!(
            exists(format!("{parent}_p{day}")).await,
            1,
            "{parent} has day 10's partition"
        );
        assert_eq!(
            count(&client, &format!("SELECT count(*) FROM ONLY {parent}_p{day}")).await,
            50,
            "day 10's rows are in its partition"
        );
        assert_eq!(
            count(
                &client,
                &format!(
                    "SELECT count(*) FROM ONLY {parent}_default
                     WHERE \"timestamp\" >= '{day}'::date::timestamp AT TIME ZONE 'UTC'
                       AND \"timestamp\" < ('{day}'::date + 1)::timestamp AT TIME ZONE 'UTC'"
                )
            )
            .await,
            0,
            "no row of day 10 left in {parent}_default"
        );
        // Day 30 is beyond the partitions ahead: it stays in the default partition.
        assert_eq!(
            count(&client, &format!("SELECT count(*) FROM ONLY {parent}_default")).await,
            3
        );
        assert_eq!(exists(format!("{parent}_p{beyond}")).await, 0);
        // Every row is still in the partitioned table, and the indexes came with the attach.
        assert_eq!(
            count(
                &client,
                &format!("SELECT count(*) FROM {parent} WHERE project_id IS NOT NULL AND \"timestamp\" > now()")
            )
            .await,
            53
        );
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM events WHERE event_type = 'drain.test'").await,
        53
    );
    let indexes = count(
        &client,
        &format!("SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p{day}'"),
    )
    .await;
    assert_eq!(indexes, 2, "the partition has the parent's two indexes");

    // The run is recorded in job_runs, with its tick at the second it ran.
    let row = client
        .query_one(
            "SELECT outcome, summary, attempts, replica, tick_at = date_trunc('second', tick_at)
             FROM job_runs WHERE job = 'partitions'",
            &[],
        )
        .await
        .expect("one run recorded");
    assert_eq!(row.get::<_, String>(0), "ok");
    assert!(row.get::<_, String>(1).contains("100 rows moved"));
    assert_eq!(row.get::<_, i32>(2), 1);
    assert!(!row.get::<_, String>(3).is_empty());
    assert!(row.get::<_, bool>(4), "tick truncated to the second");

    // A second run has nothing left to drain.
    let mut again = PulseProcess::spawn("pulse-scheduler", &["run-once", "partitions"], &env);
    assert!(again.wait(Duration::from_secs(60)).await.success(), "{}", again.logs());
    assert!(
        again.logs().contains("0 made from the default partition"),
        "{}",
        again.logs()
    );
}

#[tokio::test]
async fn run_once_of_an_unknown_job_lists_the_jobs() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka);
    let mut once = PulseProcess::spawn("pulse-scheduler", &["run-once", "nope"], &env);
    let status = once.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2));
    let logs = once.logs();
    assert!(
        logs.contains("unknown job \"nope\"") && logs.contains("partitions"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_run_the_database_refuses_is_retried_then_recorded_as_error() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let client = db.client().await;
    insert_rows_of_day(&client, 10, 5).await;
    // The database refuses to move rows out of the default partition, which the job must do.
    client
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE DELETE ON events_default FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .expect("trigger");
    let env = PulseEnv::new(&db, &kafka)
        .set("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", "12")
        .set("PULSE_JOB_RETRIES", "2")
        .set("PULSE_JOB_RETRY_BACKOFF_MS", "50");
    let mut once = PulseProcess::spawn("pulse-scheduler", &["run-once", "partitions"], &env);
    let status = once.wait(Duration::from_secs(60)).await;
    let logs = once.logs();
    assert_eq!(status.code(), Some(1), "run-once failed:\n{logs}");
    assert!(
        logs.contains("partitions failed:") && logs.contains("refused by the test"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("Job run failed; retrying").count(),
        2,
        "each failure logged:\n{logs}"
    );

    let row = client
        .query_one(
            "SELECT outcome, error, attempts, finished_at IS NOT NULL FROM job_runs WHERE job = 'partitions'",
            &[],
        )
        .await
        .expect("the run is recorded");
    assert_eq!(row.get::<_, String>(0), "error");
    assert!(row.get::<_, String>(1).contains("refused by the test"));
    assert_eq!(row.get::<_, i32>(2), 3, "first attempt and two retries");
    assert!(row.get::<_, bool>(3));
    assert_eq!(
        count(&client, "SELECT count(*) FROM ONLY events_default").await,
        5,
        "the failed day rolled back whole"
    );

    // A serving replica counts the failures in its metrics and shows them in GET /jobs (every
    // second here: its start-up run may share the second of the run-once above and be skipped).
    let mut scheduler = PulseProcess::scheduler(&env.clone().set("PULSE_PARTITIONS_CRON", "*/1 * * * * *")).await;
    let counted = pulse_testkit::eventually(Duration::from_secs(20), || async {
        (scheduler.metric(&ok_metric("error")).await >= 1.0).then_some(())
    })
    .await;
    assert!(counted.is_some(), "error counted:\n{}", scheduler.logs());
    let url = format!("{}/jobs", scheduler.base_url());
    let last = pulse_testkit::eventually(Duration::from_secs(20), || async {
        let body: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        let last = body["jobs"][0]["last_run"].clone();
        (last["outcome"] == "error").then_some(last)
    })
    .await
    .expect("GET /jobs shows the failed run");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|error| error.contains("refused by the test")),
        "{last}"
    );
    assert_eq!(last["attempts"], 3);
    assert_eq!(scheduler.metric(&ok_metric("ok")).await, 0.0);
    assert!(scheduler.terminate(Duration::from_secs(15)).await.success());

    // Once the database accepts it again, the next run drains the day.
    client
        .batch_execute("DROP TRIGGER refuse ON events_default")
        .await
        .expect("drop trigger");
    let mut again = PulseProcess::spawn("pulse-scheduler", &["run-once", "partitions"], &env);
    assert!(again.wait(Duration::from_secs(60)).await.success(), "{}", again.logs());
    assert_eq!(count(&client, "SELECT count(*) FROM ONLY events_default").await, 0);
    let outcomes: BTreeSet<String> = client
        .query("SELECT outcome FROM job_runs WHERE job = 'partitions'", &[])
        .await
        .expect("runs")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(outcomes, BTreeSet::from(["error".to_owned(), "ok".to_owned()]));
}

#[tokio::test]
async fn a_bad_cron_expression_stops_the_scheduler_with_one_line() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_PARTITIONS_CRON", "every hour");
    let mut scheduler = PulseProcess::spawn("pulse-scheduler", &[], &env);
    let status = scheduler.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2));
    let logs = scheduler.logs();
    assert!(
        logs.contains("configuration error: PULSE_PARTITIONS_CRON: \"every hour\" is not a cron expression"),
        "{logs}"
    );
}
