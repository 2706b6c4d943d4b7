//! `GET /v1/events/aggregated` against what the raw rows say: counts and sums exactly, distinct
//! counts and quantiles within the documented bounds, merged hourly and daily buckets alike, and
//! a batch sent again (the same ids) counted once.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::ReadStack;

/// Distinct counts: within this relative error of `COUNT(DISTINCT)`.
const DISTINCT_BOUND: f64 = 0.02;
/// Quantiles: within this relative error of `percentile_cont` (the sketch's 0.5 % plus the
/// difference between a rank and an interpolated percentile on this data).
const QUANTILE_BOUND: f64 = 0.01;

/// A deterministic spread: 6,000 events over three whole hours, 1,500 users, 900 sessions,
/// durations from 1 ms to 5 s (every fourth event has none).
fn data_set(first_hour: DateTime<Utc>) -> Vec<Value> {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..6_000)
        .map(|i| {
            let at = first_hour + ChronoDuration::milliseconds((next() % (3 * 3_600_000)) as i64);
            let duration = (i % 4 != 0).then(|| 1 + next() % 5_000);
            json!({
                "id": Uuid::new_v4(),
                "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "event_type": if i % 3 == 0 { "purchase" } else { "page_view" },
                "source": "web",
                "status": if i % 10 == 0 { "error" } else { "ok" },
                "user_id": format!("user-{}", next() % 1_500),
                "session_id": format!("session-{}", next() % 900),
                "duration_ms": duration,
            })
        })
        .collect()
}

