//! The OpenAPI 3.1 description of the whole api, built from the code with utoipa: served at
//! `GET /openapi.json` and browsable at `GET /docs` (Scalar; the page loads its viewer script
//! from the Scalar CDN in the reader's browser).
//!
//! Management handlers carry their own `#[utoipa::path]`. The ingest routes and the
//! operational endpoints are described here by signature-only functions, so their modules stay
//! free of documentation concerns; `api/tests/management/openapi.rs` checks that every route
//! the app registers is in the document and that every documented route answers.
//!
//! Every error response gets the error envelope's schema and an example from [`ErrorBodies`],
//! so the per-route attributes only say which statuses can happen and why.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as OpenApiDoc, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_scalar::{Scalar, Servable};

use super::alerts::schema::AlertFieldRules;
use super::alerts::{endpoints as alert_endpoints, incidents};
use super::monitors::schema::MonitorFieldRules;
use super::monitors::{endpoints as monitor_endpoints, history as monitor_history, stats as monitor_stats};
use super::webhooks::{deliveries, endpoints, replay, secrets};
use super::{accounts, api_keys, digest, organizations, password_reset, projects, users};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the browsable reference is served.
pub const DOCS_PATH: &str = "/docs";

/// The error envelope of every non-2xx answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "NOT_FOUND", "message": "project not found"}}))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The body of [`ErrorEnvelope`].
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// UPPER_SNAKE_CASE code clients may branch on (`INVALID_JSON`, `NOT_FOUND`, `RATE_LIMITED`, …).
    pub code: String,
    /// Human-readable; never echoes secrets.
    pub message: String,
    /// Present when it carries something: the field at fault, rejected events, limits.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// One event, as `POST /v1/events` takes it and `POST /v1/events/batch` takes a list of them.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "event_type": "checkout.completed",
    "timestamp": "2026-11-23T10:00:00Z",
    "source": "web",
    "user_id": "u_42",
    "session_id": "s_9",
    "duration_ms": 350,
    "priority": 5,
    "status": "ok",
    "tags": ["eu", "mobile"],
    "data": {"amount_cents": 4200},
    "metadata": {"app_version": "3.1.0"}
}))]
pub struct IngestEvent {
    /// UUID; one is assigned (v7) when absent. Re-sending an event with the same id stores it once.
    pub id: Option<uuid::Uuid>,
    /// RFC 3339; the arrival time when absent.
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// 1 to 200 characters.
    pub event_type: String,
    pub source: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// 0 or more.
    pub duration_ms: Option<i64>,
    /// 0 to 1000.
    pub priority: Option<i32>,
    pub status: Option<String>,
    /// At most 50 tags of 1 to 200 characters.
    pub tags: Option<Vec<String>>,
    /// A JSON object.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// A JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /v1/events/batch` body.
#[derive(Serialize, ToSchema)]
pub struct IngestBatch {
    /// 1 to `PULSE_MAX_BATCH_EVENTS` (1000) events.
    pub events: Vec<IngestEvent>,
}

/// Answer of `POST /v1/events`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c1-7a3e-7000-8000-0000000e0001"}))]
pub struct IngestAccepted {
    pub id: uuid::Uuid,
}

/// One rejected event of a batch.
#[derive(Serialize, ToSchema)]
pub struct IngestRejection {
    /// Position in the batch.
    pub index: usize,
    /// `INVALID_EVENT`, `EVENT_TOO_LARGE` or `EVENT_REJECTED`.
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

/// Answer of `POST /v1/events/batch`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "accepted": 1,
    "ids": ["0192f0c1-7a3e-7000-8000-0000000e0001"],
    "rejected": [{"index": 1, "code": "INVALID_EVENT", "field": "event_type", "message": "event_type is required"}]
}))]
pub struct IngestBatchAccepted {
    pub accepted: usize,
    /// Ids of the accepted events, in batch order.
    pub ids: Vec<uuid::Uuid>,
    pub rejected: Vec<IngestRejection>,
}

