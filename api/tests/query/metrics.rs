//! Named metrics end to end: points sent over HTTP, carried by real Kafka, stored by a real
//! `pulse-worker metrics` in a real PostgreSQL, read back over HTTP. Ingest (one point, a batch
//! with bad points by index, idempotency on `id`), the raw list (name and label filters, cursor
//! paging), aggregates against the raw points for two intervals, latest (also out of order and
//! grouped by a label), and who may read.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, SecondsFormat, TimeDelta, Utc};
use pulse_testkit::PulseProcess;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::ReadStack;

/// Percentiles: the sketch's 0.5 % relative accuracy, with room for the rank convention.
const QUANTILE_BOUND: f64 = 0.01;

/// A read stack plus a metrics worker.
struct MetricStack {
    read: ReadStack,
    worker: PulseProcess,
}

impl MetricStack {
    async fn start() -> Self {
        let read = ReadStack::start(&[]).await;
        let worker = PulseProcess::metrics_worker(&read.stack.env).await;
        Self { read, worker }
    }

    async fn post(&self, path: &str, body: Value) -> pulse_testkit::management::Answer {
        self.read.stack.post(path, Some(&self.read.key), body).await
    }

    /// Sends `points` in batches of at most 1000; every one must be accepted.
    async fn ingest(&self, points: &[Value]) {
        for chunk in points.chunks(1000) {
            let body = self
                .post("/v1/metrics/batch", json!({"metrics": chunk}))
                .await
                .expect(202, "metrics batch");
            assert_eq!(body["accepted"], chunk.len(), "{body}");
        }
    }

    /// Waits until the project holds `count` points, and checks it is exactly that many.
    async fn stored(&self, count: i64) {
        let seen = self
            .read
            .stack
            .db
            .wait_for_metric_points(self.read.project, count, Duration::from_secs(60))
            .await;
        assert_eq!(
            seen,
            count,
            "points stored; metrics worker logs:\n{}",
            self.worker.logs()
        );
    }

    async fn get(&self, path: &str) -> Value {
        self.read.get(path, &self.read.key).await.expect(200, path)
    }
}

