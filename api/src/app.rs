//! Builds the actix `App`: shared state, extractor error handlers, the per-request middleware,
//! the operational endpoints (`/healthz`, `/readyz`, `/metrics`), the ingest routes and the JSON
//! 404. Used by `serve` and by in-process tests.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse};
use pulse_shared::ops::{self, Readiness};

use crate::error::{self, ApiError};
use crate::ingest::{self, IngestState};
use crate::request_id;

/// Route of single-event ingest.
pub const EVENTS: &str = "/v1/events";
/// Route of batch ingest.
pub const EVENTS_BATCH: &str = "/v1/events/batch";

/// The whole application.
pub fn build(
    state: web::Data<IngestState>,
    readiness: web::Data<Readiness>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(readiness)
        .app_data(web::JsonConfig::default().error_handler(error::json_extractor_error))
        .app_data(web::PathConfig::default().error_handler(error::path_extractor_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_extractor_error))
        .wrap(from_fn(request_id::middleware))
        .configure(ops::configure)
        .configure(routes)
        .default_service(web::to(not_found))
}

/// The ingest routes. Resources are named after their pattern: the metrics middleware reads
/// the name without allocating.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(EVENTS)
            .name(EVENTS)
            .route(web::post().to(ingest::single))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource(EVENTS_BATCH)
            .name(EVENTS_BATCH)
            .route(web::post().to(ingest::batch))
            .default_service(web::to(post_only)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn post_only() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed("POST"))
}