/// Sends one event.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    security(("api_key" = []), ("api_key_header" = [])),
    request_body(content = IngestEvent, description = "JSON, optionally gzip (`Content-Encoding: gzip`)"),
    responses(
        (status = 202, description = "Acknowledged by Kafka: it will be stored. Carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset", body = IngestAccepted),
        (status = 400, description = "INVALID_JSON, INVALID_EVENT (details.field) or INVALID_GZIP"),
        (status = 401, description = "UNAUTHORIZED: missing, unknown, revoked or expired API key"),
        (status = 403, description = "FORBIDDEN: the key lacks the `ingest` scope"),
        (status = 413, description = "PAYLOAD_TOO_LARGE or EVENT_TOO_LARGE"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_ENCODING"),
        (status = 422, description = "EVENT_REJECTED: Kafka refused the event for good"),
        (status = 429, description = "RATE_LIMITED: the key's token bucket is empty; see Retry-After and RateLimit-*"),
        (status = 503, description = "KAFKA_UNAVAILABLE or AUTH_UNAVAILABLE: retry after Retry-After"),
    )
)]
#[allow(dead_code)]
fn ingest_single() {}

/// Sends a batch of events; valid ones are accepted, each invalid one reported by index.
#[utoipa::path(
    post,
    path = "/v1/events/batch",
    tag = "ingest",
    security(("api_key" = []), ("api_key_header" = [])),
    request_body(content = IngestBatch, description = "JSON, optionally gzip (`Content-Encoding: gzip`)"),
    responses(
        (status = 202, description = "Every listed event was acknowledged by Kafka; `rejected` lists the invalid ones", body = IngestBatchAccepted),
        (status = 400, description = "INVALID_JSON, EMPTY_BATCH, INVALID_GZIP or VALIDATION_FAILED (no valid event; details.rejected)"),
        (status = 401, description = "UNAUTHORIZED: missing, unknown, revoked or expired API key"),
        (status = 403, description = "FORBIDDEN: the key lacks the `ingest` scope"),
        (status = 413, description = "PAYLOAD_TOO_LARGE or TOO_MANY_EVENTS"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_ENCODING"),
        (status = 422, description = "EVENT_REJECTED"),
        (status = 429, description = "RATE_LIMITED: see Retry-After and RateLimit-*"),
        (status = 503, description = "KAFKA_UNAVAILABLE or AUTH_UNAVAILABLE: retry the whole batch after Retry-After"),
    )
)]
#[allow(dead_code)]
fn ingest_batch() {}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up")))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness: Kafka and PostgreSQL reachable, not draining.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "Not ready (a dependency is down, or shutting down)"),
    )
)]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI document")))]
#[allow(dead_code)]
fn openapi_json() {}

/// The browsable reference.
#[utoipa::path(get, path = "/docs", tag = "operations", responses((status = 200, description = "HTML page", content_type = "text/html")))]
#[allow(dead_code)]
fn docs() {}