fn close(actual: f64, expected: f64, bound: f64) -> bool {
    if expected == 0.0 {
        return actual == 0.0;
    }
    ((actual - expected) / expected).abs() <= bound
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_agree_with_the_raw_rows() {
    let read = ReadStack::start(&[]).await;
    let first_hour = (Utc::now() - ChronoDuration::hours(4))
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour");
    let events = data_set(first_hour);
    for chunk in events.chunks(1_000) {
        read.ingest(chunk).await;
    }
    // The first batch again, as a redelivery would bring it: stored once, counted once.
    read.ingest(&events[..1_000]).await;
    read.stored(6_000).await;

    let start = first_hour.to_rfc3339_opts(SecondsFormat::Secs, true);
    let end = (first_hour + ChronoDuration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let hourly = read
        .get(
            &format!("/v1/events/aggregated?interval=1h&start={start}&end={end}"),
            &read.key,
        )
        .await
        .expect(200, "hourly");
    let buckets = hourly["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 3, "{hourly}");

    let client = read.stack.db.client().await;
    let raw = client
        .query(
            "SELECT date_trunc('hour', timestamp) AS hour, count(*), count(DISTINCT user_id),
                    count(DISTINCT session_id), avg(duration_ms)::float8, min(duration_ms), max(duration_ms),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms)
             FROM events WHERE project_id = $1 GROUP BY 1 ORDER BY 1",
            &[&read.project],
        )
        .await
        .expect("raw");
    assert_eq!(raw.len(), 3);
    for (bucket, row) in buckets.iter().zip(&raw) {
        let hour: DateTime<Utc> = row.get(0);
        assert_eq!(
            bucket["start"]
                .as_str()
                .map(|s| s.parse::<DateTime<Utc>>().expect("time")),
            Some(hour)
        );
        assert_eq!(bucket["count"].as_i64(), Some(row.get::<_, i64>(1)), "count, exactly");
        assert_eq!(bucket["min_duration"].as_i64(), Some(row.get::<_, i64>(5)));
        assert_eq!(bucket["max_duration"].as_i64(), Some(row.get::<_, i64>(6)));
        let avg: f64 = row.get(4);
        assert!(
            close(bucket["avg_duration"].as_f64().expect("avg"), avg, 1e-9),
            "avg {bucket} vs {avg}"
        );
        for (field, column, bound) in [
            ("unique_users", 2, DISTINCT_BOUND),
            ("unique_sessions", 3, DISTINCT_BOUND),
        ] {
            let exact = row.get::<_, i64>(column) as f64;
            let estimate = bucket[field].as_f64().expect(field);
            assert!(close(estimate, exact, bound), "{field}: {estimate} vs {exact}");
        }
        for (field, column) in [("p50_duration", 7), ("p90_duration", 8), ("p99_duration", 9)] {
            let exact: f64 = row.get(column);
            let estimate = bucket[field].as_f64().expect(field);
            assert!(close(estimate, exact, QUANTILE_BOUND), "{field}: {estimate} vs {exact}");
        }
    }

    // Merged across the three hours (and the day boundary, if any): the daily buckets hold
    // everything, and what one pass over the raw rows says.
    let daily = read
        .get(
            &format!("/v1/events/aggregated?interval=1d&start={start}&end={end}"),
            &read.key,
        )
        .await
        .expect(200, "daily");
    let total: i64 = daily["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(total, 6_000);
    let whole = client
        .query_one(
            "SELECT count(DISTINCT user_id), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
             FROM events WHERE project_id = $1 AND date_trunc('day', timestamp) = $2",
            &[
                &read.project,
                &first_hour.duration_trunc(TimeDelta::days(1)).expect("day"),
            ],
        )
        .await
        .expect("raw day");
    let first_day = &daily["buckets"][0];
    let users = whole.get::<_, i64>(0) as f64;
    assert!(
        close(
            first_day["unique_users"].as_f64().expect("users"),
            users,
            DISTINCT_BOUND
        ),
        "{first_day} vs {users}"
    );
    let p95: f64 = whole.get(1);
    assert!(
        close(first_day["p95_duration"].as_f64().expect("p95"), p95, QUANTILE_BOUND),
        "{first_day} vs {p95}"
    );

    // Filters, empty buckets, and five-minute buckets summing to the hour.
    let errors = read
        .get(
            &format!("/v1/events/aggregated?interval=1h&start={start}&end={end}&status=error"),
            &read.key,
        )
        .await
        .expect(200, "errors");
    let errors_total: i64 = errors["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(errors_total, 600);
    let later = (first_hour + ChronoDuration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let much_later = (first_hour + ChronoDuration::hours(4)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let empty = read
        .get(
            &format!("/v1/events/aggregated?interval=15m&start={later}&end={much_later}"),
            &read.key,
        )
        .await
        .expect(200, "empty");
    let empty = empty["buckets"].as_array().expect("buckets");
    assert_eq!(empty.len(), 4, "every bucket of the range, empty ones too");
    assert!(empty
        .iter()
        .all(|b| b["count"] == 0 && b["p50_duration"].is_null() && b["unique_users"] == 0));
    let five = read
        .get(
            &format!("/v1/events/aggregated?interval=5m&start={start}&end={end}"),
            &read.key,
        )
        .await
        .expect(200, "five minutes");
    let five = five["buckets"].as_array().expect("buckets");
    assert_eq!(five.len(), 36);
    let first_hour_total: i64 = five[..12].iter().map(|b| b["count"].as_i64().expect("count")).sum();
    assert_eq!(Some(first_hour_total), buckets[0]["count"].as_i64());

    // The overview of the three hours against the three before (empty), and realtime.
    let overview = read
        .get(&format!("/v1/analytics/overview?start={start}&end={end}"), &read.key)
        .await
        .expect(200, "overview");
    assert_eq!(overview["total_events"], 6_000);
    assert_eq!(overview["error_ratio"], 0.1);
    let everyone = client
        .query_one(
            "SELECT count(DISTINCT user_id), count(DISTINCT session_id) FROM events WHERE project_id = $1",
            &[&read.project],
        )
        .await
        .expect("raw totals");
    for (field, column) in [("unique_users", 0), ("unique_sessions", 1)] {
        let exact = everyone.get::<_, i64>(column) as f64;
        let estimate = overview[field].as_f64().expect(field);
        assert!(close(estimate, exact, DISTINCT_BOUND), "{field}: {estimate} vs {exact}");
    }
    assert_eq!(
        overview["top_event_types"],
        json!([{"event_type": "page_view", "count": 4_000}, {"event_type": "purchase", "count": 2_000}])
    );
    assert_eq!(overview["top_sources"], json!([{"source": "web", "count": 6_000}]));
    assert_eq!(overview["previous"]["total_events"], 0);
    assert_eq!(
        overview["change"]["total_events"],
        Value::Null,
        "no change from nothing"
    );
    read.ingest(&[
        json!({"event_type": "live", "user_id": "now"}),
        json!({"event_type": "live", "user_id": "now"}),
    ])
    .await;
    read.stored(6_002).await;
    let realtime = read
        .get("/v1/analytics/realtime", &read.key)
        .await
        .expect(200, "realtime");
    let minutes = realtime["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 5);
    let live: i64 = minutes.iter().map(|m| m["count"].as_i64().expect("count")).sum();
    assert_eq!(live, 2, "{realtime}");
    assert_eq!(realtime["active_users"], 1);
    assert_eq!(realtime["top_event_types"], json!([{"event_type": "live", "count": 2}]));

    // The rollups were written with the events: their totals equal COUNT(*) after the resend.
    let rolled: i64 = client
        .query_one(
            "SELECT sum(events)::int8 FROM event_rollups WHERE project_id = $1",
            &[&read.project],
        )
        .await
        .expect("rollups")
        .get(0);
    assert_eq!(rolled, 6_002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_parameters_and_readers_are_checked() {
    let read = ReadStack::start(&[("PULSE_QUERY_MAX_BUCKETS", "100")]).await;
    for (query, parameter) in [
        ("interval=2h", "interval"),
        ("interval=1m", "interval"),
        ("start=yesterday", "start"),
        ("colour=red", "query"),
    ] {
        let answer = read.get(&format!("/v1/events/aggregated?{query}"), &read.key).await;
        assert_eq!(answer.status.as_u16(), 400, "{query}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["details"]["parameter"], parameter,
            "{query}: {}",
            answer.body
        );
    }
    let hourly = read
        .get("/v1/events/aggregated", &read.key)
        .await
        .expect(200, "defaults");
    assert_eq!(hourly["interval"], "1h");
    assert!(
        matches!(hourly["buckets"].as_array().map(Vec::len), Some(24 | 25)),
        "{hourly}"
    );
    read.get("/v1/events/aggregated", &read.ingest_only)
        .await
        .expect(403, "ingest-only key");
    read.get(
        &format!("/v1/events/aggregated?project_id={}", read.project),
        &read.user.access,
    )
    .await
    .expect(200, "member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_rollups_recomputes_a_range_idempotently() {
    let read = ReadStack::start(&[]).await;
    let first_hour = (Utc::now() - ChronoDuration::hours(4))
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour");
    let events = data_set(first_hour);
    read.ingest(&events[..1_000]).await;
    read.stored(1_000).await;
    let start = first_hour.to_rfc3339_opts(SecondsFormat::Secs, true);
    let end = (first_hour + ChronoDuration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let path = format!("/v1/events/aggregated?interval=1h&start={start}&end={end}");
    let before = read.get(&path, &read.key).await.expect(200, "before");

    // Lose the rollups of the middle hour and add a bogus row, as a bug might.
    let client = read.stack.db.client().await;
    let middle = first_hour + ChronoDuration::hours(1);
    client
        .execute(
            "DELETE FROM event_rollups WHERE project_id = $1 AND bucket >= $2 AND bucket < $2 + interval '1 hour'",
            &[&read.project, &middle],
        )
        .await
        .expect("lose rollups");
    client
        .execute(
            "INSERT INTO event_rollups (project_id, bucket, event_type, events, durations, duration_sum)
             VALUES ($1, $2, 'bogus', 999, 0, 0)",
            &[&read.project, &middle],
        )
        .await
        .expect("bogus row");
    let broken = read.get(&path, &read.key).await.expect(200, "broken");
    assert_ne!(broken["buckets"], before["buckets"]);

    for run in 0..2 {
        let printed = rebuild(&read, &start, &end).await;
        assert_eq!(printed["events"], 1_000, "{printed}");
        let after = read.get(&path, &read.key).await.expect(200, "after");
        assert_eq!(
            after["buckets"], before["buckets"],
            "run {run}: the buckets the worker wrote, again"
        );
    }
}

/// Runs `pulse-api admin rebuild-rollups` over `[start, end)`; returns the line it printed.
async fn rebuild(read: &ReadStack, start: &str, end: &str) -> Value {
    let project = read.project.to_string();
    let mut admin = pulse_testkit::PulseProcess::spawn(
        "pulse-api",
        &[
            "admin",
            "rebuild-rollups",
            "--project",
            &project,
            "--from",
            start,
            "--to",
            end,
        ],
        &read.stack.env,
    );
    let status = admin.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "rebuild: {}", admin.logs());
    admin
        .logs()
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("the summary line")
}

/// Counts per bucket of an aggregated answer.
fn counts(answer: &Value) -> Vec<i64> {
    answer["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("count"))
        .collect()
}

/// Every field of every bucket but the distinct counts (HyperLogLog++ estimates may move a
/// little with the order sketches are merged in; they are checked against SQL instead).
fn exact_fields(answer: &Value) -> Vec<Value> {
    answer["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|bucket| {
            let mut bucket = bucket.clone();
            let object = bucket.as_object_mut().expect("bucket");
            object.remove("unique_users");
            object.remove("unique_sessions");
            bucket
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_folds_deltas_and_no_answer_changes() {
    let read = ReadStack::start(&[]).await;
    let first_hour = (Utc::now() - ChronoDuration::hours(4))
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour");
    let events = data_set(first_hour);
    // Small batches: many delta rows per minute, as a busy project writes them.
    for chunk in events[..3_000].chunks(50) {
        read.ingest(chunk).await;
    }
    read.stored(3_000).await;
    let client = read.stack.db.client().await;
    let deltas: i64 = client
        .query_one(
            "SELECT count(*) FROM event_rollups WHERE project_id = $1 AND NOT compacted",
            &[&read.project],
        )
        .await
        .expect("deltas")
        .get(0);
    let start = first_hour.to_rfc3339_opts(SecondsFormat::Secs, true);
    let end = (first_hour + ChronoDuration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let paths = [
        format!("/v1/events/aggregated?interval=1h&start={start}&end={end}"),
        format!("/v1/events/aggregated?interval=15m&start={start}&end={end}"),
        format!("/v1/events/aggregated?interval=1d&start={start}&end={end}"),
    ];
    let before = read.get(&paths[0], &read.key).await.expect(200, "before");

    // The scheduler folds in rounds of 40 deltas while the other half of the events arrives.
    let scheduler = pulse_testkit::PulseProcess::scheduler(
        &read
            .stack
            .env
            .clone()
            .set("PULSE_ROLLUP_COMPACT_BATCH", "40")
            .set("PULSE_ROLLUP_COMPACT_INTERVAL_SECS", "1"),
    )
    .await;
    let mid_way = read.get(&paths[0], &read.key).await.expect(200, "while folding");
    assert_eq!(
        counts(&mid_way),
        counts(&before),
        "each delta counted once, folded or not"
    );
    for chunk in events[3_000..].chunks(50) {
        read.ingest(chunk).await;
    }
    read.stored(6_000).await;
    let mut pending = i64::MAX;
    for _ in 0..120 {
        pending = client
            .query_one(
                "SELECT count(*) FROM event_rollups WHERE project_id = $1 AND NOT compacted",
                &[&read.project],
            )
            .await
            .expect("pending")
            .get(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(pending, 0, "every delta folded; scheduler logs:\n{}", scheduler.logs());
    assert!(deltas > 100, "the first half alone wrote {deltas} deltas");

    // One row per minute and dimensions, one per hour and dimensions, each counting every event.
    let shape = client
        .query_one(
            "SELECT (SELECT count(*) FROM event_rollups WHERE project_id = $1),
                    (SELECT count(*) FROM (SELECT DISTINCT bucket, event_type, source, status
                                           FROM event_rollups WHERE project_id = $1) AS groups),
                    (SELECT sum(events)::int8 FROM event_rollups WHERE project_id = $1),
                    (SELECT count(*) FROM event_rollups_hourly WHERE project_id = $1),
                    (SELECT count(*) FROM (SELECT DISTINCT date_trunc('hour', timestamp), event_type, source, status
                                           FROM events WHERE project_id = $1) AS groups),
                    (SELECT sum(events)::int8 FROM event_rollups_hourly WHERE project_id = $1)",
            &[&read.project],
        )
        .await
        .expect("shape");
    let (minute_rows, minute_groups, minute_events): (i64, i64, i64) = (shape.get(0), shape.get(1), shape.get(2));
    let (hour_rows, hour_groups, hour_events): (i64, i64, i64) = (shape.get(3), shape.get(4), shape.get(5));
    assert_eq!(
        minute_rows, minute_groups,
        "one compacted row per minute and dimensions"
    );
    assert_eq!(hour_rows, hour_groups, "one hourly row per hour and dimensions");
    let totals = client
        .query_one(
            "SELECT (SELECT count(*) FROM event_rollups_hourly_totals WHERE project_id = $1),
                    (SELECT count(DISTINCT date_trunc('hour', timestamp)) FROM events WHERE project_id = $1),
                    (SELECT sum(events)::int8 FROM event_rollups_hourly_totals WHERE project_id = $1)",
            &[&read.project],
        )
        .await
        .expect("totals");
    let (total_rows, hours, total_events): (i64, i64, i64) = (totals.get(0), totals.get(1), totals.get(2));
    assert_eq!((total_rows, total_events), (hours, 6_000), "one totals row per hour");
    assert_eq!((minute_events, hour_events), (6_000, 6_000));

    // Every answer is what the raw rows say: counts per hour and per 15 minutes exactly, and the
    // first half's exact fields are what they were before the folding.
    let raw = client
        .query(
            "SELECT date_trunc('hour', timestamp), count(*) FROM events WHERE project_id = $1 GROUP BY 1 ORDER BY 1",
            &[&read.project],
        )
        .await
        .expect("raw hours");
    let hourly = read.get(&paths[0], &read.key).await.expect(200, "after");
    assert_eq!(
        counts(&hourly),
        raw.iter().map(|row| row.get::<_, i64>(1)).collect::<Vec<_>>()
    );
    let quarter = read.get(&paths[1], &read.key).await.expect(200, "after");
    assert_eq!(counts(&quarter).iter().sum::<i64>(), 6_000);
    let raw_users: i64 = client
        .query_one(
            "SELECT count(DISTINCT user_id) FROM events WHERE project_id = $1 AND timestamp >= $2 AND timestamp < $2 + interval '1 hour'",
            &[&read.project, &first_hour],
        )
        .await
        .expect("raw users")
        .get(0);
    let estimate = hourly["buckets"][0]["unique_users"].as_f64().expect("users");
    assert!(
        close(estimate, raw_users as f64, DISTINCT_BOUND),
        "{estimate} vs {raw_users}"
    );

    // Folding is lossless: the folded rows answer exactly what rollups rebuilt from the raw
    // rows answer (sketches of different merge orders aside, checked above against SQL).
    let mut folded = Vec::new();
    for path in &paths {
        folded.push(read.get(path, &read.key).await.expect(200, "folded"));
    }
    rebuild(&read, &start, &end).await;
    for (path, folded) in paths.iter().zip(&folded) {
        let rebuilt = read.get(path, &read.key).await.expect(200, "rebuilt");
        assert_eq!(exact_fields(&rebuilt), exact_fields(folded), "{path}");
    }
}
