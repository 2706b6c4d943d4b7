//! The OpenAPI document covers every route the app registers, and every documented route answers.

use pulse_testkit::management::ManagementStack as Stack;
use reqwest::{Method, StatusCode};
use uuid::Uuid;

#[tokio::test]
async fn openapi_document_covers_every_route_and_every_documented_route_answers() {
    let stack = Stack::start(&[]).await;
    let spec = stack
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200, "openapi");
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    let paths = spec["paths"].as_object().expect("paths");

    let mut expected: Vec<(String, String)> = pulse_api::management::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    for (method, path) in [
        ("post", pulse_api::app::EVENTS),
        ("post", pulse_api::app::EVENTS_BATCH),
        ("get", pulse_api::app::EVENTS),
        ("get", pulse_api::app::EVENTS_AGGREGATED),
        ("get", pulse_api::app::EVENTS_ANALYTICS),
        ("get", pulse_api::app::EVENT),
        ("get", pulse_api::app::ANALYTICS_OVERVIEW),
        ("get", pulse_api::app::ANALYTICS_REALTIME),
        ("get", pulse_api::app::EXPORT_EVENTS),
        ("get", pulse_api::app::EXPORT_AGGREGATED),
        ("post", pulse_api::app::METRICS),
        ("post", pulse_api::app::METRICS_BATCH),
        ("get", pulse_api::app::METRICS),
        ("get", pulse_api::app::METRIC_AGGREGATE),
        ("get", pulse_api::app::METRIC_LATEST),
        ("get", pulse_api::app::STREAM),
        ("get", pulse_api::app::STREAM_SSE),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ] {
        expected.push((method.to_owned(), path.to_owned()));
    }
    for (method, path) in &expected {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the spec"))[method];
        assert!(operation.is_object(), "{method} {path} missing from the spec");
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/json"]["example"]["error"]["code"].is_string(),
                    "{method} {path} {status} lacks the envelope example"
                );
            }
        }
    }

    // Every documented operation is routed (no JSON 404 "no route", no 405).
    let mut documented = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if !item[method].is_object() {
                continue;
            }
            documented += 1;
            let concrete = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        Uuid::now_v7().to_string()
                    } else {
                        segment.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = stack
                .http
                .request(method.clone(), format!("{}{concrete}", stack.api.base_url()))
                .send()
                .await
                .expect("sent");
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {text}");
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("no route")),
                "{method} {path} is documented but not routed: {text}"
            );
            assert!(
                status.as_u16() < 500 || path == "/readyz",
                "{method} {path}: {status} {text}"
            );
        }
    }
    assert_eq!(
        documented,
        expected.len(),
        "the spec documents exactly the registered routes"
    );

    let docs = stack
        .http
        .get(format!("{}/docs", stack.api.base_url()))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("openapi.json"));
}