/// The whole api.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pulse API",
        description = "Event and named-metric ingestion (API keys), reading events back (API keys with the `read` scope, or access tokens with `project_id`) and management of accounts, organizations, projects, API keys, webhook endpoints, alert rules and uptime monitors (access tokens), and public status pages (no credentials). Errors are always `{\"error\": {\"code\", \"message\", \"details\"}}`. Guides: docs/ingest.md, docs/query.md, docs/management.md, docs/webhooks.md."
    ),
    paths(
        ingest_single,
        ingest_batch,
        crate::query::events::list_events,
        crate::query::events::get_event,
        crate::query::rollups::aggregated,
        crate::query::analytics::analytics,
        crate::query::overview::overview,
        crate::query::overview::realtime,
        crate::query::export::export_events,
        crate::query::export::export_aggregated,
        crate::stream::websocket::websocket,
        crate::stream::sse::sse,
        crate::ingest::metrics::single,
        crate::ingest::metrics::batch,
        crate::query::metrics::list_points,
        crate::query::metrics::aggregate,
        crate::query::metrics::latest,
        accounts::register,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::change_password,
        password_reset::request,
        password_reset::confirm,
        users::me,
        users::update_me,
        users::delete_me,
        organizations::list,
        organizations::create,
        organizations::get,
        organizations::update,
        organizations::list_members,
        organizations::add_member,
        organizations::update_member,
        organizations::remove_member,
        projects::list,
        projects::create,
        projects::get,
        projects::update,
        projects::delete,
        api_keys::list,
        api_keys::create,
        api_keys::revoke,
        api_keys::rotate,
        digest::get,
        digest::update,
        endpoints::list,
        endpoints::create,
        endpoints::get,
        endpoints::update,
        endpoints::delete,
        secrets::show,
        secrets::rotate,
        deliveries::list,
        deliveries::list_project,
        deliveries::get,
        replay::retry,
        replay::recover,
        replay::test,
        alert_endpoints::list,
        alert_endpoints::create,
        alert_endpoints::get,
        alert_endpoints::update,
        alert_endpoints::delete,
        incidents::list,
        incidents::list_project,
        monitor_endpoints::list,
        monitor_endpoints::create,
        monitor_endpoints::get,
        monitor_endpoints::update,
        monitor_endpoints::delete,
        monitor_history::checks,
        crate::management::monitors::check::check,
        monitor_history::incidents,
        monitor_stats::stats,
        crate::management::status_page::show,
        healthz,
        readyz,
        metrics,
        openapi_json,
        docs,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(
        &SecuritySchemes,
        &FieldRules,
        &AlertFieldRules,
        &MonitorFieldRules,
        &StandardStatuses,
        &ErrorBodies,
        &OperationIds
    ),
    tags(
        (name = "ingest", description = "Sending events and named-metric points, with an API key (`pk_…`) of scope `ingest`"),
        (name = "events", description = "Reading stored events back, with an API key of scope `read` or an access token plus `project_id`"),
        (name = "analytics", description = "Overview and realtime figures from the rollups, with the same credentials as `events`"),
        (name = "export", description = "Downloads (CSV, JSON, NDJSON) of events and buckets, with the same credentials as `events`"),
        (name = "stream", description = "Stored events pushed live over WebSocket or Server-Sent Events, with the same credentials as `events` (or `token=`)"),
        (name = "metrics", description = "Named metrics read back: raw points, aggregates and latest values, with the same credentials as `events` (points are sent under `ingest`; docs/query.md, Named metrics)"),
        (name = "accounts", description = "Register, log in, refresh and end sessions, reset a forgotten password"),
        (name = "users", description = "The caller's own account"),
        (name = "organizations", description = "Organizations and their members"),
        (name = "projects", description = "Projects and their settings"),
        (name = "api-keys", description = "API keys of a project"),
        (name = "digest", description = "The caller's daily digest email of a project (docs/digest.md)"),
        (name = "webhooks", description = "Signed webhook endpoints of a project (Standard Webhooks), their secrets, the delivery log and replay"),
        (name = "alerts", description = "Alert rules of a project (count, error ratio, absence of events) with their channels, and their incidents"),
        (name = "monitors", description = "Uptime monitors of a project: HTTP checks on a schedule, their state, circuit breaker, check history, figures and incidents, and checks on demand"),
        (name = "status", description = "Public status pages of projects that enable one, without sign-in"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /v1/auth/login or /v1/auth/refresh"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key `pk_…` as `Authorization: Bearer pk_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "API key or access token as a query parameter, on the stream routes only (browsers cannot set headers on a WebSocket)",
            ))),
        );
        components.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "API key `pk_…`",
            ))),
        );
    }
}

/// Puts the field rules the api enforces into the request schemas, from the same constants the
/// checks use (`fields.rs`, `passwords.rs`, `pulse_shared::event`), so the document and the
/// validators cannot drift apart.
struct FieldRules;