fn at(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn close(actual: f64, expected: f64, bound: f64) -> bool {
    if expected == 0.0 {
        return actual.abs() < 1e-9;
    }
    ((actual - expected) / expected).abs() <= bound
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ingest_one_and_batch_with_bad_points_by_index() {
    let stack = MetricStack::start().await;
    let one = stack
        .post(
            "/v1/metrics",
            json!({"name": "cpu.load", "value": 0.5, "labels": {"host": "a"}}),
        )
        .await
        .expect(202, "one point");
    let one_id = one["id"].as_str().expect("id").to_owned();

    let batch = stack
        .post(
            "/v1/metrics/batch",
            json!({"metrics": [
                {"name": "cpu.load", "value": 1},
                {"name": "cpu load", "value": 1},
                {"name": "cpu.load", "value": 2.5, "labels": {"host": "b"}},
                {"name": "cpu.load", "value": "3"},
                {"name": "cpu.load", "labels": {"host": 7}, "value": 4},
                {"name": "mem.used", "value": -12.25, "timestamp": "2026-12-01T10:00:00+02:00"},
            ]}),
        )
        .await
        .expect(202, "batch with bad points");
    assert_eq!(batch["accepted"], 3, "{batch}");
    assert_eq!(batch["ids"].as_array().expect("ids").len(), 3);
    let rejected: Vec<(u64, String, String)> = batch["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["code"].as_str().expect("code").to_owned(),
                r["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "INVALID_METRIC".into(), "name".into()),
            (3, "INVALID_METRIC".into(), "value".into()),
            (4, "INVALID_METRIC".into(), "labels.host".into()),
        ]
    );

    // Whole-request refusals, in the house envelope.
    let single_bad = stack
        .post(
            "/v1/metrics",
            json!({"name": "x", "value": 1, "labels": {"k": "v".repeat(129)}}),
        )
        .await;
    assert_eq!((single_bad.status.as_u16(), single_bad.code()), (400, "INVALID_METRIC"));
    assert_eq!(single_bad.body["error"]["details"]["field"], "labels.k");
    let none_valid = stack
        .post("/v1/metrics/batch", json!({"metrics": [{"value": 1}]}))
        .await;
    assert_eq!(
        (none_valid.status.as_u16(), none_valid.code()),
        (400, "VALIDATION_FAILED")
    );
    assert_eq!(none_valid.body["error"]["details"]["rejected"][0]["field"], "name");
    let empty = stack.post("/v1/metrics/batch", json!({"metrics": []})).await;
    assert_eq!((empty.status.as_u16(), empty.code()), (400, "EMPTY_BATCH"));
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"name": "x", "value": 1})).collect();
    let over = stack.post("/v1/metrics/batch", json!({"metrics": too_many})).await;
    assert_eq!((over.status.as_u16(), over.code()), (413, "TOO_MANY_METRICS"));
    let wrong_shape = stack.post("/v1/metrics/batch", json!({"events": []})).await;
    assert_eq!((wrong_shape.status.as_u16(), wrong_shape.code()), (400, "INVALID_JSON"));

    stack.stored(4).await;
    let page = stack.get("/v1/metrics?name=cpu.load").await;
    let ids: HashSet<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(one_id.as_str()), "{page}");
    assert_eq!(ids.len(), 3);
    let mem = stack
        .get("/v1/metrics?name=mem.used&start=2026-12-01T00:00:00Z&end=2026-12-02T00:00:00Z")
        .await;
    assert_eq!(mem["data"][0]["value"], -12.25);
    assert_eq!(mem["data"][0]["timestamp"], "2026-12-01T08:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_idempotent_on_id_stored_and_counted_once() {
    let stack = MetricStack::start().await;
    let id = Uuid::now_v7();
    let minute = (Utc::now() - ChronoDuration::minutes(10))
        .duration_trunc(TimeDelta::minutes(1))
        .expect("minute");
    let point = json!({"id": id, "name": "queue.depth", "value": 5, "timestamp": at(minute)});
    stack.post("/v1/metrics", point.clone()).await.expect(202, "first");
    stack.post("/v1/metrics", point.clone()).await.expect(202, "again");
    // A changed resend keeps the first version, and a repeat inside one batch is dropped.
    let changed = json!({"id": id, "name": "queue.depth", "value": 500, "timestamp": at(minute)});
    stack.ingest(&[changed.clone(), changed]).await;
    let other = json!({"name": "queue.depth", "value": 1, "timestamp": at(minute + ChronoDuration::seconds(1))});
    stack.ingest(&[other]).await;
    stack.stored(2).await;
    // Give the worker time to (wrongly) store a redelivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.read.stack.db.count_metric_points(stack.read.project).await, 2);
    let aggregate = stack
        .get(&format!(
            "/v1/metrics/queue.depth/aggregate?interval=1m&start={}&end={}",
            at(minute),
            at(minute + ChronoDuration::minutes(1))
        ))
        .await;
    let bucket = &aggregate["buckets"][0];
    assert_eq!(
        (bucket["count"].as_i64(), bucket["sum"].as_f64()),
        (Some(2), Some(6.0)),
        "{aggregate}"
    );
    assert_eq!(bucket["max"], 5.0, "the first version of the id wins");
    assert_eq!(
        stack.worker.metric("pulse_metric_points_persisted_total").await,
        2.0,
        "persisted counter"
    );
    assert!(stack.worker.metric("pulse_metric_points_duplicate_total").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_raw_list_filters_by_name_and_labels_and_pages_by_cursor() {
    let stack = MetricStack::start().await;
    let now = Utc::now();
    let mut points = Vec::new();
    for i in 0..60i64 {
        // Several points share each millisecond: ties on timestamp are ordered by id.
        let time = now - ChronoDuration::minutes(30) + ChronoDuration::milliseconds(i / 3);
        let host = if i % 3 == 0 { "a" } else { "b" };
        let dc = if i % 2 == 0 { "eu" } else { "us" };
        points.push(
            json!({"id": Uuid::now_v7(), "name": "req.latency", "value": i, "timestamp": at(time),
                           "labels": {"host": host, "dc": dc}}),
        );
    }
    points.push(json!({"name": "other", "value": 1, "timestamp": at(now - ChronoDuration::minutes(30)), "labels": {"host": "a"}}));
    stack.ingest(&points).await;
    stack.stored(61).await;

    let matching = |host: &str, dc: Option<&str>| -> Vec<(String, String)> {
        let mut wanted: Vec<(String, String)> = points[..60]
            .iter()
            .filter(|p| p["labels"]["host"] == host && dc.is_none_or(|dc| p["labels"]["dc"] == dc))
            .map(|p| {
                let time: DateTime<Utc> = p["timestamp"].as_str().expect("ts").parse().expect("time");
                (at(time), p["id"].as_str().expect("id").to_owned())
            })
            .collect();
        wanted.sort();
        wanted.reverse();
        wanted
    };

    for (query, host, dc) in [
        ("labels.host=b", "b", None),
        ("labels.host=a&labels.dc=eu", "a", Some("eu")),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/metrics?name=req.latency&{query}&limit=7&cursor={cursor}"),
                None => format!("/v1/metrics?name=req.latency&{query}&limit=7"),
            };
            let page = stack.get(&path).await;
            for point in page["data"].as_array().expect("data") {
                assert_eq!(point["name"], "req.latency");
                assert_eq!(point["labels"]["host"], host);
                let time: DateTime<Utc> = point["timestamp"].as_str().expect("ts").parse().expect("time");
                seen.push((at(time), point["id"].as_str().expect("id").to_owned()));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            assert!(seen.len() <= 60, "paging ends");
        }
        let wanted = matching(host, dc);
        assert_eq!(
            seen, wanted,
            "{query}: every matching point once, newest first by (timestamp, id)"
        );
    }

    for (path, parameter) in [
        ("/v1/metrics", "name"),
        ("/v1/metrics?name=bad%20name", "name"),
        ("/v1/metrics?name=x&labels.bad-key=1", "labels"),
        ("/v1/metrics?name=x&cursor=nope", "cursor"),
        ("/v1/metrics?name=x&colour=red", "query"),
    ] {
        let answer = stack.read.get(path, &stack.read.key).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, "INVALID_PARAMETER"),
            "{path}"
        );
        assert_eq!(answer.body["error"]["details"]["parameter"], parameter, "{path}");
    }
}

