//! The per-request middleware: request id, tracing span, HTTP metrics, and JSON for the bare
//! 404/405 answers actix produces by itself.
//!
//! - The request id is the client's `X-Request-Id` when it is 1 to 128 visible ASCII
//!   characters, else a fresh UUID v7; it is returned in `X-Request-Id` and is a field of the
//!   `request` span (with `project_id`, recorded by the handlers once the key is known), so every
//!   log line of the request carries both.
//! - Metrics are labelled with the matched route pattern (`unmatched` otherwise) and a
//!   normalised method, so the series count stays bounded whatever clients send.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;
use crate::metrics;

/// The request id header, read and written.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_REQUEST_ID_LEN: usize = 128;

/// Wrap the app with `actix_web::middleware::from_fn(request_id::middleware)`.
pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let started = Instant::now();
    let request_id = match req.headers().get(&X_REQUEST_ID) {
        Some(value) if is_acceptable(value) => value.clone(),
        _ => generated(),
    };
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "request",
        request_id = request_id.to_str().unwrap_or_default(),
        method,
        project_id = tracing::field::Empty,
    );
    let response = next.call(req).instrument(span.clone()).await?;

    let status = response.status();
    let bare = response.response().error().is_none() && !response.headers().contains_key(CONTENT_TYPE);
    let mut response = match status {
        StatusCode::NOT_FOUND if bare => response
            .into_response(ApiError::NotFound.error_response())
            .map_into_right_body(),
        StatusCode::METHOD_NOT_ALLOWED if bare => response
            .into_response(ApiError::MethodNotAllowed("GET").error_response())
            .map_into_right_body(),
        _ => response.map_into_left_body(),
    };
    response.headers_mut().insert(X_REQUEST_ID.clone(), request_id);

    let elapsed = started.elapsed();
    let status = response.status();
    let pattern;
    let route = match response.request().match_name() {
        Some(name) => name,
        None => {
            pattern = response.request().match_pattern();
            pattern.as_deref().unwrap_or("unmatched")
        }
    };
    metrics::HTTP_REQUESTS
        .with_label_values(&[route, method, status.as_str()])
        .inc();
    metrics::HTTP_DURATION
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                route,
                status = status.as_u16(),
                elapsed_ms = elapsed.as_millis() as u64,
                "Request failed"
            );
        } else {
            tracing::debug!(
                route,
                status = status.as_u16(),
                elapsed_ms = elapsed.as_millis() as u64,
                "Request answered"
            );
        }
    });
    Ok(response)
}

fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn generated() -> HeaderValue {
    let mut buffer = Uuid::encode_buffer();
    let text = Uuid::now_v7().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(is_acceptable(&HeaderValue::from_static("abc-123_XYZ")));
        assert!(!is_acceptable(&HeaderValue::from_static("")));
        assert!(!is_acceptable(&HeaderValue::from_static("has space")));
        let long = "a".repeat(129);
        assert!(!is_acceptable(&HeaderValue::from_str(&long).expect("header")));
        let fresh = generated();
        assert_eq!(fresh.len(), 36);
        assert!(is_acceptable(&fresh));
    }
}