/// A bound on one property: (schema, property, rule).
enum Rule {
    /// A string: `minLength`, `maxLength` (unbounded when `None`), `pattern`.
    Text(usize, Option<usize>, Option<String>),
    /// An integer of at least this.
    AtLeast(f64),
    /// An integer in `min..=max`.
    Between(f64, f64),
    /// An array of at least one item, each one of these strings.
    OneOrMoreOf(&'static [&'static str]),
    /// An array of `min..=max` items, each a string of `item_min..=item_max` characters
    /// matching `pattern`.
    List(usize, usize, usize, usize, &'static str),
    /// An array of at least this many items.
    NonEmpty,
    /// A JSON object (or `null`) with no NUL in any key or string, at any depth.
    NulFree,
}

/// The component [`Rule::NulFree`] refers to: any JSON value without NUL in a key or string,
/// which is what `pulse_shared::event::check_object` lets through to `jsonb`.
const NUL_FREE_JSON: &str = "NulFreeJson";

fn nul_free_json() -> RefOr<utoipa::openapi::schema::Schema> {
    use pulse_shared::event::NO_NUL_PATTERN;
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::Ref;
    let this = || Ref::from_schema_name(NUL_FREE_JSON);
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NO_NUL_PATTERN))
    };
    AnyOfBuilder::new()
        .description(Some(
            "Any JSON value with no NUL character (\\u0000) in a key or string",
        ))
        .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Null, Type::Boolean, Type::Number])))
        .item(text())
        .item(ArrayBuilder::new().items(this()))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .pattern(Some(NO_NUL_PATTERN)),
                ))
                .additional_properties(Some(this())),
        )
        .into()
}

fn field_rules() -> Vec<(&'static str, &'static str, Rule)> {
    use super::api_keys::{MAX_GRACE_SECS, SCOPES};
    use super::fields::{email_pattern, name_pattern, MAX_EMAIL_CHARS};
    use super::password_reset::{reset_token_pattern, RESET_TOKEN_CHARS};
    use super::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
    use super::projects::{MAX_RATE_LIMIT, MAX_RETENTION_DAYS};
    use crate::ingest::validate::{
        MAX_EVENT_TYPE_CHARS, MAX_LABEL_CHARS, MAX_NAME_CHARS as EVENT_NAME, MAX_PRIORITY, MAX_TAGS, MAX_TAG_CHARS,
    };
    use pulse_shared::event::{event_type_pattern, NO_NUL_PATTERN};
    // The length of a name counts after trimming, so the pattern carries it, not `maxLength`.
    let name = || Rule::Text(1, None, Some(name_pattern(false)));
    let email = || Rule::Text(3, Some(MAX_EMAIL_CHARS), Some(email_pattern()));
    let password = || Rule::Text(MIN_PASSWORD_CHARS, Some(MAX_PASSWORD_CHARS), None);
    let text = |max| Rule::Text(0, Some(max), Some(NO_NUL_PATTERN.to_owned()));
    let mut rules = vec![
        ("RegisterRequest", "email", email()),
        ("RegisterRequest", "password", password()),
        ("RegisterRequest", "name", Rule::Text(0, None, Some(name_pattern(true)))),
        ("RegisterRequest", "organization_name", name()),
        // Login compares with what was registered: any string, 401 when nobody matches.
        ("ChangePasswordRequest", "new_password", password()),
        ("PasswordResetRequest", "email", email()),
        ("PasswordResetConfirm", "password", password()),
        (
            "PasswordResetConfirm",
            "token",
            Rule::Text(RESET_TOKEN_CHARS, Some(RESET_TOKEN_CHARS), Some(reset_token_pattern())),
        ),
        ("OrganizationRequest", "name", name()),
        ("AddMember", "email", email()),
        ("CreateProject", "name", name()),
        (
            "CreateProject",
            "retention_days",
            Rule::Between(1.0, MAX_RETENTION_DAYS.into()),
        ),
        (
            "CreateProject",
            "ingest_rate_limit_per_sec",
            Rule::Between(1.0, MAX_RATE_LIMIT.into()),
        ),
        ("UpdateProject", "name", name()),
        (
            "UpdateProject",
            "retention_days",
            Rule::Between(1.0, MAX_RETENTION_DAYS.into()),
        ),
        (
            "UpdateProject",
            "ingest_rate_limit_per_sec",
            Rule::Between(1.0, MAX_RATE_LIMIT.into()),
        ),
        ("CreateKey", "name", name()),
        ("CreateKey", "scopes", Rule::OneOrMoreOf(&SCOPES)),
        (
            "RotateKey",
            "grace_period_secs",
            Rule::Between(0.0, MAX_GRACE_SECS as f64),
        ),
        ("UpdateMe", "name", name()),
        ("UpdateMe", "email", email()),
        (
            "IngestEvent",
            "event_type",
            Rule::Text(1, Some(MAX_EVENT_TYPE_CHARS), Some(event_type_pattern())),
        ),
        ("IngestEvent", "source", text(EVENT_NAME)),
        ("IngestEvent", "user_id", text(EVENT_NAME)),
        ("IngestEvent", "session_id", text(EVENT_NAME)),
        ("IngestEvent", "priority", Rule::Between(0.0, MAX_PRIORITY.into())),
        ("IngestEvent", "status", text(MAX_LABEL_CHARS)),
        ("IngestEvent", "duration_ms", Rule::AtLeast(0.0)),
        (
            "IngestEvent",
            "tags",
            Rule::List(0, MAX_TAGS, 1, MAX_TAG_CHARS, NO_NUL_PATTERN),
        ),
        ("IngestEvent", "data", Rule::NulFree),
        ("IngestEvent", "metadata", Rule::NulFree),
        ("IngestBatch", "events", Rule::NonEmpty),
    ];
    rules.extend(webhook_rules());
    rules
}

