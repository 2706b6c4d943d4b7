//! Reconnecting with `Last-Event-ID` (or `last_event_id=`): what was missed comes back from the
//! stored-events topic in the order a live client saw it, without a gap or a repeat; a resume
//! that cannot be exact says `reset`.

use std::time::Duration;

use uuid::Uuid;

use crate::clients::{SseClient, WsClient};
use crate::{events, ids, StreamStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_reconnect_with_last_event_id_misses_nothing_inside_the_window() {
    let s = StreamStack::start(&[]).await;
    let url = format!("{}/v1/stream/sse", s.stack.api.base_url());
    // Connected throughout: the order every client of the project sees.
    let mut observer = SseClient::connect(&url, Some(&s.key), None).await;
    let mut client = SseClient::connect(&url, Some(&s.key), None).await;

    let first = events(10, "page_view");
    s.ingest(&first).await;
    let (seen, _) = client.event_ids(4, PATIENCE).await;
    assert_eq!(seen.len(), 4);
    let last_seen = seen[3].clone();
    client.disconnect();

    // Missed while away: the rest of the first batch and two more batches.
    let more = [events(10, "page_view"), events(10, "page_view")].concat();
    s.ingest(&more[..10]).await;
    s.ingest(&more[10..]).await;
    let (order, _) = observer.event_ids(30, PATIENCE).await;
    assert_eq!(order.len(), 30);
    let position = order
        .iter()
        .position(|id| *id == last_seen)
        .expect("the observer saw it");
    let missed: Vec<String> = order[position + 1..].to_vec();

    let mut resumed = SseClient::connect(&url, Some(&s.key), Some(&last_seen)).await;
    assert_eq!(resumed.status, 200);
    let (replayed, notices) = resumed.event_ids(missed.len(), PATIENCE).await;
    assert!(notices.is_empty(), "no reset: {notices:?}");
    assert_eq!(
        replayed, missed,
        "resumed right after the last event seen, in stream order"
    );

    // And it goes on live, without repeating anything.
    let live = events(5, "page_view");
    s.ingest(&live).await;
    let (next, _) = resumed.event_ids(5, PATIENCE).await;
    let mut expected = ids(&live);
    expected.sort();
    let mut got = next.clone();
    got.sort();
    assert_eq!(got, expected);

    // A WebSocket resumes the same way, with last_event_id=.
    let mut ws = WsClient::connect(
        &s.ws_url(&s.stack.api, &format!("/v1/stream?last_event_id={last_seen}")),
        Some(&s.key),
    )
    .await
    .expect("ws");
    let from_ws = ws.event_ids(missed.len() + 5, PATIENCE).await;
    assert_eq!(from_ws[..missed.len()], missed[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_cannot_be_exact_says_reset_and_goes_on_live() {
    let s = StreamStack::start(&[]).await;
    let url = format!("{}/v1/stream/sse", s.stack.api.base_url());
    let unknown = Uuid::now_v7().to_string();
    let mut client = SseClient::connect(&url, Some(&s.key), Some(&unknown)).await;
    assert_eq!(client.status, 200);
    let reset = client.next(PATIENCE).await.expect("a notice");
    assert_eq!(reset.event, "reset");
    let reason = reset.json()["data"]["reason"].as_str().expect("reason").to_owned();
    assert!(reason.contains(&unknown), "{reason}");
    let sent = events(3, "x");
    s.ingest(&sent).await;
    let (got, _) = client.event_ids(3, PATIENCE).await;
    assert_eq!(got.len(), 3);

    // Another project's event id is unknown here too (no peeking across tenants).
    let theirs = events(1, "x");
    s.ingest_with(&s.other_key, &theirs).await;
    s.stack
        .db
        .wait_for_events(s.other_project, 1, Duration::from_secs(30))
        .await;
    let mut nosy = SseClient::connect(&url, Some(&s.key), Some(&ids(&theirs)[0])).await;
    assert_eq!(nosy.next(PATIENCE).await.expect("notice").event, "reset");

    // A malformed Last-Event-ID is a 400.
    let bad = SseClient::connect(&url, Some(&s.key), Some("not-an-id")).await;
    assert_eq!(bad.status, 400);
}
