//! `GET /v1/stream/sse`: the live stream as Server-Sent Events.
//!
//! Each stored event is `event: event`, `id: <event id>`, `data: {"type": "event", "data":
//! {…}}` (the WebSocket message, so one parser serves both); a point of an asked-for metric is
//! `event: metric` with its `data:` and no `id:` (so `Last-Event-ID` stays the last event's). A comment line goes out every
//! `PULSE_STREAM_HEARTBEAT_SECS` so proxies keep the connection. A reconnect with
//! `Last-Event-ID` (what browsers' `EventSource` sends by itself) resumes without gaps inside
//! `PULSE_STREAM_RESUME_SECS` (`resume.rs`), or says `event: reset` with the reason. A client too
//! slow to read gets a final `event: dropped`, and `event: closing` comes at shutdown; the
//! stream then ends.
//!
//! The framing is a few lines of text per message, so it is written here rather than taken
//! from a crate (actix-web-lab's `Sse` is an experimental crate and would not know our
//! notices or the resume barrier).

use std::collections::VecDeque;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::filter::StreamQuery;
use super::hub::Subscription;
use super::item::{message, sse_notice};
use super::resume::Resumed;
use super::StreamState;
use crate::error::ApiError;
use crate::management::ManagementState;
use crate::metrics;
use crate::query::access::ReadAccess;

/// The stream's query parameters (both transports).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; `StreamQuery` reads them
pub struct StreamParams {
    /// Required with a member's access token; with an API key, its own project or absent.
    project_id: Option<uuid::Uuid>,
    /// The API key or access token, for clients that cannot set `Authorization` (browsers'
    /// WebSocket and EventSource). Never logged.
    token: Option<String>,
    /// Only these event types (repeatable; absent: all).
    event_type: Option<Vec<String>>,
    /// Only these sources (repeatable; absent: all).
    source: Option<Vec<String>>,
    /// Also the points of these named metrics (repeatable; absent: none), as `metric` messages.
    metrics: Option<Vec<String>>,
    /// Resume after this event (SSE clients usually send the `Last-Event-ID` header instead).
    last_event_id: Option<uuid::Uuid>,
}

/// The live stream as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/stream/sse",
    operation_id = "stream_sse",
    tag = "stream",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = []), ("token_query" = [])),
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "text/event-stream: `event: event`, `id:`, `data: {\"type\": \"event\", \"data\": {...}}`", content_type = "text/event-stream", body = String),
        (status = 400, description = "INVALID_PARAMETER (details.parameter)"),
        (status = 404, description = "No such project among the caller's"),
        crate::query::access::ReadFailures,
    )
)]
pub async fn sse(
    req: HttpRequest,
    access: ReadAccess,
    state: web::Data<StreamState>,
    management: web::Data<ManagementState>,
) -> Result<HttpResponse, ApiError> {
    let mut query = StreamQuery::from_request(&req)?;
    if let Some(header) = req.headers().get("last-event-id") {
        let value = header.to_str().unwrap_or_default().trim();
        if !value.is_empty() {
            query.last_event_id = Some(value.parse().map_err(|_| ApiError::InvalidParameter {
                parameter: "Last-Event-ID",
                message: format!("Last-Event-ID must be an event id (a UUID), got {value:?}"),
            })?);
        }
    }
    let subscription = state
        .hub
        .subscribe(access.project_id, query.filter.clone())
        .ok_or_else(|| state.full())?;
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    pending.push_back(Bytes::from(format!(
        "retry: 2000\n: connected to project {}\n\n",
        access.project_id
    )));
    let mut live_from = i64::MIN;
    if let Some(after) = query.last_event_id {
        match state
            .resumer
            .resume(&management, access.project_id, after, &query.filter)
            .await
        {
            Resumed::Replayed { items, live_from: from } => {
                live_from = from;
                pending.extend(items.iter().map(|item| item.sse.clone()));
            }
            Resumed::Reset {
                reason,
                live_from: from,
            } => {
                live_from = from;
                pending.push_back(sse_notice("reset", &message("reset", &json!({ "reason": reason }))).into());
            }
        }
    }
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + state.heartbeat, state.heartbeat);
    // A client that was not reading gets one heartbeat when it catches up, not a burst.
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let events = Events {
        subscription,
        pending,
        live_from,
        heartbeat,
        buffer: state.buffer,
        closing: state.hub.closing.clone(),
        finished: false,
    };
    let body = futures::stream::unfold(events, |mut events| async move {
        let frame = events.next_frame().await?;
        metrics::STREAM_SENT.inc();
        Some((Ok::<_, actix_web::Error>(frame), events))
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        // nginx and similar proxies: do not buffer this response.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// One SSE client's state between frames.
struct Events {
    subscription: Subscription,
    /// Frames to send before the live ones (greeting, replay or reset notice).
    pending: VecDeque<Bytes>,
    /// Live items below this offset were replayed already.
    live_from: i64,
    heartbeat: tokio::time::Interval,
    buffer: usize,
    closing: CancellationToken,
    finished: bool,
}

impl Events {
    /// The next frame to write, `None` once the stream is over.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        let dropped = self.subscription.subscriber.dropped.clone();
        loop {
            tokio::select! {
                biased;
                () = self.closing.cancelled() => {
                    self.finished = true;
                    return Some(sse_notice("closing", &message("closing", &json!({ "reason": "server shutting down; reconnect" }))).into());
                }
                () = dropped.cancelled() => {
                    self.finished = true;
                    return Some(self.dropped_notice().into());
                }
                item = self.subscription.next() => match item {
                    Some(item) if item.offset < self.live_from => continue,
                    Some(item) => return Some(item.sse.clone()),
                    None => {
                        self.finished = true;
                        return Some(self.dropped_notice().into());
                    }
                },
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b": heartbeat\n\n")),
            }
        }
    }

    fn dropped_notice(&self) -> String {
        let reason = format!(
            "too slow: more than {} messages queued (PULSE_STREAM_CLIENT_BUFFER)",
            self.buffer
        );
        sse_notice("dropped", &message("dropped", &json!({ "reason": reason })))
    }
}
