//! Promise 7 on the api: on SIGTERM, requests already in flight are answered (after their
//! events were acknowledged) and the process exits 0.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_requests_in_flight_then_exits_zero() {
    let mut stack = Stack::start(&[]).await;
    let events: Vec<_> = (0..100)
        .map(|i| json!({"event_type": format!("inflight_{i}")}))
        .collect();
    let body = json!({"events": events}).to_string();
    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);

    // A request whose body is only half sent is in flight for sure when the signal comes.
    let addr = stack.api.base_url().trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /v1/events/batch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        stack.project.api_key,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("head");
    slow.write_all(first_half).await.expect("first half");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A burst of ordinary requests around the signal: each is answered 202 or never taken.
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let request = stack
                .http
                .post(stack.url("/v1/events"))
                .bearer_auth(&stack.project.api_key)
                .json(&json!({"event_type": format!("burst_{i}")}));
            tokio::spawn(async move { request.send().await.map(|response| response.status()) })
        })
        .collect();

    let finish_slow = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        slow.write_all(second_half).await.expect("second half");
        let mut answer = String::new();
        slow.read_to_string(&mut answer).await.expect("answer");
        answer
    };
    let (status, answer) = tokio::join!(stack.api.terminate(Duration::from_secs(30)), finish_slow);
    assert!(
        answer.starts_with("HTTP/1.1 202"),
        "in-flight request not answered 202:\n{answer}"
    );
    assert!(answer.contains("\"accepted\":100"), "{answer}");
    assert!(status.success(), "exit status {status:?}:\n{}", stack.api.logs());

    let mut accepted = 0;
    for request in burst {
        match request.await.expect("task") {
            Ok(status) => {
                assert_eq!(status.as_u16(), 202, "a request taken before the stop must be accepted");
                accepted += 1;
            }
            Err(error) => assert!(error.is_connect() || error.is_request(), "{error}"),
        }
    }
    let logs = stack.api.logs();
    assert!(logs.contains("Producer flushed"), "{logs}");

    // Everything answered 202 is on the topic.
    let expected = 100 + accepted;
    let messages = stack
        .kafka
        .consume(&stack.kafka.topics().events, expected, Duration::from_secs(30))
        .await;
    assert_eq!(messages.len(), expected);
}
