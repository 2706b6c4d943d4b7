//! The live stream: a project's events, once stored, pushed to WebSocket (`GET /v1/stream`) and
//! Server-Sent-Events (`GET /v1/stream/sse`) clients. How it hangs together (docs/stream.md):
//! - the persist worker announces each committed batch's new events on the stored-events topic
//!   (`pulse_shared::stream`); [`relay`] reads that topic in every replica and hands the events
//!   to the [`hub`], which queues them, filtered, to each client of their project;
//! - [`websocket`] and [`sse`] are the two transports, [`filter`] what a client asked for,
//!   [`item`] one message, [`resume`] the replay after `Last-Event-ID`;
//! - access is the read routes' [`ReadAccess`] (a `read` key, or a member's token with
//!   `project_id`), checked before the upgrade; browsers, which cannot set headers on a
//!   WebSocket, may pass the credential as `token=` instead ([`token_from_query`]; the query
//!   string is never logged).

pub mod filter;
pub mod hub;
pub mod item;
pub mod relay;
pub mod resume;
pub mod sse;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use pulse_shared::config::StreamConfig;

pub use sse::sse;
pub use websocket::websocket;

use crate::query::params::query_pairs;
use hub::StreamHub;
use resume::Resumer;

/// What the stream routes share in one replica.
pub struct StreamState {
    pub hub: Arc<StreamHub>,
    pub resumer: Resumer,
    pub heartbeat: Duration,
    pub buffer: usize,
    max_clients: usize,
}

impl StreamState {
    pub fn new(config: &StreamConfig, resumer: Resumer) -> Self {
        Self {
            hub: Arc::new(StreamHub::new(config.client_buffer, config.max_clients)),
            resumer,
            heartbeat: config.heartbeat,
            buffer: config.client_buffer,
            max_clients: config.max_clients,
        }
    }

    /// The error of a replica with no room for another client.
    pub fn full(&self) -> crate::error::ApiError {
        crate::error::ApiError::StreamFull {
            max: self.max_clients,
            retry_after_secs: 5,
        }
    }
}

/// Middleware of the stream routes: a `token=` query parameter stands for
/// `Authorization: Bearer <token>` when the request has neither that header nor `X-Api-Key`.
pub async fn token_from_query<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let headers = req.headers();
    if !headers.contains_key(AUTHORIZATION) && !headers.contains_key("x-api-key") {
        let token = query_pairs(req.request())
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == "token"))
            .and_then(|(_, token)| HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok());
        if let Some(value) = token {
            req.headers_mut().insert(AUTHORIZATION, value);
        }
    }
    next.call(req).await
}
