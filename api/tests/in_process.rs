//! In-process tests of management rules: the real app builder (`pulse_api::app::build`) served by
//! `actix_web::test::init_service`, over a real PostgreSQL test database, with no spawned
//! process. Each rule (roles, the 404-not-403 rule, field validation, content types) costs a
//! request, not a process start. Ingest is not exercised here (it needs a broker: `tests/it`).

use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use pulse_api::app;
use pulse_api::auth::Auth;
use pulse_api::ingest::IngestState;
use pulse_api::management::ManagementState;
use pulse_api::query::QueryState;
use pulse_api::stream::resume::Resumer;
use pulse_api::stream::StreamState;
use pulse_shared::config::{AuthConfig, DatabaseConfig, KafkaConfig, QueryConfig, StreamConfig};
use pulse_shared::db;
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::ops::Readiness;
use pulse_testkit::TestDb;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

fn database(db: &TestDb) -> DatabaseConfig {
    DatabaseConfig {
        url: db.url.clone(),
        pool_size: 4,
        pool_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(30),
        partitions_ahead_days: 7,
    }
}

fn auth_config() -> AuthConfig {
    AuthConfig {
        jwt_secret: b"in-process-test-secret-0123456789abcdef".to_vec(),
        access_token_ttl: Duration::from_secs(900),
        refresh_token_ttl: Duration::from_secs(3600),
        login_rate_per_min_ip: 1000,
        login_rate_per_min_account: 1000,
        default_ingest_rate_per_sec: 1000,
        rotation_grace: Duration::from_secs(60),
        password_reset_ttl: Duration::from_secs(3600),
    }
}

/// A Kafka configuration that is never contacted: the management routes do not produce.
fn unused_kafka() -> KafkaConfig {
    KafkaConfig {
        brokers: "127.0.0.1:1".into(),
        options: Vec::new(),
        topic_prefix: "in-process.".into(),
        partitions: 1,
        replication_factor: 1,
        produce_timeout: Duration::from_secs(1),
        linger: Duration::from_millis(5),
        queue_max_messages: 10,
        compression: "lz4".into(),
    }
}

/// The whole app, as `serve` builds it, on `db`.
async fn service(
    db: &TestDb,
) -> impl Service<actix_http::Request, Response = ServiceResponse<impl actix_web::body::MessageBody>, Error = actix_web::Error>
{
    let pool = db::build_pool(&database(db), "pulse-api-in-process").expect("pool");
    let kafka = unused_kafka();
    let (auth, _toucher) = Auth::new(pool.clone(), Duration::from_secs(1));
    let evictor = auth.evictor();
    let ingest = web::Data::new(IngestState::new(
        auth,
        AckProducer::new(&kafka).expect("producer"),
        "in-process.events".into(),
        "in-process.metrics".into(),
        1 << 20,
        100,
        1000,
    ));
    let readiness = web::Data::new(Readiness::new(pool.clone(), KafkaProbe::new(&kafka).expect("probe")));
    let management = web::Data::new(ManagementState::new(pool, &auth_config(), Some(evictor)));
    let queries = web::Data::new(QueryState::new(QueryConfig::default()));
    let config = StreamConfig::default();
    let resumer = Resumer::new(
        kafka.clone(),
        "in-process.events.stored".into(),
        config.resume_window,
        config.client_buffer,
    );
    let streams = web::Data::new(StreamState::new(&config, resumer));
    test::init_service(app::build(ingest, readiness, management, queries, streams)).await
}

