//! Promise 4 at the door: every kind of bad request gets a 4xx with the error envelope (never a
//! 500, never a crash), and the api keeps serving good requests afterwards.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{expect_accepted, expect_error, gzip, Stack};

const MAX_BODY: usize = 2_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_with_the_envelope() {
    let stack = Stack::start(&[
        ("PULSE_MAX_BODY_BYTES", &MAX_BODY.to_string()),
        ("PULSE_MAX_BATCH_EVENTS", "10"),
    ])
    .await;
    let single = "/v1/events";
    let batch = "/v1/events/batch";
    let raw = |body: &str| body.as_bytes().to_vec();

    // Malformed JSON: serde's message with its position.
    let body = expect_error(
        stack.post_raw(single, raw("{\"event_type\": \"x\",\n}"), &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;
    assert!(
        body["error"]["message"].as_str().expect("message").contains("line 2"),
        "{body}"
    );
    expect_error(
        stack.post_raw(batch, raw("{\"events\": [{]}"), &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;
    expect_error(
        stack.post_raw(single, Vec::new(), &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;
    expect_error(
        stack.post_raw(batch, raw("[1, 2]"), &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;
    expect_error(
        stack.post_raw(batch, raw("{\"evts\": []}"), &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;
    expect_error(
        stack.post_raw(single, vec![0xff, 0xfe, b'{'], &[]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
    )
    .await;

    // Wrong types and unknown fields, named.
    let body = expect_error(
        stack.post_json(single, &json!({"event_type": 5})).await,
        StatusCode::BAD_REQUEST,
        "INVALID_EVENT",
    )
    .await;
    assert_eq!(body["error"]["details"]["field"], "event_type");
    let body = expect_error(
        stack
            .post_json(single, &json!({"event_type": "x", "duration_ms": "fast"}))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_EVENT",
    )
    .await;
    assert_eq!(body["error"]["details"]["field"], "duration_ms");
    let body = expect_error(
        stack
            .post_json(single, &json!({"event_type": "x", "extra": true}))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_EVENT",
    )
    .await;
    assert_eq!(body["error"]["details"]["field"], "extra");
    expect_error(
        stack
            .post_json(single, &json!({"event_type": "x", "data": {"a": "nul\u{0}"}}))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_EVENT",
    )
    .await;
    expect_error(
        stack.post_json(single, &json!([{"event_type": "x"}])).await,
        StatusCode::BAD_REQUEST,
        "INVALID_EVENT",
    )
    .await;

    // A batch with no valid event, an empty one, one too many.
    let body = expect_error(
        stack
            .post_json(
                batch,
                &json!({"events": [{"event_type": ""}, {"event_type": "x", "tags": "t"}]}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    )
    .await;
    let rejected = body["error"]["details"]["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 2);
    assert_eq!(
        (rejected[0]["index"].clone(), rejected[1]["index"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(rejected[1]["field"], "tags");
    expect_error(
        stack.post_json(batch, &json!({"events": []})).await,
        StatusCode::BAD_REQUEST,
        "EMPTY_BATCH",
    )
    .await;
    let eleven: Vec<Value> = (0..11).map(|i| json!({"event_type": format!("e{i}")})).collect();
    expect_error(
        stack.post_json(batch, &json!({"events": eleven})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "TOO_MANY_EVENTS",
    )
    .await;

    // Sizes: a body over the limit, an event whose envelope would exceed Kafka's limit, a zip bomb.
    let huge = json!({"event_type": "x", "data": {"blob": "a".repeat(MAX_BODY)}});
    expect_error(
        stack.post_json(single, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    let large = json!({"event_type": "x", "data": {"blob": "a".repeat(950 * 1024)}});
    expect_error(
        stack.post_json(single, &large).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "EVENT_TOO_LARGE",
    )
    .await;
    let answer = expect_accepted(
        stack
            .post_json(batch, &json!({"events": [large, {"event_type": "small"}]}))
            .await,
    )
    .await;
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["code"], "EVENT_TOO_LARGE");
    assert_eq!(answer["rejected"][0]["index"], 0);
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    expect_error(
        stack.post_raw(single, bomb, &[("content-encoding", "gzip")]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Content type and encoding.
    expect_error(
        stack
            .post_raw(
                single,
                raw("{\"event_type\": \"x\"}"),
                &[("content-type", "text/plain")],
            )
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    let no_type = stack
        .http
        .post(stack.url(single))
        .header("x-api-key", &stack.project.api_key)
        .body("{\"event_type\": \"x\"}")
        .send()
        .await
        .expect("sent");
    expect_error(no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE").await;
    expect_error(
        stack
            .post_raw(single, raw("{\"event_type\": \"x\"}"), &[("content-encoding", "br")])
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_ENCODING",
    )
    .await;
    expect_error(
        stack
            .post_raw(single, raw("{\"event_type\": \"x\"}"), &[("content-encoding", "gzip")])
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_GZIP",
    )
    .await;
    let mut truncated = gzip(b"{\"event_type\": \"x\", \"data\": {\"k\": \"some longer value\"}}");
    truncated.truncate(truncated.len() / 2);
    expect_error(
        stack.post_raw(single, truncated, &[("content-encoding", "gzip")]).await,
        StatusCode::BAD_REQUEST,
        "INVALID_GZIP",
    )
    .await;

    // Good gzip, single and batch, and an `application/*+json` type.
    expect_accepted(
        stack
            .post_raw(
                single,
                gzip(b"{\"event_type\": \"zipped\"}"),
                &[("content-encoding", "gzip")],
            )
            .await,
    )
    .await;
    let zipped_batch = gzip(
        json!({"events": [{"event_type": "z1"}, {"event_type": "z2"}]})
            .to_string()
            .as_bytes(),
    );
    let answer = expect_accepted(
        stack
            .post_raw(
                batch,
                zipped_batch,
                &[
                    ("content-encoding", "gzip"),
                    ("content-type", "application/vnd.pulse+json"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(answer["accepted"], 2);

    // Routes and methods.
    let missing = stack
        .http
        .get(stack.url("/v1/nothing-here"))
        .send()
        .await
        .expect("sent");
    expect_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // GET /v1/events reads events back (api/tests/query); other methods are 405.
    let wrong_method = stack.http.put(stack.url(single)).send().await.expect("sent");
    let allow = wrong_method.headers().get("allow").cloned();
    expect_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    assert_eq!(allow.expect("allow header"), "GET, POST");
    let wrong_method = stack
        .http
        .get(stack.url("/v1/events/batch"))
        .send()
        .await
        .expect("sent");
    let allow = wrong_method.headers().get("allow").cloned();
    expect_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    assert_eq!(allow.expect("allow header"), "POST");
    let post_health = stack.http.post(stack.url("/healthz")).send().await.expect("sent");
    expect_error(post_health, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;

    // Nothing above was a server error.
    let metrics = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        !metrics
            .lines()
            .any(|line| line.starts_with("pulse_http_requests_total") && line.contains("status=\"5")),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/events\""), "{metrics}");
    assert!(!metrics.contains("/v1/nothing-here"), "raw paths must not be labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_and_a_revoked_key_stops_within_the_cache_ttl() {
    let stack = Stack::start(&[("PULSE_API_KEY_CACHE_TTL_SECS", "1")]).await;
    let event = json!({"event_type": "x"});
    let send_with = |name: &'static str, value: String| {
        let request = stack.http.post(stack.url("/v1/events")).json(&event);
        async move { request.header(name, value).send().await.expect("sent") }
    };
    let unauthorized = |response| async move {
        let challenge = reqwest::Response::headers(&response).get("www-authenticate").cloned();
        expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
        assert_eq!(challenge.expect("WWW-Authenticate"), "Bearer");
    };

    // Missing, malformed, well-formed but unknown.
    unauthorized(
        stack
            .http
            .post(stack.url("/v1/events"))
            .json(&event)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    unauthorized(send_with("authorization", "Bearer garbage".into()).await).await;
    unauthorized(send_with("authorization", format!("Basic {}", stack.project.api_key)).await).await;
    unauthorized(send_with("x-api-key", pulse_shared::keys::generate().plain).await).await;

    // Revoked, expired, and a key without the ingest scope.
    let client = stack.db.client().await;
    let revoked = stack.db.create_project().await;
    client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
            &[&revoked.api_key_id],
        )
        .await
        .expect("revoke");
    unauthorized(send_with("x-api-key", revoked.api_key.clone()).await).await;
    let expired = stack.db.create_project().await;
    client
        .execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1",
            &[&expired.api_key_id],
        )
        .await
        .expect("expire");
    unauthorized(send_with("x-api-key", expired.api_key.clone()).await).await;
    let read_only = stack.db.create_project().await;
    client
        .execute(
            "UPDATE api_keys SET scopes = ARRAY['read'] WHERE id = $1",
            &[&read_only.api_key_id],
        )
        .await
        .expect("scope");
    expect_error(
        send_with("x-api-key", read_only.api_key.clone()).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    // A key in use, then revoked: refused once its cache entry expired (TTL 1 s here).
    expect_accepted(send_with("x-api-key", stack.project.api_key.clone()).await).await;
    client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
            &[&stack.project.api_key_id],
        )
        .await
        .expect("revoke");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    unauthorized(send_with("x-api-key", stack.project.api_key.clone()).await).await;

    // An expiry reached while the key is cached is noticed on the next request.
    let soon = stack.db.create_project().await;
    client
        .execute(
            "UPDATE api_keys SET expires_at = now() + interval '1 second' WHERE id = $1",
            &[&soon.api_key_id],
        )
        .await
        .expect("expire soon");
    expect_accepted(send_with("x-api-key", soon.api_key.clone()).await).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    unauthorized(send_with("x-api-key", soon.api_key.clone()).await).await;
}