/// What the raw points of one bucket say: count, sum, min, max and the sorted values.
#[derive(Default)]
struct Expected {
    values: Vec<f64>,
}

impl Expected {
    fn quantile(&self, q: f64) -> f64 {
        // DDSketch's rank: floor(q * (n - 1)) in sorted order.
        self.values[(q * (self.values.len() - 1) as f64) as usize]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_aggregate_buckets_match_the_raw_points() {
    let stack = MetricStack::start().await;
    let first_hour = (Utc::now() - ChronoDuration::hours(4))
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour");
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let points: Vec<(DateTime<Utc>, f64)> = (0..3000)
        .map(|_| {
            let time = first_hour + ChronoDuration::milliseconds((next() % (3 * 3_600_000)) as i64);
            // Whole and quarter values, some negative: sums stay exact in float8.
            let value = (next() % 40_000) as f64 / 4.0 - 1000.0;
            (time, value)
        })
        .collect();
    let bodies: Vec<Value> = points
        .iter()
        .enumerate()
        .map(|(i, (time, value))| {
            json!({"name": "job.seconds", "value": value, "timestamp": at(*time), "labels": {"shard": (i % 5).to_string()}})
        })
        .collect();
    stack.ingest(&bodies).await;
    stack.stored(points.len() as i64).await;

    for (interval, width) in [("5m", TimeDelta::minutes(5)), ("1h", TimeDelta::hours(1))] {
        let answer = stack
            .get(&format!(
                "/v1/metrics/job.seconds/aggregate?interval={interval}&start={}&end={}",
                at(first_hour),
                at(first_hour + TimeDelta::hours(3))
            ))
            .await;
        let buckets = answer["buckets"].as_array().expect("buckets");
        assert_eq!(
            buckets.len() as i64,
            TimeDelta::hours(3).num_seconds() / width.num_seconds()
        );
        let mut expected: BTreeMap<DateTime<Utc>, Expected> = BTreeMap::new();
        for (time, value) in &points {
            expected
                .entry(time.duration_trunc(width).expect("bucket"))
                .or_default()
                .values
                .push(*value);
        }
        let mut total = 0;
        for bucket in buckets {
            let start: DateTime<Utc> = bucket["start"].as_str().expect("start").parse().expect("time");
            let Some(raw) = expected.get_mut(&start) else {
                assert_eq!(bucket["count"], 0, "{bucket}");
                assert!(bucket["p50"].is_null());
                continue;
            };
            raw.values.sort_by(f64::total_cmp);
            let n = raw.values.len();
            let sum: f64 = raw.values.iter().sum();
            total += n;
            assert_eq!(bucket["count"].as_u64(), Some(n as u64), "{interval} {start}");
            assert_eq!(bucket["sum"].as_f64(), Some(sum), "{interval} {start}");
            assert_eq!(bucket["min"].as_f64(), Some(raw.values[0]), "{interval} {start}");
            assert_eq!(bucket["max"].as_f64(), Some(raw.values[n - 1]), "{interval} {start}");
            // serde_json's default float parsing may be one ulp off on long decimals.
            let avg = bucket["avg"].as_f64().expect("avg");
            assert!(close(avg, sum / n as f64, 1e-12), "{interval} {start}: avg {avg}");
            for (field, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
                let got = bucket[field].as_f64().expect(field);
                let want = raw.quantile(q);
                // Around zero a relative bound means little: allow one step of the data (0.25).
                assert!(
                    close(got, want, QUANTILE_BOUND) || (got - want).abs() <= 0.25 + want.abs() * QUANTILE_BOUND,
                    "{interval} {start} {field}: {got} vs {want}"
                );
            }
        }
        assert_eq!(total, points.len(), "{interval}: every point in one bucket");
    }

    // An unknown metric: 200, every bucket empty. A label filter is refused, not ignored.
    let unknown = stack.get("/v1/metrics/never.seen/aggregate?interval=1h").await;
    assert!(unknown["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .all(|b| b["count"] == 0));
    let labelled = stack
        .read
        .get("/v1/metrics/job.seconds/aggregate?labels.shard=1", &stack.read.key)
        .await;
    assert_eq!((labelled.status.as_u16(), labelled.code()), (400, "INVALID_PARAMETER"));
    assert_eq!(labelled.body["error"]["details"]["parameter"], "labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_latest_and_group_by_match_the_raw_points() {
    let stack = MetricStack::start().await;
    let base = (Utc::now() - ChronoDuration::minutes(20))
        .duration_trunc(TimeDelta::seconds(1))
        .expect("second");
    let t = |seconds: i64| at(base + ChronoDuration::seconds(seconds));
    stack
        .ingest(&[
            json!({"name": "temp", "value": 1, "timestamp": t(10), "labels": {"host": "a", "dc": "eu"}}),
            json!({"name": "temp", "value": 2, "timestamp": t(30), "labels": {"host": "a", "dc": "eu"}}),
            json!({"name": "temp", "value": 3, "timestamp": t(20), "labels": {"host": "b", "dc": "eu"}}),
            json!({"name": "temp", "value": 4, "timestamp": t(5), "labels": {"dc": "us"}}),
            json!({"name": "temp", "value": 5, "timestamp": t(25), "labels": {"host": "c", "dc": "us"}}),
        ])
        .await;
    stack.stored(5).await;
    let latest = stack.get("/v1/metrics/temp/latest").await;
    assert_eq!(
        (latest["name"].as_str(), latest["point"]["value"].as_f64()),
        (Some("temp"), Some(2.0)),
        "{latest}"
    );
    assert_eq!(latest["point"]["labels"], json!({"host": "a", "dc": "eu"}));

    // Out of order: an older point of host a arrives later and must not replace the newer one;
    // a newer one of host b replaces b's.
    stack
        .ingest(&[
            json!({"name": "temp", "value": 99, "timestamp": t(1), "labels": {"host": "a", "dc": "eu"}}),
            json!({"name": "temp", "value": 6, "timestamp": t(40), "labels": {"host": "b", "dc": "eu"}}),
        ])
        .await;
    stack.stored(7).await;
    let latest = stack.get("/v1/metrics/temp/latest").await;
    assert_eq!(latest["point"]["value"], 6.0, "{latest}");

    let grouped = stack.get("/v1/metrics/temp/latest?group_by=labels.host").await;
    assert_eq!(grouped["group_by"], "labels.host");
    let groups: Vec<(Value, f64)> = grouped["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["value"].clone(), g["point"]["value"].as_f64().expect("value")))
        .collect();
    assert_eq!(
        groups,
        [
            (json!("a"), 2.0),
            (json!("b"), 6.0),
            (json!("c"), 5.0),
            (Value::Null, 4.0)
        ],
        "{grouped}"
    );
    let by_dc = stack
        .get("/v1/metrics/temp/latest?group_by=labels.dc&labels.dc=us")
        .await;
    let dcs: Vec<(Value, f64)> = by_dc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["value"].clone(), g["point"]["value"].as_f64().expect("value")))
        .collect();
    assert_eq!(dcs, [(json!("us"), 5.0)], "{by_dc}");

    // The same, computed from the raw points.
    let raw = stack.get("/v1/metrics?name=temp&limit=1000").await;
    let newest = &raw["data"][0];
    assert_eq!(newest["id"], latest["point"]["id"], "latest is the newest raw point");

    let missing = stack.read.get("/v1/metrics/never.seen/latest", &stack.read.key).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, "NOT_FOUND"));
    let bad_group = stack
        .read
        .get("/v1/metrics/temp/latest?group_by=host", &stack.read.key)
        .await;
    assert_eq!(bad_group.body["error"]["details"]["parameter"], "group_by");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_auth_401_403_404() {
    let stack = MetricStack::start().await;
    let read = &stack.read;
    let body = json!({"name": "cpu", "value": 1});
    for key in [None, Some("pk_unknown0000000000000000000000000000000000000")] {
        let answer = read.stack.post("/v1/metrics", key, body.clone()).await;
        assert_eq!(answer.status.as_u16(), 401, "ingest without a valid key");
        let answer = read
            .stack
            .call(reqwest::Method::GET, "/v1/metrics/cpu/latest", key, None)
            .await;
        assert_eq!(answer.status.as_u16(), 401, "read without a valid key");
    }
    // An ingest-only key cannot read; a read-only key cannot ingest.
    let answer = read.get("/v1/metrics?name=cpu", &read.ingest_only).await;
    assert_eq!((answer.status.as_u16(), answer.code()), (403, "FORBIDDEN"));
    let (_, read_only) = read
        .stack
        .key(&read.user, read.project, json!({"name": "r", "scopes": ["read"]}))
        .await;
    let answer = read
        .stack
        .post("/v1/metrics/batch", Some(&read_only), json!({"metrics": [body]}))
        .await;
    assert_eq!((answer.status.as_u16(), answer.code()), (403, "FORBIDDEN"));
    // A member's token reads its project; another tenant's project is 404.
    stack
        .post("/v1/metrics", json!({"name": "cpu", "value": 1}))
        .await
        .expect(202, "point");
    stack.stored(1).await;
    let mine = read
        .get(
            &format!("/v1/metrics/cpu/latest?project_id={}", read.project),
            &read.user.access,
        )
        .await;
    assert_eq!(mine.status.as_u16(), 200, "{}", mine.body);
    let stranger = read
        .stack
        .register(&format!("stranger-{}@example.com", Uuid::new_v4()))
        .await;
    for path in [
        format!("/v1/metrics?name=cpu&project_id={}", read.project),
        format!("/v1/metrics/cpu/latest?project_id={}", read.project),
        format!("/v1/metrics/cpu/aggregate?project_id={}", read.project),
    ] {
        let answer = read.get(&path, &stranger.access).await;
        assert_eq!((answer.status.as_u16(), answer.code()), (404, "NOT_FOUND"), "{path}");
    }
    let other_project = read.stack.project(&stranger, json!({})).await;
    let answer = read
        .get(&format!("/v1/metrics/cpu/latest?project_id={other_project}"), &read.key)
        .await;
    assert_eq!(answer.status.as_u16(), 404, "a key naming another project");
}
