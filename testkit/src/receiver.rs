//! A real webhook receiver for tests: an actix-web HTTP server on a loopback port that records
//! every request and verifies its signature with the `standardwebhooks` crate (an
//! implementation independent of Pulse's signing code). It can answer with any status, redirect,
//! be slow, or be down (not listening) and come back on the same port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::HeaderMap;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// How the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a short body.
    Accept,
    /// This status, with `Retry-After` when given.
    Status(u16, Option<u64>),
    /// 307 to this location.
    Redirect(String),
    /// Waits this long, then 200.
    Slow(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Value,
    pub raw_body: Vec<u8>,
    /// For each secret the receiver knows, in order: whether `standardwebhooks` verified the
    /// request with it alone.
    pub verified: Vec<bool>,
    /// What the receiver answered (0: not yet, or never for a client that went away).
    pub answered: u16,
    pub at: Instant,
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The events of an `event.created` body.
    pub fn events(&self) -> Vec<Value> {
        self.body["data"]["events"].as_array().cloned().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Default)]
struct State {
    secrets: Vec<String>,
    behaviour: Option<Behaviour>,
    received: Vec<Received>,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
    server: Option<ServerHandle>,
}

impl Receiver {
    /// Starts listening on a free loopback port, answering 200.
    pub async fn start() -> Self {
        let mut receiver = Self {
            port: crate::process::port(),
            state: Arc::new(Mutex::new(State::default())),
            server: None,
        };
        receiver.up().await;
        receiver
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The secrets signatures are checked against (each on its own).
    pub fn set_secrets(&self, secrets: &[&str]) {
        self.lock().secrets = secrets.iter().map(|secret| (*secret).to_owned()).collect();
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = Some(behaviour);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|request| (200..300).contains(&request.answered))
            .collect()
    }

    /// Stops listening (connections are refused) until [`Receiver::up`].
    pub async fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop(false).await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let state = self.state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", self.port))
        .expect("receiver binds its port")
        .run();
        self.server = Some(server.handle());
        tokio::spawn(server);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            drop(server.stop(false));
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn handle(request: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let (secrets, behaviour) = {
        let state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            state.secrets.clone(),
            state.behaviour.clone().unwrap_or(Behaviour::Accept),
        )
    };
    let mut verify_headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(value) = request.headers().get(name).and_then(|value| value.to_str().ok()) {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                verify_headers.insert(name, value);
            }
        }
    }
    let verified = secrets
        .iter()
        .map(|secret| {
            standardwebhooks::Webhook::new(secret)
                .and_then(|hook| hook.verify(&body, &verify_headers))
                .is_ok()
        })
        .collect();
    // A slow answer is recorded as 0 (no answer yet) until it is sent: a client that gave up
    // (or died) meanwhile never got one.
    let answered = match &behaviour {
        Behaviour::Accept => 200,
        Behaviour::Slow(_) => 0,
        Behaviour::Status(status, _) => *status,
        Behaviour::Redirect(_) => 307,
    };
    let index = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.received.push(Received {
            path: request.path().to_owned(),
            webhook_id: header(request.headers(), "webhook-id"),
            timestamp: header(request.headers(), "webhook-timestamp"),
            signature: header(request.headers(), "webhook-signature"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw_body: body.to_vec(),
            verified,
            answered,
            at: Instant::now(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
                .collect(),
        });
        state.received.len() - 1
    };
    let status = actix_web::http::StatusCode::from_u16(answered).unwrap_or(actix_web::http::StatusCode::OK);
    match behaviour {
        Behaviour::Accept => HttpResponse::Ok().body("ok"),
        Behaviour::Slow(wait) => {
            tokio::time::sleep(wait).await;
            state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).received[index].answered = 200;
            HttpResponse::Ok().body("ok, slowly")
        }
        Behaviour::Status(_, retry_after) => {
            let mut response = HttpResponse::build(status);
            if let Some(secs) = retry_after {
                response.insert_header(("retry-after", secs.to_string()));
            }
            response.body(format!("answered {answered}"))
        }
        Behaviour::Redirect(location) => HttpResponse::TemporaryRedirect()
            .insert_header(("location", location))
            .finish(),
    }
}
