//! Exports: what the downloads hold (CSV with a header and quoting, JSON, NDJSON, the
//! aggregated buckets), their file names, and a million-row export with the api's memory flat.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids, ReadStack};

async fn download(read: &ReadStack, path: &str) -> (String, String) {
    let response = read
        .stack
        .http
        .get(format!("{}{path}", read.stack.api.base_url()))
        .bearer_auth(&read.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (disposition, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_hold_the_events_and_buckets_in_each_format() {
    let read = ReadStack::start(&[]).await;
    let now = Utc::now();
    let events: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "id": Uuid::now_v7(),
                "timestamp": (now - ChronoDuration::minutes(i)).to_rfc3339_opts(SecondsFormat::Millis, true),
                "event_type": "export",
                "source": "a, \"quoted\" source",
                "tags": ["x", "y"],
                "duration_ms": i,
                "data": {"line": "one\ntwo", "i": i},
            })
        })
        .collect();
    read.ingest(&events).await;
    read.stored(30).await;
    let listed = read.get("/v1/events?limit=100", &read.key).await.expect(200, "list");
    let order = ids(&listed);

    let (disposition, csv_text) = download(&read, "/v1/export/events").await;
    let today = now.format("%Y-%m-%d").to_string();
    let yesterday = (now - ChronoDuration::days(1)).format("%Y-%m-%d").to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains(&format!("events_{yesterday}_{today}.csv")),
        "{disposition}"
    );
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[0], "id");
    assert_eq!(&headers[12], "metadata");
    let records: Vec<csv::StringRecord> = reader.records().map(|record| record.expect("record")).collect();
    assert_eq!(records.iter().map(|r| r[0].to_owned()).collect::<Vec<_>>(), order);
    assert_eq!(&records[0][4], "a, \"quoted\" source", "quoting round-trips");
    let data: Value = serde_json::from_str(&records[0][11]).expect("data cell is JSON");
    assert_eq!(data["line"], "one\ntwo");
    assert_eq!(&records[0][10], r#"["x","y"]"#);

    let (disposition, ndjson) = download(&read, "/v1/export/events?format=ndjson").await;
    assert!(
        disposition.ends_with(".ndjson\"") || disposition.ends_with(".ndjson"),
        "{disposition}"
    );
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).expect("line"))
        .collect();
    assert_eq!(Value::Array(lines), listed["data"]);
    let (_, json_text) = download(&read, "/v1/export/events?format=json&event_type=export").await;
    assert_eq!(serde_json::from_str::<Value>(&json_text).expect("json"), listed["data"]);
    let (_, nothing) = download(&read, "/v1/export/events?format=json&event_type=none").await;
    assert_eq!(nothing, "[]");
    let (_, header_only) = download(&read, "/v1/export/events?event_type=none").await;
    assert_eq!(
        header_only.lines().count(),
        1,
        "a CSV with no event still has its header"
    );

    let (disposition, buckets) = download(&read, "/v1/export/aggregated?interval=1h").await;
    assert!(disposition.contains("aggregated_1h_"), "{disposition}");
    let mut reader = csv::Reader::from_reader(buckets.as_bytes());
    assert_eq!(&reader.headers().expect("header")[1], "count");
    let total: i64 = reader
        .records()
        .map(|r| r.expect("record")[1].parse::<i64>().expect("count"))
        .sum();
    assert_eq!(total, 30);

    for (query, parameter) in [("format=xml", "format"), ("limit=5", "limit"), ("cursor=abc", "cursor")] {
        let answer = read.get(&format!("/v1/export/events?{query}"), &read.key).await;
        assert_eq!(answer.status.as_u16(), 400, "{query}");
        assert_eq!(answer.body["error"]["details"]["parameter"], parameter, "{query}");
    }
    read.get("/v1/export/events", &read.ingest_only)
        .await
        .expect(403, "ingest-only key");
}

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_export_streams_with_flat_memory() {
    const ROWS: i64 = 1_000_000;
    let read = ReadStack::start(&[]).await;
    let client = read.stack.db.client().await;
    client
        .execute(
            "INSERT INTO events (id, project_id, \"timestamp\", received_at, event_type, user_id, duration_ms, data)
             SELECT gen_random_uuid(), $1, now() - (i * interval '400 milliseconds'), now(), 'bulk',
                    'user-' || (i % 5000), i % 3000, jsonb_build_object('i', i)
             FROM generate_series(1, $2::int8) i",
            &[&read.project, &ROWS],
        )
        .await
        .expect("seed a million events");
    let pid = read.stack.api.pid().expect("api pid");
    let before = rss_kb(pid);

    let start = (Utc::now() - ChronoDuration::days(6)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let response = read
        .stack
        .http
        .get(format!(
            "{}/v1/export/events?format=ndjson&start={start}",
            read.stack.api.base_url()
        ))
        .bearer_auth(&read.key)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let mut response = response;
    let (mut lines, mut bytes, mut peak) = (0i64, 0usize, before);
    let mut chunks = 0u64;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        bytes += chunk.len();
        lines += chunk.iter().filter(|byte| **byte == b'\n').count() as i64;
        chunks += 1;
        if chunks % 64 == 0 {
            peak = peak.max(rss_kb(pid));
        }
    }
    peak = peak.max(rss_kb(pid));
    assert_eq!(lines, ROWS, "every event exported once");
    let grown_mb = peak.saturating_sub(before) / 1024;
    eprintln!(
        "exported {lines} events, {} MB; api RSS {} MB before, peak {} MB",
        bytes >> 20,
        before / 1024,
        peak / 1024
    );
    assert!(bytes > 100 << 20, "a large download ({} MB)", bytes >> 20);
    assert!(
        grown_mb < 64,
        "the api's memory grew by {grown_mb} MB for a {} MB export",
        bytes >> 20
    );
}
