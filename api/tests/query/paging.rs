//! Paging `GET /v1/events` while events keep arriving: every event stored before the first page
//! is seen exactly once, none twice.

use std::collections::HashSet;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids, ReadStack};

fn events(count: i64, minutes_back: i64) -> Vec<Value> {
    let now = Utc::now();
    (0..count)
        .map(|i| {
            // Several events share each millisecond, so ties on timestamp are ordered by id.
            let at = now - ChronoDuration::minutes(minutes_back) + ChronoDuration::milliseconds(i / 3);
            json!({"id": Uuid::new_v4(), "event_type": "tick", "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true)})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_under_concurrent_ingestion_never_skips_or_repeats() {
    let read = ReadStack::start(&[]).await;
    let before: Vec<Value> = events(300, 30);
    for chunk in before.chunks(100) {
        read.ingest(chunk).await;
    }
    read.stored(300).await;
    let wanted: HashSet<String> = before
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        // Between pages, more events arrive: newer than the first page, inside the range already
        // paged, and older than the cursor.
        read.ingest(&events(10, 0)).await;
        read.ingest(&events(5, 30)).await;
        read.ingest(&events(5, 60)).await;
        let path = match &cursor {
            Some(cursor) => format!("/v1/events?limit=40&cursor={cursor}"),
            None => "/v1/events?limit=40".to_owned(),
        };
        let page = read.get(&path, &read.key).await.expect(200, "page");
        seen.extend(ids(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "paging ends");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event is repeated across {pages} pages");
    let missing: Vec<&String> = wanted.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} events stored before the first page were skipped",
        missing.len()
    );
}
