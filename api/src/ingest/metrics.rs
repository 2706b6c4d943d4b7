//! Named-metric ingest: `POST /v1/metrics` (one point) and `POST /v1/metrics/batch`
//! (`{"metrics": [...]}`), the same path as events (`handler.rs`): the `ingest` key and the
//! per-key rate limit (a request counts once, whichever route), content type, encoding, size
//! and gzip, then each point parsed and checked on its own, produced to `<prefix>metrics`
//! (keyed by project id) and answered 202 only once Kafka acknowledged every accepted point.
//! A bad point of a batch is reported by its index and costs the others nothing.
//!
//! The point and its limits live in `pulse_shared::metric`; this module reads the wire JSON
//! (unknown fields refused, `null` is absent, a wrong type names its field) and fills the
//! defaults (`id`: a new UUID v7, `timestamp`: when the api received the request).

use std::borrow::Cow;
use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use pulse_shared::kafka::producer::ProduceError;
use pulse_shared::metric::{self, MetricEnvelope, MetricPoint, MAX_BATCH_POINTS};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::handler::IngestState;
use super::validate::Rejection;
use crate::error::ApiError;
use crate::metrics;

/// Code of a point that breaks a rule.
pub const INVALID_METRIC: &str = "INVALID_METRIC";
/// Code of a point Kafka refused for good.
pub const METRIC_REJECTED: &str = "METRIC_REJECTED";

/// A point as the client sends it: the OpenAPI schema, with the limits of
/// `pulse_shared::metric`. Parsing goes through [`parse_point`] (the wire struct below), where
/// `null` is absent and `name` / `value` missing are named in the error.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body
#[schema(example = json!({"name": "cpu.load", "value": 0.73, "timestamp": "2026-12-01T10:00:00Z", "labels": {"host": "web-1", "region": "eu"}}))]
pub struct MetricPointIn {
    /// Send your own to make retries safe; default a new UUID v7.
    pub id: Option<Uuid>,
    /// 1 to 128 characters: a letter or `_`, then letters, digits, `_`, `.`, `:`, `-`.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$")]
    pub name: String,
    /// A finite number.
    pub value: f64,
    /// RFC 3339; default: when the api received the request.
    pub timestamp: Option<DateTime<Utc>>,
    /// At most 16 labels; keys 1 to 64 characters (`^[A-Za-z_][A-Za-z0-9_]*$`), values strings
    /// of at most 128 characters.
    #[schema(schema_with = labels_schema)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The schema of `labels`, from the same constants the check uses.
fn labels_schema() -> utoipa::openapi::schema::Object {
    use pulse_shared::event::NO_NUL_PATTERN;
    use pulse_shared::metric::{LABEL_KEY_PATTERN, MAX_LABELS, MAX_LABEL_KEY_CHARS, MAX_LABEL_VALUE_CHARS};
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some("Label keys to string values"))
        .max_properties(Some(MAX_LABELS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_LABEL_KEY_CHARS))
                .pattern(Some(LABEL_KEY_PATTERN)),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_LABEL_VALUE_CHARS))
                .pattern(Some(NO_NUL_PATTERN)),
        ))
        .build()
}

/// The wire form of a point: every field optional so a missing one is named, unknown fields
/// refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePoint {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default, deserialize_with = "rfc3339")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// A strict RFC 3339 timestamp (as events take it), or `null`.
fn rfc3339<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<std::borrow::Cow<'de, str>> = Option::deserialize(deserializer)?;
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| {
                serde::de::Error::custom(format!(
                    "timestamp must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z ({error})"
                ))
            })
    })
    .transpose()
}

/// The body of `POST /v1/metrics/batch`: raw slices, so each point is parsed on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    metrics: Vec<&'a RawValue>,
}

/// `{"metrics": [point, …]}` as the OpenAPI document states it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body; parsed by hand
pub struct MetricBatchIn {
    /// 1 to 1000 points.
    #[schema(min_items = 1, max_items = 1000)]
    pub metrics: Vec<MetricPointIn>,
}

fn rejection(index: usize, field: Option<String>, message: String) -> Rejection {
    Rejection {
        index,
        code: INVALID_METRIC,
        field: field.map(Cow::Owned),
        message,
    }
}

fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// Parses and checks one point; `Err(Err(_))` is a body that is not JSON at all.
pub fn parse_point(
    json: &[u8],
    index: usize,
    received_at: DateTime<Utc>,
) -> Result<MetricPoint, Result<Rejection, String>> {
    let first = json.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok() {
        return Err(Ok(rejection(
            index,
            None,
            "a metric point must be a JSON object".into(),
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let wire: WirePoint = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(wire) => wire,
        Err(error) => {
            let inner = error.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(Err(inner.to_string()));
            }
            let path = error.path().to_string();
            let message = without_position(&inner.to_string()).to_owned();
            return Err(Ok(if path == "." || path.is_empty() {
                rejection(index, None, message)
            } else {
                rejection(index, Some(path.clone()), format!("{path}: {message}"))
            }));
        }
    };
    if let Err(error) = deserializer.end() {
        return Err(Err(error.to_string()));
    }
    let Some(name) = wire.name else {
        return Err(Ok(rejection(index, Some("name".into()), "name is required".into())));
    };
    let Some(value) = wire.value else {
        return Err(Ok(rejection(index, Some("value".into()), "value is required".into())));
    };
    let point = MetricPoint {
        id: wire.id.unwrap_or_else(Uuid::now_v7),
        name,
        value,
        timestamp: wire.timestamp.unwrap_or(received_at),
        labels: wire.labels.unwrap_or_default(),
    };
    metric::check(&point).map_err(|(field, message)| Ok(rejection(index, Some(field), message)))?;
    Ok(point)
}

/// Parses one point and encodes its envelope: `(id, payload)`.
fn prepare(
    json: &[u8],
    index: usize,
    project_id: Uuid,
    received_at: DateTime<Utc>,
) -> Result<(Uuid, Vec<u8>), Result<Rejection, String>> {
    let point = parse_point(json, index, received_at)?;
    let id = point.id;
    let payload = MetricEnvelope::new(project_id, received_at, point)
        .encode()
        .map_err(|error| Ok(rejection(index, None, format!("the point cannot be encoded: {error}"))))?;
    Ok((id, payload))
}

fn rejected_by_kafka(index: usize, error: &ProduceError) -> Rejection {
    Rejection {
        index,
        code: METRIC_REJECTED,
        field: None,
        message: format!("Kafka refused the point: {error}"),
    }
}

/// `202` of `POST /v1/metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricAccepted {
    pub id: Uuid,
}

/// `202` of `POST /v1/metrics/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricBatchAccepted {
    pub accepted: usize,
    /// The accepted points' ids, in batch order.
    pub ids: Vec<Uuid>,
    /// The other points, by index: `{"index", "code", "field", "message"}`.
    #[schema(value_type = Vec<Object>)]
    pub rejected: Vec<Rejection>,
}

/// Records one point.
#[utoipa::path(
    post,
    path = "/v1/metrics",
    operation_id = "ingest_metrics",
    tag = "ingest",
    security(("api_key" = []), ("api_key_header" = [])),
    request_body = MetricPointIn,
    responses(
        (status = 202, description = "Kafka acknowledged the point", body = MetricAccepted),
        (status = 400, description = "INVALID_JSON, INVALID_METRIC (details.field), INVALID_GZIP"),
        (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: the key lacks the ingest scope"),
        (status = 413, description = "PAYLOAD_TOO_LARGE"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_ENCODING"),
        (status = 422, description = "METRIC_REJECTED: Kafka refused the point for good"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "KAFKA_UNAVAILABLE or AUTH_UNAVAILABLE; see Retry-After"),
    )
)]
pub async fn single(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (key, body) = state.begin(&req, payload).await?;
    let received_at = Utc::now();
    let (id, payload) = match prepare(&body, 0, key.project_id, received_at) {
        Ok(prepared) => prepared,
        Err(Ok(rejection)) => return Err(ApiError::InvalidMetric(rejection)),
        Err(Err(syntax)) => return Err(ApiError::InvalidJson(syntax)),
    };
    let results = state
        .produce_to(
            &state.metrics_topic,
            &state.metric_headers,
            &key,
            std::slice::from_ref(&payload),
        )
        .await;
    match results.into_iter().next() {
        Some(Ok(_)) => {
            metrics::METRIC_POINTS_ACCEPTED.inc();
            Ok(HttpResponse::Accepted().json(MetricAccepted { id }))
        }
        Some(Err(error)) if !error.is_retryable() => Err(ApiError::InvalidMetric(rejected_by_kafka(0, &error))),
        Some(Err(error)) => Err(state.unavailable(&error, key.project_id)),
        None => Err(ApiError::Internal("the producer returned no result".into())),
    }
}

