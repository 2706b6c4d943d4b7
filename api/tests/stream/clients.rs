//! The two stream clients the tests use: a WebSocket client (tokio-tungstenite) and an SSE
//! client that parses `text/event-stream` frames from a streamed reqwest response.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected WebSocket client.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Pings received from the server (answered by tungstenite itself).
    pub pings: usize,
}

/// What a WebSocket read brought.
#[derive(Debug)]
pub enum WsRead {
    Json(Value),
    Closed(Option<(CloseCode, String)>),
}

impl WsClient {
    /// Connects to `url` with `bearer` as `Authorization` (none: the URL carries `token=`).
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(bearer) = bearer {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {bearer}")).expect("header"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket, pings: 0 })
    }

    /// The next JSON message or the close, within `patience`.
    pub async fn read(&mut self, patience: Duration) -> Option<WsRead> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Some(WsRead::Json(serde_json::from_str(text.as_str()).expect("JSON message")))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(WsRead::Closed(frame.map(|f| (f.code, f.reason.to_string()))))
                }
                Some(Ok(Message::Ping(_))) => {
                    self.pings += 1;
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(WsRead::Closed(None)),
            }
        }
    }

    /// The next message of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str, patience: Duration) -> Option<Value> {
        loop {
            match self.read(patience).await? {
                WsRead::Json(message) if message["type"] == kind => return Some(message),
                WsRead::Json(_) => continue,
                WsRead::Closed(frame) => panic!("closed while waiting for {kind}: {frame:?}"),
            }
        }
    }

    /// Event ids until `count` arrived (or `patience` passed since the last one).
    pub async fn event_ids(&mut self, count: usize, patience: Duration) -> Vec<String> {
        let mut ids = Vec::new();
        while ids.len() < count {
            match self.next_of("event", patience).await {
                Some(message) => ids.push(message["data"]["id"].as_str().expect("id").to_owned()),
                None => break,
            }
        }
        ids
    }

    pub async fn send(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.expect("sent");
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// A connected SSE client.
pub struct SseClient {
    pub status: u16,
    pub headers: HeaderMap,
    body: Option<futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>>,
    buffer: String,
    /// Comment lines seen (heartbeats, the greeting).
    pub comments: usize,
}

impl SseClient {
    /// GETs `url` with `bearer` and, when given, `Last-Event-ID`.
    pub async fn connect(url: &str, bearer: Option<&str>, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(url);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("connected");
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: Some(response.bytes_stream().boxed()),
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event (comments counted and skipped), within `patience`; `None` at the end of
    /// the stream or on timeout.
    pub async fn next(&mut self, patience: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut any = false;
                for line in frame.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(value) = line.strip_prefix("event: ") {
                        event.event = value.to_owned();
                        any = true;
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        event.id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        event.data = value.to_owned();
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            let body = self.body.as_mut()?;
            match tokio::time::timeout_at(deadline, body.next()).await.ok()? {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(_)) | None => {
                    self.body = None;
                    return None;
                }
            }
        }
    }

    /// Event ids until `count` arrived; other kinds are returned in `notices`.
    pub async fn event_ids(&mut self, count: usize, patience: Duration) -> (Vec<String>, Vec<SseEvent>) {
        let mut ids = Vec::new();
        let mut notices = Vec::new();
        while ids.len() < count {
            match self.next(patience).await {
                Some(event) if event.event == "event" => {
                    let id = event.id.clone().expect("id: line");
                    assert_eq!(event.json()["data"]["id"], id.as_str(), "id: is the event id");
                    ids.push(id);
                }
                Some(other) => notices.push(other),
                None => break,
            }
        }
        (ids, notices)
    }

    /// Ends the connection.
    pub fn disconnect(mut self) {
        self.body = None;
    }
}