/// The webhook bodies' rules, from `webhooks::rules`.
fn webhook_rules() -> Vec<(&'static str, &'static str, Rule)> {
    use super::api_keys::MAX_GRACE_SECS;
    use super::fields::name_pattern;
    use super::webhooks::rules::{MAX_ATTEMPTS, MAX_DESCRIPTION_CHARS, MAX_FILTER_ITEMS, MAX_FILTER_ITEM_CHARS};
    use pulse_shared::event::NO_NUL_PATTERN;
    use pulse_shared::webhook::MESSAGE_TYPES;
    let mut rules = Vec::new();
    for body in ["CreateWebhook", "UpdateWebhook"] {
        rules.push((body, "name", Rule::Text(1, None, Some(name_pattern(false)))));
        rules.push((body, "url", Rule::Text(1, Some(2048), None)));
        rules.push((
            body,
            "description",
            Rule::Text(0, Some(MAX_DESCRIPTION_CHARS), Some(NO_NUL_PATTERN.to_owned())),
        ));
        rules.push((body, "event_types", Rule::OneOrMoreOf(&MESSAGE_TYPES)));
        rules.push((body, "max_attempts", Rule::Between(1.0, MAX_ATTEMPTS.into())));
    }
    for list in ["event_types", "sources"] {
        rules.push((
            "Filter",
            list,
            Rule::List(1, MAX_FILTER_ITEMS, 1, MAX_FILTER_ITEM_CHARS, NO_NUL_PATTERN),
        ));
    }
    rules.push((
        "RotateSecret",
        "grace_period_secs",
        Rule::Between(0.0, MAX_GRACE_SECS as f64),
    ));
    rules
}

/// Request bodies the api reads with `deny_unknown_fields`: the document says so
/// (`additionalProperties: false`), so a client adding a field learns it from the schema.
const CLOSED_BODIES: [&str; 22] = [
    "RegisterRequest",
    "LoginRequest",
    "RefreshRequest",
    "ChangePasswordRequest",
    "PasswordResetRequest",
    "PasswordResetConfirm",
    "CreateKey",
    "RotateKey",
    "OrganizationRequest",
    "AddMember",
    "UpdateMember",
    "CreateProject",
    "UpdateProject",
    "UpdateMe",
    "IngestEvent",
    "IngestBatch",
    "CreateWebhook",
    "UpdateWebhook",
    "Filter",
    "RotateSecret",
    "Recover",
    "TestMessage",
];