/// Sends `request`, returns the status and the JSON body (`Null` when empty).
async fn send<S, B>(app: &S, request: TestRequest) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    let bytes = test::read_body(response).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// Registers `email`: its access token and personal organization id.
async fn register<S, B>(app: &S, email: &str) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let (status, body) = send(
        app,
        TestRequest::post()
            .uri("/v1/auth/register")
            .set_json(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["access_token"].as_str().expect("token").to_owned(),
        body["organization"]["id"].as_str().expect("org").to_owned(),
    )
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[actix_web::test]
async fn roles_and_tenancy_rules_hold_in_process() {
    let db = TestDb::new().await;
    let app = service(&db).await;
    let (owner, organization) = register(&app, "owner@example.com").await;
    let (member, _) = register(&app, "member@example.com").await;
    let (stranger, _) = register(&app, "stranger@example.com").await;

    let (status, body) = send(
        &app,
        TestRequest::post()
            .uri(&format!("/v1/organizations/{organization}/members"))
            .insert_header(bearer(&owner))
            .set_json(json!({"email": "member@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // A member reads but may not create projects: 403 naming the role it needs.
    let create = |token: &str| {
        TestRequest::post()
            .uri("/v1/projects")
            .insert_header(bearer(token))
            .set_json(json!({"organization_id": organization, "name": "web"}))
    };
    let (status, body) = send(&app, create(&member)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| m.contains("admin")),
        "{body}"
    );
    // Someone outside the organization learns nothing: 404, not 403.
    let (status, body) = send(&app, create(&stranger)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );
    let (status, body) = send(&app, create(&owner)).await;
    assert_eq!(status, 201, "{body}");
    let project = body["id"].as_str().expect("id").to_owned();
    let (status, _) = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v1/projects/{project}"))
            .insert_header(bearer(&stranger)),
    )
    .await;
    assert_eq!(status, 404, "another tenant's project does not exist for the stranger");
    let (status, _) = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v1/projects/{project}"))
            .insert_header(bearer(&member)),
    )
    .await;
    assert_eq!(status, 200, "members read projects");
}

#[actix_web::test]
async fn field_rules_and_content_types_hold_in_process() {
    let db = TestDb::new().await;
    let app = service(&db).await;
    let (owner, organization) = register(&app, "rules@example.com").await;

    let cases = [
        (json!({"organization_id": organization, "name": ""}), "INVALID_FIELD"),
        (
            json!({"organization_id": organization, "name": "x".repeat(201)}),
            "INVALID_FIELD",
        ),
        (json!({"organization_id": organization}), "INVALID_JSON"),
        (
            json!({"organization_id": organization, "name": "ok", "surprise": 1}),
            "INVALID_JSON",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = send(
            &app,
            TestRequest::post()
                .uri("/v1/projects")
                .insert_header(bearer(&owner))
                .set_json(&body),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body} → {answer}"
        );
    }
    let (status, answer) = send(
        &app,
        TestRequest::post()
            .uri("/v1/auth/register")
            .insert_header(("content-type", "text/plain"))
            .set_payload("email=a@example.com"),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = send(
        &app,
        TestRequest::post()
            .uri("/v1/auth/register")
            .set_json(json!({"email": "short@example.com", "password": "short"})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{answer}"
    );
}

/// Found by schemathesis: an email holding NUL reached PostgreSQL at login (500). It cannot
/// have an account, so it gets the answer of any unknown email.
#[actix_web::test]
async fn login_with_a_nul_in_the_email_is_401_not_500() {
    let db = TestDb::new().await;
    let app = service(&db).await;
    register(&app, "nul@example.com").await;
    let (status, body) = send(
        &app,
        TestRequest::post()
            .uri("/v1/auth/login")
            .set_json(json!({"email": "nul\u{0}@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("INVALID_CREDENTIALS")),
        "{body}"
    );
}

/// Found by schemathesis: serde's derived structs take a JSON array of the fields in order, so
/// `[null, null]` passed as a request with every field absent (200). A body must be an object.
#[actix_web::test]
async fn a_json_array_is_not_a_request_body() {
    let db = TestDb::new().await;
    let app = service(&db).await;
    let (token, _) = register(&app, "array@example.com").await;
    let (status, body) = send(
        &app,
        TestRequest::patch()
            .uri("/v1/users/me")
            .insert_header(bearer(&token))
            .set_json(json!([null, null])),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_JSON")),
        "{body}"
    );
}
