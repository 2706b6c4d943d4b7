//! The scheduler skeleton: it starts, is ready, keeps partitions ahead, exposes its metrics and
//! stops cleanly on SIGTERM.

use std::time::Duration;

use pulse_testkit::{PulseEnv, PulseProcess, TestDb, TestKafka};

#[tokio::test]
async fn scheduler_serves_health_keeps_partitions_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", "12");
    let mut scheduler = PulseProcess::scheduler(&env).await;

    let health = reqwest::get(format!("{}/healthz", scheduler.base_url()))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let client = db.client().await;
    let newest: bool = pulse_testkit::eventually(Duration::from_secs(20), || async {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('events_p' || to_char((now() AT TIME ZONE 'UTC')::date + 12, 'YYYYMMDD')) IS NOT NULL",
                &[],
            )
            .await
            .ok()?
            .get(0);
        exists.then_some(true)
    })
    .await
    .unwrap_or(false);
    assert!(newest, "partition 12 days ahead exists");
    // The migration at start already made the partitions; the job's first run follows it.
    let counted = pulse_testkit::eventually(Duration::from_secs(20), || async {
        (scheduler
            .metric("pulse_scheduler_job_runs_total{job=\"partitions\",outcome=\"ok\"}")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    assert!(counted.is_some(), "the partitions job ran and counted it");

    let status = scheduler.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[tokio::test]
async fn scheduler_refuses_bad_configuration_with_one_line() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_SCHEDULER_ADDR", "not-an-address");
    let mut scheduler = PulseProcess::spawn("pulse-scheduler", &[], &env);
    let status = scheduler.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2));
    let logs = scheduler.logs();
    assert!(logs.contains("PULSE_SCHEDULER_ADDR"), "names the variable: {logs}");
}

#[tokio::test]
async fn two_replicas_maintain_partitions_together_without_errors() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka).set("PULSE_EVENT_PARTITIONS_AHEAD_DAYS", "20");
    let (first, second) = tokio::join!(PulseProcess::scheduler(&env), PulseProcess::scheduler(&env));

    let client = db.client().await;
    let expected_days: i64 = 21;
    let created = pulse_testkit::eventually(Duration::from_secs(20), || async {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM generate_series(0, 20) AS d \
                 WHERE to_regclass('events_p' || to_char((now() AT TIME ZONE 'UTC')::date + d, 'YYYYMMDD')) IS NOT NULL",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (count == expected_days).then_some(count)
    })
    .await;
    assert_eq!(
        created,
        Some(expected_days),
        "every day from today to 20 ahead has its partition"
    );
    for replica in [&first, &second] {
        assert!(
            pulse_testkit::eventually(Duration::from_secs(20), || async {
                // The start-up run of both may fall in the same second: one runs it, one skips it.
                let ok = replica
                    .metric("pulse_scheduler_job_runs_total{job=\"partitions\",outcome=\"ok\"}")
                    .await;
                let skipped = replica
                    .metric("pulse_scheduler_job_runs_total{job=\"partitions\",outcome=\"skipped\"}")
                    .await;
                (ok + skipped >= 1.0).then_some(())
            })
            .await
            .is_some(),
            "each replica ran maintenance or found it run:\n{}",
            replica.logs()
        );
        assert_eq!(
            replica
                .metric("pulse_scheduler_job_runs_total{job=\"partitions\",outcome=\"error\"}")
                .await,
            0.0,
            "no replica failed while the other created the same partitions:\n{}",
            replica.logs()
        );
    }
}