impl Modify for FieldRules {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED_BODIES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
        components.schemas.insert(NUL_FREE_JSON.to_owned(), nul_free_json());
        for (schema_name, property, rule) in field_rules() {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema_name) else {
                continue;
            };
            let Some(RefOr::T(target)) = object.properties.get_mut(property) else {
                continue;
            };
            match (rule, target) {
                (Rule::Text(min, max, pattern), Schema::Object(text)) => {
                    text.min_length = Some(min);
                    text.max_length = max;
                    text.pattern = pattern;
                }
                (Rule::AtLeast(minimum), Schema::Object(number)) => {
                    number.minimum = Some(minimum.into());
                }
                (Rule::Between(minimum, maximum), Schema::Object(number)) => {
                    number.minimum = Some(minimum.into());
                    number.maximum = Some(maximum.into());
                }
                (Rule::OneOrMoreOf(choices), Schema::Array(array)) => {
                    array.min_items = Some(1);
                    if let ArrayItems::RefOrSchema(item) = &mut array.items {
                        if let RefOr::T(Schema::Object(text)) = item.as_mut() {
                            text.enum_values = Some(choices.iter().map(|choice| (*choice).into()).collect());
                        }
                    }
                }
                (Rule::List(min, max, item_min, item_max, pattern), Schema::Array(array)) => {
                    array.min_items = Some(min);
                    array.max_items = Some(max);
                    if let ArrayItems::RefOrSchema(item) = &mut array.items {
                        if let RefOr::T(Schema::Object(text)) = item.as_mut() {
                            text.min_length = Some(item_min);
                            text.max_length = Some(item_max);
                            text.pattern = Some(pattern.to_owned());
                        }
                    }
                }
                (Rule::NonEmpty, Schema::Array(array)) => array.min_items = Some(1),
                (Rule::NulFree, Schema::Object(object)) => {
                    // Names are strings by JSON's own rule: only the pattern, no `type`.
                    let names = utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
                        .pattern(Some(pulse_shared::event::NO_NUL_PATTERN));
                    object.property_names = Some(Box::new(Schema::Object(names.build())));
                    object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::Ref(
                        utoipa::openapi::Ref::from_schema_name(NUL_FREE_JSON),
                    ))));
                }
                _ => {}
            }
        }
    }
}

/// Every operation of the document, with its path.
fn operations(openapi: &mut OpenApiDoc) -> impl Iterator<Item = (&str, &mut utoipa::openapi::path::Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        .map(move |operation| (path.as_str(), operation))
    })
}

/// Statuses any route of a kind can answer, added where a route's own list lacks them: 415
/// (not `application/json`) and 413 (body over the limit) on every route with a JSON body, and
/// 429 where a rate limit applies (ingest per key, login and register per IP and account).
struct StandardStatuses;

impl Modify for StandardStatuses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        const RATE_LIMITED: [&str; 4] = ["/v1/events", "/v1/events/batch", "/v1/auth/login", "/v1/auth/register"];
        for (path, operation) in operations(openapi) {
            if operation.request_body.is_none() {
                continue;
            }
            let responses = &mut operation.responses.responses;
            responses
                .entry("413".to_owned())
                .or_insert_with(|| RefOr::T(Response::new("PAYLOAD_TOO_LARGE: the body is over the size limit")));
            responses.entry("415".to_owned()).or_insert_with(|| {
                RefOr::T(Response::new(
                    "UNSUPPORTED_MEDIA_TYPE: the body is not `application/json`",
                ))
            });
            if RATE_LIMITED.contains(&path) {
                responses
                    .entry("429".to_owned())
                    .or_insert_with(|| RefOr::T(Response::new("RATE_LIMITED: too many requests; see Retry-After")));
            }
        }
    }
}

