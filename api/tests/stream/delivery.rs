//! Who receives what: every stored event exactly once on both transports, nothing of another
//! project, the filters, two api replicas, and who may connect at all.

use std::time::Duration;

use pulse_testkit::PulseProcess;
use serde_json::json;

use crate::clients::{SseClient, WsClient, WsRead};
use crate::{assert_exactly_once, events, ids, StreamStack, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_sse_clients_get_each_stored_event_once_and_nothing_of_other_projects() {
    let s = StreamStack::start(&[]).await;
    let api = &s.stack.api;
    let mut ws = WsClient::connect(&s.ws_url(api, "/v1/stream"), Some(&s.key))
        .await
        .expect("ws");
    // A member's access token in the query string, as a browser's EventSource would send it.
    let mut sse = SseClient::connect(
        &format!(
            "{}/v1/stream/sse?project_id={}&token={}",
            api.base_url(),
            s.project,
            s.user.access
        ),
        None,
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");

    let mine: Vec<_> = (0..4).flat_map(|_| events(25, "page_view")).collect();
    for chunk in mine.chunks(25) {
        s.ingest(chunk).await;
        s.ingest_with(&s.other_key, &events(10, "page_view")).await;
    }
    let expected = ids(&mine);
    let from_ws = ws.event_ids(expected.len(), PATIENCE).await;
    assert_exactly_once(&from_ws, &expected, "websocket");
    let (from_sse, notices) = sse.event_ids(expected.len(), PATIENCE).await;
    assert_exactly_once(&from_sse, &expected, "sse");
    assert!(notices.is_empty(), "{notices:?}");
    // Nothing more: the other project's 40 events went to nobody here.
    assert!(ws.next_of("event", Duration::from_secs(2)).await.is_none());
    assert!(sse.next(Duration::from_secs(1)).await.is_none());

    // The message is the event as GET /v1/events/{id} shows it.
    s.ingest(&[
        json!({"id": uuid::Uuid::now_v7(), "event_type": "purchase", "source": "web", "user_id": "u1",
        "priority": 3, "tags": ["a"], "data": {"amount": 12.5}, "metadata": {"m": true}}),
    ])
    .await;
    let message = ws.next_of("event", PATIENCE).await.expect("event");
    let id = message["data"]["id"].as_str().expect("id");
    let stored = s.get(&format!("/v1/events/{id}"), &s.key).await.expect(200, "get");
    assert_eq!(message, json!({"type": "event", "data": stored}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_come_from_the_query_and_from_subscribe_messages() {
    let s = StreamStack::start(&[]).await;
    let api = &s.stack.api;
    let mut ws = WsClient::connect(&s.ws_url(api, "/v1/stream?event_type=a&event_type=c"), Some(&s.key))
        .await
        .expect("ws");
    let mut sse = SseClient::connect(
        &format!("{}/v1/stream/sse?source=ios", api.base_url()),
        Some(&s.key),
        None,
    )
    .await;

    let a = events(3, "a");
    let b = events(3, "b");
    let c = events(2, "c");
    let ios = vec![json!({"id": uuid::Uuid::now_v7(), "event_type": "b", "source": "ios"})];
    s.ingest(&[a.clone(), b.clone(), c.clone(), ios.clone()].concat()).await;
    let expected = [ids(&a), ids(&c)].concat();
    assert_exactly_once(
        &ws.event_ids(expected.len(), PATIENCE).await,
        &expected,
        "event_type a or c",
    );
    let (from_sse, _) = sse.event_ids(1, PATIENCE).await;
    assert_eq!(from_sse, ids(&ios), "source=ios");

    ws.send(r#"{"type": "subscribe", "event_types": ["b"], "sources": ["web"]}"#)
        .await;
    let ack = ws.next_of("subscribed", PATIENCE).await.expect("ack");
    assert_eq!(
        ack["data"],
        json!({"event_types": ["b"], "sources": ["web"], "metrics": []})
    );
    ws.send("not json").await;
    let error = ws.next_of("error", PATIENCE).await.expect("error message");
    assert!(
        error["data"]["message"]
            .as_str()
            .expect("message")
            .contains("subscribe"),
        "{error}"
    );

    let b2 = events(4, "b");
    s.ingest(&[events(2, "a"), b2.clone(), ios].concat()).await;
    assert_exactly_once(
        &ws.event_ids(4, PATIENCE).await,
        &ids(&b2),
        "after subscribe: b from web",
    );
    assert!(ws.next_of("event", Duration::from_secs(2)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_replicas_both_deliver_every_event() {
    let s = StreamStack::start(&[]).await;
    let second = PulseProcess::api(&s.stack.env).await;
    let mut ws = WsClient::connect(&s.ws_url(&second, "/v1/stream"), Some(&s.key))
        .await
        .expect("ws");
    let mut sse = SseClient::connect(&format!("{}/v1/stream/sse", s.stack.api.base_url()), Some(&s.key), None).await;
    let sent = events(60, "page_view");
    // Ingest through both replicas; each client sees all of it whichever replica accepted it.
    s.ingest(&sent[..30]).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/events/batch", second.base_url()))
        .bearer_auth(&s.key)
        .json(&json!({"events": &sent[30..]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 202);
    let expected = ids(&sent);
    assert_exactly_once(&ws.event_ids(60, PATIENCE).await, &expected, "replica 2 (websocket)");
    assert_exactly_once(&sse.event_ids(60, PATIENCE).await.0, &expected, "replica 1 (sse)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_the_upgrade() {
    let s = StreamStack::start(&[]).await;
    let api = &s.stack.api;
    let base = api.base_url();
    let http = reqwest::Client::new();
    let status_of = |url: String, bearer: Option<String>| {
        let http = http.clone();
        async move {
            let mut request = http
                .get(url)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }
    };
    for path in ["/v1/stream", "/v1/stream/sse"] {
        assert_eq!(
            status_of(format!("{base}{path}"), None).await,
            (401, "UNAUTHORIZED".into()),
            "{path}"
        );
        assert_eq!(
            status_of(format!("{base}{path}?token=pk_live_unknown"), None).await.0,
            401,
            "{path} unknown key in token="
        );
        assert_eq!(
            status_of(format!("{base}{path}"), Some(s.ingest_only.clone())).await,
            (403, "FORBIDDEN".into()),
            "{path} ingest-only key"
        );
        let stranger = s
            .stack
            .register(&format!("stranger-{}@example.com", uuid::Uuid::new_v4()))
            .await;
        assert_eq!(
            status_of(format!("{base}{path}?project_id={}", s.project), Some(stranger.access)).await,
            (404, "NOT_FOUND".into()),
            "{path} another tenant's project"
        );
        assert_eq!(
            status_of(
                format!("{base}{path}?project_id={}", s.other_project),
                Some(s.key.clone())
            )
            .await,
            (404, "NOT_FOUND".into()),
            "{path} a key of another project"
        );
        assert_eq!(
            status_of(format!("{base}{path}?colour=red"), Some(s.key.clone())).await,
            (400, "INVALID_PARAMETER".into()),
            "{path} unknown parameter"
        );
    }
    // A WebSocket route asked without the upgrade: a 400 that points at SSE.
    let plain = http
        .get(format!("{base}/v1/stream"))
        .bearer_auth(&s.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(plain.status(), 400);
    // The token is not in the api's log.
    let ws = WsClient::connect(&s.ws_url(api, &format!("/v1/stream?token={}", s.key)), None).await;
    assert!(ws.is_ok(), "token= authenticates a WebSocket");
    let mut ws = ws.expect("ws");
    drop(ws.read(Duration::from_millis(200)).await);
    assert!(!api.logs().contains(&s.key), "the key appeared in the api's log");
    if let Some(WsRead::Closed(frame)) = ws.read(Duration::from_millis(10)).await {
        panic!("closed early: {frame:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_quiet_connections_alive_and_shutdown_says_reconnect() {
    let mut s = StreamStack::start(&[("PULSE_STREAM_HEARTBEAT_SECS", "1")]).await;
    let mut ws = WsClient::connect(&s.ws_url(&s.stack.api, "/v1/stream"), Some(&s.key))
        .await
        .expect("ws");
    let mut sse = SseClient::connect(&format!("{}/v1/stream/sse", s.stack.api.base_url()), Some(&s.key), None).await;
    // Nothing is sent for 3.5 s: only heartbeats. Both are read at once: a WebSocket client
    // that is not read answers no ping, and three beats without a pong close it.
    let (from_sse, from_ws) = tokio::join!(
        sse.next(Duration::from_millis(3500)),
        ws.read(Duration::from_millis(3500))
    );
    assert!(from_sse.is_none(), "{from_sse:?}");
    assert!(from_ws.is_none(), "{from_ws:?}");
    assert!(
        sse.comments >= 3,
        "greeting and at least two heartbeats, got {}",
        sse.comments
    );
    assert!(ws.pings >= 2, "pings on the same beat, got {}", ws.pings);

    // SIGTERM: each client is told to reconnect before the api drains.
    let terminating = tokio::spawn(async move {
        let status = s.stack.api.terminate(Duration::from_secs(20)).await;
        (s, status)
    });
    match ws.read(PATIENCE).await {
        Some(WsRead::Closed(Some((code, reason)))) => {
            assert_eq!(u16::from(code), 1001, "{reason}");
            assert!(reason.contains("shutting down"), "{reason}");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let closing = sse.next(PATIENCE).await.expect("a last event");
    assert_eq!(closing.event, "closing");
    assert!(sse.next(PATIENCE).await.is_none(), "the stream ends");
    let (_s, status) = terminating.await.expect("terminated");
    assert!(status.success(), "api exit {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_points_reach_the_clients_that_ask_for_their_name() {
    let s = StreamStack::start(&[]).await;
    let _metrics_worker = PulseProcess::metrics_worker(&s.stack.env).await;
    let api = &s.stack.api;
    let mut wants_cpu = WsClient::connect(&s.ws_url(api, "/v1/stream?metrics=cpu.load"), Some(&s.key))
        .await
        .expect("ws");
    let mut sse = SseClient::connect(
        &format!("{}/v1/stream/sse?metrics=cpu.load", api.base_url()),
        Some(&s.key),
        None,
    )
    .await;
    let mut events_only = WsClient::connect(&s.ws_url(api, "/v1/stream"), Some(&s.key))
        .await
        .expect("ws");

    let point = json!({"id": uuid::Uuid::now_v7(), "name": "cpu.load", "value": 0.75, "labels": {"host": "web-1"}});
    let other = json!({"id": uuid::Uuid::now_v7(), "name": "mem.used", "value": 1024.0});
    let answer = s
        .stack
        .post("/v1/metrics/batch", Some(&s.key), json!({"metrics": [point, other]}))
        .await;
    assert_eq!(answer.expect(202, "points")["accepted"], 2);

    let message = wants_cpu.next_of("metric", PATIENCE).await.expect("a metric message");
    let page = s.get("/v1/metrics?name=cpu.load", &s.key).await.expect(200, "points");
    assert_eq!(
        message,
        json!({"type": "metric", "data": page["data"][0]}),
        "the point as GET /v1/metrics lists it"
    );
    let frame = loop {
        let next = sse.next(PATIENCE).await.expect("an SSE message");
        if next.event == "metric" {
            break next;
        }
    };
    assert!(
        frame.id.is_none(),
        "points carry no id: Last-Event-ID stays the last event's"
    );
    assert_eq!(frame.json()["data"]["name"], "cpu.load");
    // Events still come, and mem.used reached nobody.
    let marker = events(1, "marker");
    s.ingest(&marker).await;
    assert_eq!(wants_cpu.event_ids(1, PATIENCE).await, ids(&marker));
    assert_eq!(events_only.event_ids(1, PATIENCE).await, ids(&marker));
    assert!(wants_cpu.next_of("metric", Duration::from_secs(2)).await.is_none());

    // A subscribe message can ask for points too; a bad name is refused.
    events_only
        .send(r#"{"type": "subscribe", "metrics": ["mem.used"]}"#)
        .await;
    let ack = events_only.next_of("subscribed", PATIENCE).await.expect("ack");
    assert_eq!(ack["data"]["metrics"], json!(["mem.used"]));
    events_only
        .send(r#"{"type": "subscribe", "metrics": ["not a name"]}"#)
        .await;
    assert!(events_only.next_of("error", PATIENCE).await.is_some());
    s.stack
        .post(
            "/v1/metrics",
            Some(&s.key),
            json!({"name": "mem.used", "value": 2048.0}),
        )
        .await
        .expect(202, "point");
    let message = events_only.next_of("metric", PATIENCE).await.expect("mem.used");
    assert_eq!(message["data"]["value"], 2048.0);
}
