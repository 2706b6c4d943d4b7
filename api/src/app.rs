//! Builds the actix `App`: shared state, extractor error handlers, the per-request middleware,
//! the operational endpoints (`/healthz`, `/readyz`, `/metrics`), the ingest routes (behind the
//! per-key rate limit; named-metric points too), the read routes (named metrics too), the live
//! stream, the management routes, `/openapi.json` and `/docs`, and the JSON 404.
//! Used by `serve` and by in-process tests.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse};
use pulse_shared::ops::{self, Readiness};

use crate::error::{self, ApiError};
use crate::ingest::{self, IngestState};
use crate::management::{self, ManagementState};
use crate::query::{self, QueryState};
use crate::request_id;
use crate::stream::{self, StreamState};

/// Route of single-event ingest.
pub const EVENTS: &str = "/v1/events";
/// Route of batch ingest.
pub const EVENTS_BATCH: &str = "/v1/events/batch";

/// The whole application.
pub fn build(
    state: web::Data<IngestState>,
    readiness: web::Data<Readiness>,
    management: web::Data<ManagementState>,
    queries: web::Data<QueryState>,
    streams: web::Data<StreamState>,
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
        .app_data(management)
        .app_data(queries)
        .app_data(streams)
        .app_data(web::JsonConfig::default().error_handler(error::json_extractor_error))
        .app_data(web::PathConfig::default().error_handler(error::path_extractor_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_extractor_error))
        .wrap(from_fn(request_id::middleware))
        .configure(ops::configure)
        .configure(routes)
        .configure(management::configure)
        .configure(management::openapi::configure)
        .default_service(web::to(not_found))
}

/// Route of the counts and durations per time bucket.
pub const EVENTS_AGGREGATED: &str = "/v1/events/aggregated";
/// Route of the metrics per group of events.
pub const EVENTS_ANALYTICS: &str = "/v1/events/analytics";
/// Route of the overview of a range.
pub const ANALYTICS_OVERVIEW: &str = "/v1/analytics/overview";
/// Route of the last five minutes.
pub const ANALYTICS_REALTIME: &str = "/v1/analytics/realtime";
/// Route of the events export.
pub const EXPORT_EVENTS: &str = "/v1/export/events";
/// Route of the aggregated export.
pub const EXPORT_AGGREGATED: &str = "/v1/export/aggregated";
/// Route of the live stream over WebSocket.
pub const STREAM: &str = "/v1/stream";
/// Route of the live stream as Server-Sent Events.
pub const STREAM_SSE: &str = "/v1/stream/sse";
/// Route of single-point metric ingest (POST) and of the raw points (GET).
pub const METRICS: &str = "/v1/metrics";
/// Route of batch metric ingest.
pub const METRICS_BATCH: &str = "/v1/metrics/batch";
/// Route of a metric's statistics per bucket.
pub const METRIC_AGGREGATE: &str = "/v1/metrics/{name}/aggregate";
/// Route of a metric's latest point(s).
pub const METRIC_LATEST: &str = "/v1/metrics/{name}/latest";
/// Route of one stored event.
pub const EVENT: &str = "/v1/events/{event_id}";

/// The ingest and raw-event routes. Resources are named after their pattern: the metrics
/// middleware reads the name without allocating. `/v1/events` takes POST (ingest, behind the
/// ingest limit, which lets other methods through) and GET (the read side). The batch,
/// aggregated and analytics routes are registered before `{event_id}`, so `batch`,
/// `aggregated` and `analytics` are never read as ids.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(EVENTS)
            .name(EVENTS)
            .route(web::post().to(ingest::single))
            .route(web::get().to(query::list_events))
            .default_service(web::to(get_or_post))
            .wrap(from_fn(ingest::limit::middleware)),
    )
    .service(
        web::resource(EVENTS_BATCH)
            .name(EVENTS_BATCH)
            .route(web::post().to(ingest::batch))
            .default_service(web::to(post_only))
            .wrap(from_fn(ingest::limit::middleware)),
    )
    .service(
        web::resource(EVENTS_AGGREGATED)
            .name(EVENTS_AGGREGATED)
            .route(web::get().to(query::aggregated))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(EVENTS_ANALYTICS)
            .name(EVENTS_ANALYTICS)
            .route(web::get().to(query::analytics))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(ANALYTICS_OVERVIEW)
            .name(ANALYTICS_OVERVIEW)
            .route(web::get().to(query::overview))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(ANALYTICS_REALTIME)
            .name(ANALYTICS_REALTIME)
            .route(web::get().to(query::realtime))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(EXPORT_EVENTS)
            .name(EXPORT_EVENTS)
            .route(web::get().to(query::export_events))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(EXPORT_AGGREGATED)
            .name(EXPORT_AGGREGATED)
            .route(web::get().to(query::export_aggregated))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(STREAM)
            .name(STREAM)
            .route(web::get().to(stream::websocket))
            .default_service(web::to(get_only))
            .wrap(from_fn(stream::token_from_query)),
    )
    .service(
        web::resource(STREAM_SSE)
            .name(STREAM_SSE)
            .route(web::get().to(stream::sse))
            .default_service(web::to(get_only))
            .wrap(from_fn(stream::token_from_query)),
    )
    .service(
        web::resource(METRICS)
            .name(METRICS)
            .route(web::post().to(ingest::metrics::single))
            .route(web::get().to(query::list_metric_points))
            .default_service(web::to(get_or_post))
            .wrap(from_fn(ingest::limit::middleware)),
    )
    // Before the `{name}` routes (which have one more segment anyway), as events do.
    .service(
        web::resource(METRICS_BATCH)
            .name(METRICS_BATCH)
            .route(web::post().to(ingest::metrics::batch))
            .default_service(web::to(post_only))
            .wrap(from_fn(ingest::limit::middleware)),
    )
    .service(
        web::resource(METRIC_AGGREGATE)
            .name(METRIC_AGGREGATE)
            .route(web::get().to(query::metric_aggregate))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(METRIC_LATEST)
            .name(METRIC_LATEST)
            .route(web::get().to(query::metric_latest))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource(EVENT)
            .name(EVENT)
            .route(web::get().to(query::get_event))
            .default_service(web::to(get_only)),
    );
}

/// The app's default service, also used by resources without one of their own (the ops
/// routes, all GET): a known path with another method is 405, anything else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.resource_map().has_resource(req.path()) {
        return Err(ApiError::MethodNotAllowed("GET"));
    }
    Err(ApiError::NotFound)
}

async fn post_only() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed("POST"))
}

async fn get_or_post() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed("GET, POST"))
}

async fn get_only() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed("GET"))
}
