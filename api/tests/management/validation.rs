//! Bad input on every management route: the error envelope, never a 500.

use pulse_testkit::management::{ManagementStack as Stack, PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn bad_input_is_an_envelope_never_a_500() {
    let stack = Stack::start(&[]).await;
    let user = stack.register("input@example.com").await;
    let url = |path: &str| format!("{}{path}", stack.api.base_url());
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "INVALID_JSON",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .json(&json!({"email": 5, "password": []})),
            400,
            "INVALID_JSON",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/login"))
                .json(&json!({"email": "a@b.c", "password": "x", "extra": 1})),
            400,
            "INVALID_JSON",
        ),
        (
            stack.http.post(url("/v1/auth/login")).body("email=a"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            stack.http.get(url("/v1/projects/not-a-uuid")).bearer_auth(&user.access),
            400,
            "BAD_REQUEST",
        ),
        (
            stack
                .http
                .get(url("/v1/projects?organization_id=nope"))
                .bearer_auth(&user.access),
            400,
            "BAD_REQUEST",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "not-an-email", "password": PASSWORD})),
            400,
            "INVALID_FIELD",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "short@example.com", "password": "short"})),
            400,
            "INVALID_FIELD",
        ),
        (
            stack
                .http
                .post(url("/v1/auth/register"))
                .json(&json!({"email": "input@example.com", "password": PASSWORD})),
            409,
            "EMAIL_TAKEN",
        ),
        (
            stack.http.put(url("/v1/projects")).bearer_auth(&user.access),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (stack.http.get(url("/v1/users/me")), 401, "UNAUTHORIZED"),
        (
            stack.http.get(url("/v1/users/me")).bearer_auth("garbage.token.here"),
            401,
            "UNAUTHORIZED",
        ),
        (
            stack
                .http
                .get(url("/v1/users/me"))
                .bearer_auth(format!("pk_{}", "a".repeat(43))),
            401,
            "UNAUTHORIZED",
        ),
        (
            stack
                .http
                .post(url("/v1/projects"))
                .bearer_auth(&user.access)
                .json(&json!({"organization_id": user.organization, "name": "x", "retention_days": 0})),
            400,
            "INVALID_FIELD",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.expect("sent");
        let got = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{text}"
        );
        assert!(body["error"]["message"].is_string());
    }
}