/// Makes operation ids unique, as OpenAPI requires (utoipa takes the handler's name, and
/// several modules have a `list` or a `create`): each is prefixed with its first tag
/// (`projects_list`, `api_keys_create`) unless it already starts with it (`ingest_batch`).
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (_, operation) in operations(openapi) {
            let tag = operation
                .tags
                .as_ref()
                .and_then(|tags| tags.first())
                .map(|tag| tag.replace('-', "_"));
            if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                if !id.starts_with(&tag) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}

/// Gives every 4xx/5xx response the envelope schema and an example, and adds the 500 that any
/// route may answer.
struct ErrorBodies;

/// The code an example shows for a status.
fn example_code(status: &str, description: &str) -> &'static str {
    const KNOWN: [&str; 27] = [
        "INVALID_CREDENTIALS",
        "SLUG_TAKEN",
        "INVALID_REFRESH_TOKEN",
        "INVALID_RESET_TOKEN",
        "REFRESH_TOKEN_REUSED",
        "EMAIL_TAKEN",
        "LAST_OWNER",
        "ALREADY_MEMBER",
        "NAME_TAKEN",
        "KEY_INACTIVE",
        "SECRET_IN_USE",
        "WEBHOOK_DISABLED",
        "DELIVERY_IN_FLIGHT",
        "INVALID_FIELD",
        "INVALID_PARAMETER",
        "INVALID_JSON",
        "INVALID_EVENT",
        "VALIDATION_FAILED",
        "EMPTY_BATCH",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "EVENT_REJECTED",
        "RATE_LIMITED",
        "KAFKA_UNAVAILABLE",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
    ];
    if let Some(code) = KNOWN.iter().find(|code| description.contains(**code)) {
        return code;
    }
    match status {
        "400" => "BAD_REQUEST",
        "401" => "UNAUTHORIZED",
        "403" => "FORBIDDEN",
        "404" => "NOT_FOUND",
        "409" => "CONFLICT",
        "429" => "RATE_LIMITED",
        "503" => "DATABASE_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    }
}

impl Modify for ErrorBodies {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (_, operation) in operations(openapi) {
            let responses = &mut operation.responses.responses;
            responses.entry("500".to_owned()).or_insert_with(|| {
                RefOr::T(Response::new(
                    "INTERNAL_ERROR: an unexpected failure (logged, no details)",
                ))
            });
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else { continue };
                if !(status.starts_with('4') || status.starts_with('5')) || !response.content.is_empty() {
                    continue;
                }
                let code = example_code(status, &response.description);
                let example = json!({"error": {"code": code, "message": response.description}});
                let mut content = Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                ))));
                content.example = Some(example);
                response.content.insert("application/json".to_owned(), content);
            }
        }
    }
}

/// The document, built once.
pub fn document() -> OpenApiDoc {
    ApiDoc::openapi()
}

async fn serve_document(document: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.get_ref().clone())
}

