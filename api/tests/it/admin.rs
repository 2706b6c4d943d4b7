//! The admin commands: `migrate` and `admin create-project` (idempotent on names, a new key each
//! time, the key works for ingest), and the one-line refusal of a bad configuration.

use std::time::Duration;

use pulse_testkit::{PulseEnv, PulseProcess, TestDb, TestKafka};
use serde_json::{json, Value};

use crate::{expect_accepted, http_client};

fn created(process: &PulseProcess) -> Value {
    let logs = process.logs();
    let line = logs
        .lines()
        .find(|line| line.starts_with("{\"organization_id\""))
        .unwrap_or_else(|| panic!("no JSON line in:\n{logs}"));
    serde_json::from_str(line).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_create_project_then_ingest_with_the_new_key() {
    let db = TestDb::new().await;
    let kafka = TestKafka::shared().await;
    let env = PulseEnv::new(&db, &kafka);

    let mut migrate = PulseProcess::spawn("pulse-api", &["migrate"], &env);
    assert!(
        migrate.wait(Duration::from_secs(60)).await.success(),
        "{}",
        migrate.logs()
    );

    let args = ["admin", "create-project", "--org", "acme", "--name", "web"];
    let mut first = PulseProcess::spawn("pulse-api", &args, &env);
    assert!(first.wait(Duration::from_secs(60)).await.success(), "{}", first.logs());
    let mut second = PulseProcess::spawn("pulse-api", &args, &env);
    assert!(
        second.wait(Duration::from_secs(60)).await.success(),
        "{}",
        second.logs()
    );
    let (first, second) = (created(&first), created(&second));
    assert_eq!(first["organization_id"], second["organization_id"]);
    assert_eq!(first["project_id"], second["project_id"]);
    assert_ne!(first["api_key"], second["api_key"]);
    let key = first["api_key"].as_str().expect("key");
    assert!(key.starts_with(first["api_key_prefix"].as_str().expect("prefix")));

    let api = PulseProcess::api(&env).await;
    for key in [key, second["api_key"].as_str().expect("key")] {
        let response = http_client()
            .post(format!("{}/v1/events", api.base_url()))
            .bearer_auth(key)
            .json(&json!({"event_type": "admin_made"}))
            .send()
            .await
            .expect("sent");
        expect_accepted(response).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_variable_stops_the_api_with_one_line_naming_it() {
    let env = PulseEnv::empty()
        .set("PULSE_DATABASE_URL", "postgres://127.0.0.1:1/none")
        .set("PULSE_MAX_BATCH_EVENTS", "lots");
    let mut process = PulseProcess::spawn("pulse-api", &["serve"], &env);
    let status = process.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2));
    let logs = process.logs();
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(logs.contains("PULSE_MAX_BATCH_EVENTS"), "{logs}");
}
