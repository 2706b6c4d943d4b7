//! `GET /v1/stream`: the live stream over WebSocket (actix-ws, no actors).
//!
//! Server → client, text frames: `{"type": "event", "data": {…}}` per stored event,
//! `{"type": "metric", "data": {…}}` per stored point of an asked-for metric;
//! `{"type": "subscribed", "data": {"event_types": […], "sources": […], "metrics": […]}}` after
//! a subscribe;
//! `{"type": "reset", "data": {"reason": …}}` when a resume cannot be exact; `{"type": "error",
//! "data": {"message": …}}` for a client message that cannot be read (the connection stays).
//! Client → server: `{"type": "subscribe", "event_types": […], "sources": […], "metrics": […]}`
//! replaces the filter. A ping goes out every `PULSE_STREAM_HEARTBEAT_SECS`; a client silent (no pong, no
//! message) for three beats is closed. Closing by the server is a close frame with a reason:
//! 1008 when the client is too slow (`PULSE_STREAM_CLIENT_BUFFER` messages were still waiting
//! for it when more arrived), 1001 at
//! shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use bytestring::ByteString;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::filter::{ClientMessage, StreamQuery};
use super::hub::Subscription;
use super::item::{message, Item};
use super::resume::Resumed;
use super::StreamState;
use crate::error::ApiError;
use crate::management::ManagementState;
use crate::metrics;
use crate::query::access::ReadAccess;

/// Longest wait for a close frame to go out before the connection is simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Largest frame a client may send (subscribe messages are small).
const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// The live stream over WebSocket.
#[utoipa::path(
    get,
    path = "/v1/stream",
    operation_id = "stream_websocket",
    tag = "stream",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = []), ("token_query" = [])),
    params(super::sse::StreamParams),
    responses(
        (status = 101, description = "Switching to WebSocket: messages {\"type\": \"event\", \"data\": {...}} (see the module docs)"),
        (status = 400, description = "INVALID_PARAMETER, or not a WebSocket upgrade request"),
        (status = 404, description = "No such project among the caller's"),
        crate::query::access::ReadFailures,
    )
)]
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    access: ReadAccess,
    state: web::Data<StreamState>,
    management: web::Data<ManagementState>,
) -> Result<HttpResponse, ApiError> {
    let query = StreamQuery::from_request(&req)?;
    let (response, session, messages) = actix_ws::handle(&req, body).map_err(|error| {
        ApiError::BadRequest(format!(
            "{error}: /v1/stream is a WebSocket; use /v1/stream/sse for Server-Sent Events"
        ))
    })?;
    let subscription = state
        .hub
        .subscribe(access.project_id, query.filter.clone())
        .ok_or_else(|| state.full())?;
    let (replay, live_from, reset) = match query.last_event_id {
        None => (Vec::new(), i64::MIN, None),
        Some(after) => match state
            .resumer
            .resume(&management, access.project_id, after, &query.filter)
            .await
        {
            Resumed::Replayed { items, live_from } => (items, live_from, None),
            Resumed::Reset { reason, live_from } => (Vec::new(), live_from, Some(reason)),
        },
    };
    let connection = Connection {
        session,
        subscription,
        heartbeat: state.heartbeat,
        buffer: state.buffer,
        closing: state.hub.closing.clone(),
        live_from,
    };
    let messages = messages.max_frame_size(MAX_CLIENT_FRAME);
    actix_web::rt::spawn(connection.run(messages, replay, reset));
    Ok(response)
}

/// One WebSocket client, served by its own task.
struct Connection {
    session: Session,
    subscription: Subscription,
    heartbeat: Duration,
    buffer: usize,
    closing: CancellationToken,
    live_from: i64,
}

/// Why the loop ended.
enum End {
    /// The client closed or went away: nothing more to send.
    Gone,
    /// Close with this frame.
    Close(CloseReason),
}

impl Connection {
    async fn run(mut self, mut messages: actix_ws::MessageStream, replay: Vec<Arc<Item>>, reset: Option<String>) {
        let end = self.serve(&mut messages, replay, reset).await;
        if let End::Close(reason) = end {
            let _ = tokio::time::timeout(CLOSE_WAIT, self.session.close(Some(reason))).await;
        }
    }

    async fn serve(
        &mut self,
        messages: &mut actix_ws::MessageStream,
        replay: Vec<Arc<Item>>,
        reset: Option<String>,
    ) -> End {
        if let Some(reason) = reset {
            if let Err(end) = self.send(message("reset", &json!({ "reason": reason })).into()).await {
                return end;
            }
        }
        for item in replay {
            if let Err(end) = self.send(item.json.clone()).await {
                return end;
            }
        }
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + self.heartbeat, self.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let dropped = self.subscription.subscriber.dropped.clone();
        loop {
            let next = tokio::select! {
                biased;
                () = self.closing.cancelled() => return End::Close(going_away()),
                () = dropped.cancelled() => return End::Close(self.too_slow()),
                item = self.subscription.next() => match item {
                    Some(item) if item.offset < self.live_from => continue,
                    Some(item) => Some(item.json.clone()),
                    None => return End::Close(self.too_slow()),
                },
                received = messages.next() => {
                    last_heard = Instant::now();
                    match received {
                        Some(Ok(Message::Text(text))) => Some(self.on_client_message(&text).into()),
                        Some(Ok(Message::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() {
                                return End::Gone;
                            }
                            None
                        }
                        Some(Ok(Message::Close(_))) | None => return End::Gone,
                        Some(Ok(_)) => None,
                        Some(Err(error)) => {
                            return End::Close(CloseReason {
                                code: CloseCode::Protocol,
                                description: Some(error.to_string()),
                            })
                        }
                    }
                },
                _ = beat.tick() => {
                    if last_heard.elapsed() > self.heartbeat * 3 {
                        return End::Close(CloseReason {
                            code: CloseCode::Away,
                            description: Some("no pong for three heartbeats".into()),
                        });
                    }
                    if self.session.ping(b"").await.is_err() {
                        return End::Gone;
                    }
                    None
                }
            };
            if let Some(text) = next {
                if let Err(end) = self.send(text).await {
                    return end;
                }
            }
        }
    }

    /// Sends one text frame; waiting on a client that does not read ends when it is dropped.
    async fn send(&mut self, text: ByteString) -> Result<(), End> {
        let dropped = self.subscription.subscriber.dropped.clone();
        tokio::select! {
            sent = self.session.text(text) => {
                sent.map_err(|_| End::Gone)?;
                metrics::STREAM_SENT.inc();
                Ok(())
            }
            () = dropped.cancelled() => Err(End::Close(self.too_slow())),
            () = self.closing.cancelled() => Err(End::Close(going_away())),
        }
    }

    fn on_client_message(&self, text: &str) -> String {
        match ClientMessage::parse(text) {
            Ok(filter) => {
                let answer = message(
                    "subscribed",
                    &json!({
                        "event_types": filter.event_types(),
                        "sources": filter.sources(),
                        "metrics": filter.metrics(),
                    }),
                );
                self.subscription.subscriber.set_filter(filter);
                answer
            }
            Err(reason) => message("error", &json!({ "message": reason })),
        }
    }

    fn too_slow(&self) -> CloseReason {
        CloseReason {
            code: CloseCode::Policy,
            description: Some(format!(
                "too slow: more than {} messages queued (PULSE_STREAM_CLIENT_BUFFER)",
                self.buffer
            )),
        }
    }
}

fn going_away() -> CloseReason {
    CloseReason {
        code: CloseCode::Away,
        description: Some("server shutting down; reconnect".into()),
    }
}
