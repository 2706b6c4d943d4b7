//! The api's one error type, [`ApiError`], and how it goes on the wire.
//!
//! Error policy of the api:
//! - Handlers and the modules they call (auth, body, validate, ingest) return `ApiError`; each
//!   variant is a decision about what the client is told. `anyhow` is used only by `main`, the
//!   CLI commands and tests, where errors are printed and nobody branches on their kind.
//! - Status codes are chosen in exactly one place, [`ApiError::status`]; the wire code (an
//!   UPPER_SNAKE_CASE string clients may branch on) in [`ApiError::code`]. Nothing else in the
//!   crate builds an error response.
//! - Every error answer is the envelope `{"error": {"code", "message", "details"}}`; `details`
//!   is present only when it carries something (field, rejected events, limits).
//! - Client mistakes are 4xx and are not logged above debug. Kafka or database trouble is 503
//!   with `Retry-After`: the request may be retried as is (events with their own `id` are stored
//!   once). Anything unexpected is logged at error with its context and answered as a generic
//!   500 whose message reveals nothing about internals.
//! - Messages never echo API keys or event payloads.

use std::fmt::Write as _;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;

use crate::ingest::metrics::METRIC_REJECTED;
use crate::ingest::validate::{self, Rejection};

/// Everything the api can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key, a malformed one, an unknown, revoked or expired one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid key without the scope the route needs.
    #[error("this API key does not have the {0:?} scope")]
    Forbidden(&'static str),
    #[error("no route for this path")]
    NotFound,
    /// The path exists but not for this method; the value is the `Allow` header.
    #[error("method not allowed on this path (allowed: {0})")]
    MethodNotAllowed(&'static str),
    /// The body (before or after gzip decoding) is larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("a batch holds at most {max} events, this one holds {count}")]
    TooManyEvents { count: usize, max: usize },
    #[error("a batch must hold at least one event")]
    EmptyBatch,
    #[error("Content-Type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    #[error("Content-Encoding must be gzip or identity, got {0:?}")]
    UnsupportedEncoding(String),
    #[error("body is not valid gzip: {0}")]
    InvalidGzip(String),
    /// Syntax error, or a body of the wrong shape (serde's message, with line and column).
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A path or query parameter that does not parse.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The body did not arrive within the read timeout (a stalled or very slow client).
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    /// The single event of `POST /v1/events` is invalid (`INVALID_EVENT`, 400), too large
    /// (`EVENT_TOO_LARGE`, 413) or refused by Kafka for good (`EVENT_REJECTED`, 422).
    #[error("{}", .0.message)]
    InvalidEvent(Rejection),
    /// No event of a batch is valid.
    #[error("no event in the batch is valid")]
    ValidationFailed(Vec<Rejection>),
    /// Kafka refused the event(s) for good (too large, invalid); retrying will not help.
    #[error("kafka rejected the event")]
    EventRejected(Vec<Rejection>),
    // Named metrics (api/src/ingest/metrics.rs).
    /// The single point of `POST /v1/metrics` is invalid (`INVALID_METRIC`, 400) or refused by
    /// Kafka for good (`METRIC_REJECTED`, 422).
    #[error("{}", .0.message)]
    InvalidMetric(Rejection),
    /// No point of a metrics batch is valid.
    #[error("no point in the batch is valid")]
    NoValidMetric(Vec<Rejection>),
    /// Kafka refused the point(s) of a metrics batch for good.
    #[error("kafka rejected the points")]
    MetricsRejected(Vec<Rejection>),
    #[error("a batch holds at most {max} points, this one holds {count}")]
    TooManyMetrics { count: usize, max: usize },
    #[error("a batch must hold at least one point")]
    EmptyMetricBatch,
    /// Kafka did not acknowledge in time or is unreachable: retry after `retry_after_secs`.
    #[error("the event queue is unavailable, retry later")]
    KafkaUnavailable { retry_after_secs: u64 },
    /// The key could not be checked because the database did not answer.
    #[error("API keys cannot be checked right now, retry later")]
    AuthUnavailable { retry_after_secs: u64 },
    /// A bug or an unexpected failure; the context is logged, never sent.
    #[error("internal error")]
    Internal(String),
    // Management API (api/src/management).
    /// The object does not exist or belongs to a tenant the caller is not in (never 403).
    #[error("{0} not found")]
    Missing(&'static str),
    /// A member of the organization whose role is too low.
    #[error("this needs the {0} role (or higher) in the organization")]
    RoleRequired(&'static str),
    /// The request conflicts with the current state (`EMAIL_TAKEN`, `LAST_OWNER`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A well-formed request whose field breaks a rule.
    #[error("{message}")]
    InvalidField { field: &'static str, message: String },
    /// A query parameter of a read route that breaks a rule (or is unknown: `query`).
    #[error("{message}")]
    InvalidParameter { parameter: &'static str, message: String },
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidRefreshToken(&'static str),
    /// A consumed refresh token was presented again: its whole session was revoked.
    #[error("this refresh token was already used; the session has been revoked, log in again")]
    RefreshTokenReused,
    /// A password-reset token that is malformed, unknown, already used or expired.
    #[error("this password-reset token is unknown, used or expired; request a new one")]
    InvalidResetToken,
    /// A token bucket is empty (login attempts, or an API key's ingest limit).
    #[error("too many requests, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// No database connection in time for a management request.
    #[error("the database is unavailable, retry later")]
    DatabaseUnavailable { retry_after_secs: u64 },
    // Webhooks (api/src/management/webhooks).
    /// Retry, recover and test need an enabled endpoint.
    #[error("this webhook endpoint is disabled: PATCH it with {{\"enabled\": true}} first")]
    WebhookDisabled,
    /// The delivery is leased by a worker and being attempted until `until`.
    #[error(
        "this delivery is being attempted right now; retry after {}",
        .until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    DeliveryInFlight { until: chrono::DateTime<chrono::Utc> },
    /// This replica holds `PULSE_STREAM_MAX_CLIENTS` stream connections already.
    #[error("this replica serves {max} stream connections already, retry later")]
    StreamFull { max: usize, retry_after_secs: u64 },
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => {
                Self::DatabaseUnavailable { retry_after_secs: 2 }
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl ApiError {
    /// The one place where statuses are decided.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } | Self::TooManyEvents { .. } | Self::TooManyMetrics { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidMetric(rejection) if rejection.code == METRIC_REJECTED => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidMetric(_) | Self::NoValidMetric(_) | Self::EmptyMetricBatch => StatusCode::BAD_REQUEST,
            Self::MetricsRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::EmptyBatch
            | Self::InvalidGzip(_)
            | Self::InvalidJson(_)
            | Self::BadRequest(_)
            | Self::ValidationFailed(_) => StatusCode::BAD_REQUEST,
            Self::InvalidEvent(rejection) if rejection.code == validate::EVENT_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidEvent(rejection) if rejection.code == validate::EVENT_REJECTED => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            Self::EventRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::KafkaUnavailable { .. } | Self::AuthUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::RoleRequired(_) => StatusCode::FORBIDDEN,
            Self::Conflict { .. } | Self::WebhookDisabled | Self::DeliveryInFlight { .. } => StatusCode::CONFLICT,
            Self::InvalidField { .. } | Self::InvalidParameter { .. } | Self::InvalidResetToken => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidCredentials | Self::InvalidRefreshToken(_) | Self::RefreshTokenReused => {
                StatusCode::UNAUTHORIZED
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::DatabaseUnavailable { .. } | Self::StreamFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The wire code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::TooManyEvents { .. } => "TOO_MANY_EVENTS",
            Self::EmptyBatch => "EMPTY_BATCH",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::UnsupportedEncoding(_) => "UNSUPPORTED_ENCODING",
            Self::InvalidGzip(_) => "INVALID_GZIP",
            Self::InvalidJson(_) => "INVALID_JSON",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::BodyTimeout(_) => "REQUEST_TIMEOUT",
            Self::InvalidEvent(rejection) => rejection.code,
            Self::ValidationFailed(_) | Self::NoValidMetric(_) => "VALIDATION_FAILED",
            Self::InvalidMetric(rejection) => rejection.code,
            Self::MetricsRejected(_) => METRIC_REJECTED,
            Self::TooManyMetrics { .. } => "TOO_MANY_METRICS",
            Self::EmptyMetricBatch => "EMPTY_BATCH",
            Self::EventRejected(_) => "EVENT_REJECTED",
            Self::KafkaUnavailable { .. } => "KAFKA_UNAVAILABLE",
            Self::AuthUnavailable { .. } => "AUTH_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
            Self::Missing(_) => "NOT_FOUND",
            Self::RoleRequired(_) => "FORBIDDEN",
            Self::Conflict { code, .. } => code,
            Self::WebhookDisabled => "WEBHOOK_DISABLED",
            Self::DeliveryInFlight { .. } => "DELIVERY_IN_FLIGHT",
            Self::InvalidField { .. } => "INVALID_FIELD",
            Self::InvalidParameter { .. } => "INVALID_PARAMETER",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidRefreshToken(_) => "INVALID_REFRESH_TOKEN",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::InvalidResetToken => "INVALID_RESET_TOKEN",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::DatabaseUnavailable { .. } => "DATABASE_UNAVAILABLE",
            Self::StreamFull { .. } => "STREAM_FULL",
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::PayloadTooLarge { limit } => Some(json!({ "limit_bytes": limit })),
            Self::TooManyEvents { count, max } | Self::TooManyMetrics { count, max } => {
                Some(json!({ "count": count, "max": max }))
            }
            Self::InvalidEvent(rejection) | Self::InvalidMetric(rejection) => Some(json!({ "field": rejection.field })),
            Self::ValidationFailed(rejected)
            | Self::EventRejected(rejected)
            | Self::NoValidMetric(rejected)
            | Self::MetricsRejected(rejected) => Some(json!({ "rejected": rejected })),
            Self::InvalidField { field, .. } => Some(json!({ "field": field })),
            Self::InvalidParameter { parameter, .. } => Some(json!({ "parameter": parameter })),
            Self::DeliveryInFlight { until } => Some(json!({ "next_attempt_at": until })),
            _ => None,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::KafkaUnavailable { retry_after_secs }
            | Self::AuthUnavailable { retry_after_secs }
            | Self::RateLimited { retry_after_secs }
            | Self::DatabaseUnavailable { retry_after_secs }
            | Self::StreamFull { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        let message = match self {
            Self::Internal(context) => {
                tracing::error!(error = %context, "Unexpected error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let envelope = Envelope {
            error: Body {
                code: self.code(),
                message: &message,
                details: self.details(),
            },
        };
        let mut response = HttpResponse::build(status);
        if let Some(secs) = self.retry_after_secs() {
            let mut value = String::with_capacity(4);
            let _ = write!(value, "{secs}");
            response.insert_header((header::RETRY_AFTER, value));
        }
        match self {
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        response.json(envelope)
    }
}

/// Error handler for actix's `JsonConfig`: a JSON extractor failure becomes the envelope.
pub fn json_extractor_error(error: actix_web::error::JsonPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match error {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }.into()
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(String::new()).into(),
        other => ApiError::InvalidJson(other.to_string()).into(),
    }
}

/// Error handler for actix's `PathConfig`.
pub fn path_extractor_error(error: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(error.to_string()).into()
}

/// Error handler for actix's `QueryConfig`.
pub fn query_extractor_error(
    error: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(error.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: &ApiError) -> serde_json::Value {
        let bytes = error.error_response().into_body().try_into_bytes().expect("bytes");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn every_error_is_an_envelope_and_internals_stay_inside() {
        let internal = ApiError::Internal("pool exploded at 10.0.0.7".into());
        let body = body_of(&internal);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!body.to_string().contains("10.0.0.7"));

        let unavailable = ApiError::KafkaUnavailable { retry_after_secs: 3 };
        let response = unavailable.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).expect("retry-after"), "3");

        let unauthorized = ApiError::Unauthorized("missing API key").error_response();
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            unauthorized.headers().get(header::WWW_AUTHENTICATE).expect("challenge"),
            "Bearer"
        );

        let too_many = body_of(&ApiError::TooManyEvents { count: 5, max: 2 });
        assert_eq!(too_many["error"]["code"], "TOO_MANY_EVENTS");
        assert_eq!(too_many["error"]["details"]["max"], 2);
    }
}