/// Registers `GET /openapi.json` and `GET /docs`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let document = document();
    let json = document.to_json().unwrap_or_else(|error| {
        tracing::error!(error = %error, "Cannot serialize the OpenAPI document");
        "{}".to_owned()
    });
    cfg.service(
        web::resource(OPENAPI_PATH)
            .name(OPENAPI_PATH)
            .app_data(web::Data::new(json))
            .route(web::get().to(serve_document))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(crate::error::ApiError::MethodNotAllowed("GET"))
            })),
    )
    .service(Scalar::with_url(DOCS_PATH, document));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        ("$ref", Some(target)) => out.push(target.to_owned()),
                        _ => refs(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_errors_have_examples() {
        let document = serde_json::to_value(document()).expect("json");
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").expect("schema ref");
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{target} is not in components"
            );
        }
        let register = &document["paths"]["/v1/auth/register"]["post"];
        assert_eq!(
            register["responses"]["409"]["content"]["application/json"]["example"]["error"]["code"],
            "EMAIL_TAKEN"
        );
        assert!(register["responses"]["500"].is_object());
        let keys = &document["paths"]["/v1/projects/{project_id}/api-keys"]["post"];
        assert_eq!(keys["security"][0]["bearer"], serde_json::json!([]));
        assert!(document["components"]["securitySchemes"]["api_key_header"].is_object());
    }

    #[test]
    fn operation_ids_are_unique() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let Some(id) = operation["operationId"].as_str() else {
                    continue;
                };
                if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                    panic!("operationId {id:?} on both {other} and {method} {path}");
                }
            }
        }
    }

    #[test]
    fn the_document_states_the_validators_rules() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let schemas = &document["components"]["schemas"];
        for name in CLOSED_BODIES {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        let name = &schemas["CreateProject"]["properties"]["name"];
        assert_eq!(name["minLength"], 1);
        assert_eq!(name["pattern"], super::super::fields::name_pattern(false));
        assert_eq!(
            schemas["IngestEvent"]["properties"]["event_type"]["pattern"],
            pulse_shared::event::event_type_pattern()
        );
        assert_eq!(
            schemas["RegisterRequest"]["properties"]["password"]["minLength"],
            super::super::passwords::MIN_PASSWORD_CHARS
        );
        let scopes = &schemas["CreateKey"]["properties"]["scopes"];
        assert_eq!(scopes["minItems"], 1, "{scopes}");
        assert_eq!(
            scopes["items"]["enum"],
            serde_json::json!(super::super::api_keys::SCOPES)
        );
        let retention = &schemas["UpdateProject"]["properties"]["retention_days"];
        assert_eq!(
            retention["maximum"],
            super::super::projects::MAX_RETENTION_DAYS,
            "{retention}"
        );
        let grace = &schemas["RotateKey"]["properties"]["grace_period_secs"];
        assert_eq!(grace["maximum"], super::super::api_keys::MAX_GRACE_SECS, "{grace}");
        let list = &document["paths"]["/v1/projects"]["get"]["parameters"][0];
        assert_eq!(list["in"], "query", "{list}");
        let data = &schemas["IngestEvent"]["properties"]["data"];
        assert_eq!(
            data["additionalProperties"]["$ref"], "#/components/schemas/NulFreeJson",
            "{data}"
        );
        assert!(schemas["NulFreeJson"]["anyOf"].is_array());
        assert_eq!(
            data["propertyNames"],
            serde_json::json!({"pattern": pulse_shared::event::NO_NUL_PATTERN})
        );
        let tags = &schemas["IngestEvent"]["properties"]["tags"];
        assert_eq!(tags["maxItems"], pulse_shared::event::MAX_TAGS);
        assert_eq!(schemas["IngestBatch"]["properties"]["events"]["minItems"], 1);
        let register = &document["paths"]["/v1/auth/register"]["post"]["responses"];
        for status in ["413", "415", "429"] {
            assert!(register.get(status).is_some(), "register documents {status}");
        }
        for body in ["CreateWebhook", "UpdateWebhook"] {
            let properties = &schemas[body]["properties"];
            assert_eq!(
                properties["max_attempts"]["maximum"],
                super::super::webhooks::rules::MAX_ATTEMPTS,
                "{body}"
            );
            assert_eq!(
                properties["event_types"]["items"]["enum"],
                serde_json::json!(pulse_shared::webhook::MESSAGE_TYPES),
                "{body}"
            );
        }
        let sources = &schemas["Filter"]["properties"]["sources"];
        assert_eq!(
            sources["maxItems"],
            super::super::webhooks::rules::MAX_FILTER_ITEMS,
            "{sources}"
        );
        let retry =
            &document["paths"]["/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"];
        assert_eq!(
            retry["post"]["responses"]["409"]["content"]["application/json"]["example"]["error"]["code"],
            "WEBHOOK_DISABLED"
        );
        let get_projects = &document["paths"]["/v1/projects"]["get"]["responses"];
        assert!(get_projects.get("415").is_none(), "no 415 on a route without a body");
    }
}
