//! Deletion: a deleted project purged by the scheduler, account deletion with its solo organizations.

use pulse_testkit::management::ManagementStack as Stack;
use pulse_testkit::{eventually, PulseProcess};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn deleted_project_is_purged_in_the_background() {
    let stack = Stack::start(&[("PULSE_PURGE_BATCH_SIZE", "10")]).await;
    // The api only marks the project deleted; the scheduler's purge job removes it.
    let _scheduler = PulseProcess::scheduler(&stack.env).await;
    let user = stack.register("purge@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let keep = stack.project(&user, json!({})).await;
    let client = stack.db.client().await;
    for (target, count) in [(project, 35), (keep, 3)] {
        client
            .execute(
                "WITH rows AS (
                     SELECT gen_random_uuid() AS id, now() - (i || ' minutes')::interval AS ts
                     FROM generate_series(1, $2::int) i),
                 ids AS (INSERT INTO event_ids (id, project_id, \"timestamp\") SELECT id, $1, ts FROM rows)
                 INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type)
                 SELECT id, $1, ts, now(), 'seeded' FROM rows",
                &[&target, &count],
            )
            .await
            .expect("seed events");
        client
            .execute(
                "INSERT INTO event_rollups (project_id, bucket, event_type, events, durations, duration_sum)
                 VALUES ($1, date_trunc('minute', now()), 'seeded', $2, 0, 0)",
                &[&target, &i64::from(count)],
            )
            .await
            .expect("seed rollups");
        // Named metrics: points over three days (several partitions and the default one).
        client
            .batch_execute(&format!(
                "WITH rows AS (
                     SELECT gen_random_uuid() AS id, now() - (i * 97 || ' minutes')::interval AS ts, i
                     FROM generate_series(1, {count}) i),
                 ids AS (INSERT INTO metric_point_ids (id, project_id, \"timestamp\") SELECT id, '{target}', ts FROM rows)
                 INSERT INTO metric_points (id, project_id, name, \"timestamp\", value, labels, received_at)
                 SELECT id, '{target}', 'seeded', ts, i, '{{}}', now() FROM rows;
                 INSERT INTO metric_rollups (project_id, name, bucket, count, sum, min, max, sketch)
                 VALUES ('{target}', 'seeded', date_trunc('minute', now()), 1, 1, 1, 1, '\\x01');
                 INSERT INTO metric_latest (project_id, name, labels_hash, labels, \"timestamp\", id, value)
                 VALUES ('{target}', 'seeded', md5('{{}}')::uuid, '{{}}', now(), gen_random_uuid(), 1);"
            ))
            .await
            .expect("seed metrics");
    }
    assert_eq!(stack.db.count_events(project).await, 35);
    assert_eq!(stack.db.count_metric_points(project).await, 35);
    stack
        .call(
            Method::DELETE,
            &format!("/v1/projects/{project}"),
            Some(&user.access),
            None,
        )
        .await
        .expect(204, "delete");
    let purged = eventually(Duration::from_secs(30), || async {
        let events = stack.db.count_events(project).await;
        let rows: i64 = client
            .query_one("SELECT count(*) FROM projects WHERE id = $1", &[&project])
            .await
            .expect("count")
            .get(0);
        (events == 0 && rows == 0).then_some(())
    })
    .await;
    assert!(purged.is_some(), "project and its events purged");
    let ids: i64 = client
        .query_one("SELECT count(*) FROM event_ids WHERE project_id = $1", &[&project])
        .await
        .expect("count")
        .get(0);
    assert_eq!(ids, 0);
    let rollups = |target: uuid::Uuid| {
        let client = &client;
        async move {
            client
                .query_one("SELECT count(*) FROM event_rollups WHERE project_id = $1", &[&target])
                .await
                .expect("count rollups")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(rollups(project).await, 0, "its rollups purged");
    assert_eq!(rollups(keep).await, 1, "other projects' rollups untouched");
    assert_eq!(stack.db.count_events(keep).await, 3, "other projects untouched");
    for table in ["metric_points", "metric_point_ids", "metric_rollups", "metric_latest"] {
        let count = |target: uuid::Uuid| {
            let client = &client;
            async move {
                client
                    .query_one(
                        &format!("SELECT count(*) FROM {table} WHERE project_id = $1"),
                        &[&target],
                    )
                    .await
                    .expect("count metric rows")
                    .get::<_, i64>(0)
            }
        };
        assert_eq!(count(project).await, 0, "{table} of the deleted project purged");
        assert!(count(keep).await > 0, "{table} of other projects untouched");
    }
    // The name is free again at once.
    let name_reuse = stack.project(&user, json!({})).await;
    assert_ne!(name_reuse, project);
}

#[tokio::test]
async fn deleting_an_account_removes_its_solo_organizations() {
    let stack = Stack::start(&[]).await;
    let _scheduler = PulseProcess::scheduler(&stack.env).await;
    let user = stack.register("leaving@example.com").await;
    let project = stack.project(&user, json!({})).await;
    let (_, key) = stack.key(&user, project, json!({})).await;
    assert_eq!(stack.ingest(&key).await.status, StatusCode::ACCEPTED);
    stack
        .call(
            Method::PATCH,
            "/v1/users/me",
            Some(&user.access),
            Some(json!({"name": "Leaving Soon"})),
        )
        .await
        .expect(200, "rename");
    stack
        .call(Method::DELETE, "/v1/users/me", Some(&user.access), None)
        .await
        .expect(204, "delete account");
    assert_eq!(
        stack.ingest(&key).await.status,
        StatusCode::UNAUTHORIZED,
        "keys stop with the account"
    );
    let me = stack.get("/v1/users/me", &user.access).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let refresh = stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let client = stack.db.client().await;
    let gone = eventually(Duration::from_secs(30), || async {
        let orgs: i64 = client
            .query_one(
                "SELECT count(*) FROM organizations WHERE id = $1",
                &[&user.organization],
            )
            .await
            .expect("count")
            .get(0);
        (orgs == 0).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the solo organization is purged");
    stack.register("leaving@example.com").await;
}
