//! A client that never reads is dropped once its queue passes `PULSE_STREAM_CLIENT_BUFFER`,
//! while another client keeps receiving everything and ingestion keeps accepting.

use std::time::Duration;

use pulse_testkit::eventually;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use uuid::Uuid;

use crate::clients::SseClient;
use crate::{assert_exactly_once, ids, StreamStack, PATIENCE};

/// Opens a WebSocket by hand with a tiny receive window, reads the 101, and never reads again.
async fn stalled_websocket(base_url: &str, key: &str) -> tokio::net::TcpStream {
    let addr = base_url.trim_start_matches("http://");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small window");
    let mut stream = socket.connect(addr.parse().expect("addr")).await.expect("connected");
    let request = format!(
        "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {key}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("handshake sent");
    let mut head = vec![0u8; 1024];
    let read = stream.read(&mut head).await.expect("101");
    assert!(
        String::from_utf8_lossy(&head[..read]).starts_with("HTTP/1.1 101"),
        "upgrade answered"
    );
    stream
}

fn fat_events(count: usize, bytes: usize) -> Vec<Value> {
    let padding = "x".repeat(bytes);
    (0..count)
        .map(|i| json!({"id": Uuid::now_v7(), "event_type": "fat", "data": {"i": i, "padding": padding}}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_while_another_keeps_receiving() {
    let s = StreamStack::start(&[("PULSE_STREAM_CLIENT_BUFFER", "500")]).await;
    let api = &s.stack.api;
    let _stalled = stalled_websocket(api.base_url(), &s.key).await;
    let mut reader = SseClient::connect(&format!("{}/v1/stream/sse", api.base_url()), Some(&s.key), None).await;
    assert!(
        eventually(PATIENCE, || async {
            (api.metric("pulse_stream_clients").await == 2.0).then_some(())
        })
        .await
        .is_some(),
        "both clients registered"
    );

    // About 12 MB of events, in batches of 100: far more than the stalled socket's buffers and
    // its queue of 500, while the reading client may lag a few batches behind.
    let sent = fat_events(6000, 2000);
    let reading = tokio::spawn(async move {
        let (got, notices) = reader.event_ids(6000, PATIENCE).await;
        (got, notices)
    });
    for chunk in sent.chunks(100) {
        s.ingest(chunk).await;
    }
    let (got, notices) = reading.await.expect("reader");
    assert!(notices.is_empty(), "the reading client was not dropped: {notices:?}");
    assert_exactly_once(&got, &ids(&sent), "the reading client");
    let dropped = eventually(PATIENCE, || async {
        let dropped = api.metric("pulse_stream_clients_dropped_total").await;
        (dropped >= 1.0).then_some(dropped)
    })
    .await;
    assert_eq!(dropped, Some(1.0), "exactly the stalled client was dropped");
    assert_eq!(
        api.metric("pulse_stream_clients").await,
        1.0,
        "the reader is still connected"
    );
    let stored = s
        .stack
        .db
        .wait_for_events(s.project, 6000, Duration::from_secs(90))
        .await;
    assert_eq!(stored, 6000, "storage kept up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_sse_client_gets_a_final_notice() {
    let s = StreamStack::start(&[("PULSE_STREAM_CLIENT_BUFFER", "5")]).await;
    let url = format!("{}/v1/stream/sse", s.stack.api.base_url());
    let mut slow = SseClient::connect(&url, Some(&s.key), None).await;
    // Connected but not reading while 15 MB of events arrive: the queue of 5 overflows once
    // the socket buffers (a few MB each way on loopback) are full.
    for _ in 0..6 {
        s.ingest(&fat_events(50, 50_000)).await;
    }
    s.stack
        .db
        .wait_for_events(s.project, 300, Duration::from_secs(60))
        .await;
    let api = &s.stack.api;
    eventually(PATIENCE, || async {
        (api.metric("pulse_stream_clients_dropped_total").await >= 1.0).then_some(())
    })
    .await
    .expect("dropped");
    // Now read: what was queued, then the notice, then the end of the stream.
    let mut last = None;
    while let Some(event) = slow.next(Duration::from_secs(10)).await {
        last = Some(event);
    }
    let last = last.expect("something came");
    assert_eq!(last.event, "dropped", "{last:?}");
    assert!(last.json()["data"]["reason"]
        .as_str()
        .expect("reason")
        .contains("too slow"));
}