/// Records up to 1000 points; valid ones are accepted, each bad one reported by its index.
#[utoipa::path(
    post,
    path = "/v1/metrics/batch",
    operation_id = "ingest_metrics_batch",
    tag = "ingest",
    security(("api_key" = []), ("api_key_header" = [])),
    request_body = MetricBatchIn,
    responses(
        (status = 202, description = "At least one point accepted; the others in `rejected`", body = MetricBatchAccepted),
        (status = 400, description = "INVALID_JSON, EMPTY_BATCH, VALIDATION_FAILED (details.rejected), INVALID_GZIP"),
        (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: the key lacks the ingest scope"),
        (status = 413, description = "PAYLOAD_TOO_LARGE or TOO_MANY_METRICS (over 1000 points)"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_ENCODING"),
        (status = 422, description = "METRIC_REJECTED: Kafka refused every valid point for good"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "KAFKA_UNAVAILABLE or AUTH_UNAVAILABLE; see Retry-After"),
    )
)]
pub async fn batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (key, body) = state.begin(&req, payload).await?;
    let batch: BatchBody<'_> =
        serde_json::from_slice(&body).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let count = batch.metrics.len();
    if count == 0 {
        return Err(ApiError::EmptyMetricBatch);
    }
    if count > MAX_BATCH_POINTS {
        return Err(ApiError::TooManyMetrics {
            count,
            max: MAX_BATCH_POINTS,
        });
    }
    let received_at = Utc::now();
    let (mut indexes, mut ids, mut payloads) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let mut rejected = Vec::new();
    for (index, raw) in batch.metrics.iter().enumerate() {
        match prepare(raw.get().as_bytes(), index, key.project_id, received_at) {
            Ok((id, payload)) => {
                indexes.push(index);
                ids.push(id);
                payloads.push(payload);
            }
            Err(Ok(rejection)) => rejected.push(rejection),
            Err(Err(message)) => rejected.push(rejection(index, None, message)),
        }
    }
    metrics::METRIC_POINTS_REJECTED.inc_by(rejected.len() as u64);
    if payloads.is_empty() {
        return Err(ApiError::NoValidMetric(rejected));
    }
    let results = state
        .produce_to(&state.metrics_topic, &state.metric_headers, &key, &payloads)
        .await;
    if let Some(error) = results
        .iter()
        .find_map(|result| result.as_ref().err().filter(|error| error.is_retryable()))
    {
        return Err(state.unavailable(error, key.project_id));
    }
    if results.iter().any(Result::is_err) {
        let mut kept = Vec::with_capacity(ids.len());
        for ((result, id), index) in results.iter().zip(&ids).zip(&indexes) {
            match result {
                Ok(_) => kept.push(*id),
                Err(error) => rejected.push(rejected_by_kafka(*index, error)),
            }
        }
        rejected.sort_by_key(|rejection| rejection.index);
        ids = kept;
        if ids.is_empty() {
            return Err(ApiError::MetricsRejected(rejected));
        }
    }
    metrics::METRIC_POINTS_ACCEPTED.inc_by(ids.len() as u64);
    Ok(HttpResponse::Accepted().json(MetricBatchAccepted {
        accepted: ids.len(),
        ids,
        rejected,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().expect("now")
    }

    fn problem(json: &str) -> (Option<String>, String) {
        match parse_point(json.as_bytes(), 3, now()) {
            Err(Ok(rejection)) => {
                assert_eq!((rejection.index, rejection.code), (3, INVALID_METRIC));
                (rejection.field.map(|f| f.into_owned()), rejection.message)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_point_gets_its_defaults() {
        let point = parse_point(br#"{"name": "cpu", "value": 2}"#, 0, now()).expect("valid");
        assert_eq!((point.value, point.timestamp), (2.0, now()));
        assert!(point.labels.is_empty());
        assert_eq!(point.id.get_version_num(), 7);
        let labelled = parse_point(
            br#"{"name": "cpu", "value": -0.5, "timestamp": "2026-12-01T10:00:00+02:00", "labels": {"host": "a"}, "id": null}"#,
            0,
            now(),
        )
        .expect("valid");
        assert_eq!(
            labelled.timestamp,
            "2026-12-01T08:00:00Z".parse::<DateTime<Utc>>().expect("t")
        );
        assert_eq!(labelled.labels["host"], "a");
    }

    #[test]
    fn each_problem_names_its_field() {
        assert_eq!(problem(r#"{"value": 1}"#).0.as_deref(), Some("name"));
        assert_eq!(problem(r#"{"name": "cpu"}"#).0.as_deref(), Some("value"));
        assert_eq!(problem(r#"{"name": "cpu", "value": "1"}"#).0.as_deref(), Some("value"));
        assert_eq!(
            problem(r#"{"name": "cpu load", "value": 1}"#).0.as_deref(),
            Some("name")
        );
        assert_eq!(
            problem(r#"{"name": "cpu", "value": 1, "labels": {"a": 1}}"#)
                .0
                .as_deref(),
            Some("labels.a")
        );
        assert_eq!(
            problem(r#"{"name": "cpu", "value": 1, "labels": {"a-b": "x"}}"#)
                .0
                .as_deref(),
            Some("labels")
        );
        assert_eq!(
            problem(r#"{"name": "cpu", "value": 1, "timestamp": "soon"}"#)
                .0
                .as_deref(),
            Some("timestamp")
        );
        let (field, message) = problem(r#"{"name": "cpu", "value": 1, "colour": "red"}"#);
        assert!(message.contains("colour"), "{field:?} {message}");
        assert_eq!(problem("[1]").0, None);
        assert!(matches!(parse_point(b"{nope", 0, now()), Err(Err(_))));
    }
}
