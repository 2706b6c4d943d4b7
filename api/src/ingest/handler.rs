//! The ingest handlers, `POST /v1/events` and `POST /v1/events/batch`.
//!
//! Order of work per request: authenticate (cheap, cached) → check `Content-Type` and
//! `Content-Encoding` → read the body under the size limit → gunzip under the same limit →
//! parse and validate each event → encode each envelope once → produce every valid event and
//! wait for every acknowledgement → answer.
//!
//! Delivery invariant (promise 1): 202 is sent only when Kafka acknowledged every event listed
//! as accepted. If any valid event was not acknowledged for a retryable reason (timeout, broker
//! unreachable, queue full past the timeout), the whole request answers 503 with Retry-After,
//! even though some of its events may have been acknowledged: the client retries the request,
//! and events that carry their own `id` are stored once. An event Kafka refuses for good is
//! reported like an invalid one (`EVENT_REJECTED`).

use std::sync::Arc;
use std::time::Instant;

use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use pulse_shared::envelope::{self, EventEnvelope, ENVELOPE_VERSION};
use pulse_shared::kafka::producer::{AckProducer, Acked, Outgoing, ProduceError};
use pulse_shared::metric::METRIC_ENVELOPE_VERSION;
use rdkafka::message::{Header, OwnedHeaders};
use serde::Serialize;
use uuid::Uuid;

use super::body;
use super::limit::IngestLimiter;
use super::validate::{self, Invalid, Rejection, EVENT_REJECTED};
use crate::auth::{Auth, KeyRecord, SCOPE_INGEST};
use crate::error::ApiError;
use crate::metrics;

/// What the ingest handlers share across actix workers.
pub struct IngestState {
    pub auth: Auth,
    pub producer: AckProducer,
    /// The events topic.
    pub topic: String,
    /// The named-metrics topic (`ingest/metrics.rs`).
    pub metrics_topic: String,
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    /// Per API key token buckets of this replica.
    pub limiter: IngestLimiter,
    /// `Retry-After` of a 503 for Kafka trouble: the produce timeout, rounded up.
    pub retry_after_secs: u64,
    /// `envelope::VERSION_HEADER` with this build's version, cloned onto each message.
    headers: OwnedHeaders,
    /// The same header with the metric envelope's version.
    pub(super) metric_headers: OwnedHeaders,
}

impl IngestState {
    pub fn new(
        auth: Auth,
        producer: AckProducer,
        topic: String,
        metrics_topic: String,
        max_body_bytes: usize,
        max_batch_events: usize,
        default_rate_per_sec: u32,
    ) -> Self {
        let timeout = producer.timeout();
        let retry_after_secs = (timeout.as_millis().div_ceil(1000) as u64).max(1);
        let version = ENVELOPE_VERSION.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: envelope::VERSION_HEADER,
            value: Some(version.as_str()),
        });
        let metric_version = METRIC_ENVELOPE_VERSION.to_string();
        let metric_headers = OwnedHeaders::new().insert(Header {
            key: envelope::VERSION_HEADER,
            value: Some(metric_version.as_str()),
        });
        Self {
            auth,
            producer,
            topic,
            metrics_topic,
            metric_headers,
            max_body_bytes,
            max_batch_events,
            limiter: IngestLimiter::new(default_rate_per_sec),
            retry_after_secs,
            headers,
        }
    }

    /// Authenticates, then reads and decodes the body.
    pub(super) async fn begin(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> Result<(Arc<KeyRecord>, Bytes), ApiError> {
        // The rate-limit middleware already authenticated the key when it could.
        let cached = req.extensions().get::<Arc<KeyRecord>>().cloned();
        let key = match cached {
            Some(key) => key,
            None => self.auth.authenticate(req.headers(), SCOPE_INGEST).await?,
        };
        tracing::Span::current().record("project_id", tracing::field::display(key.project_id));
        body::check_content_type(req.headers())?;
        let encoding = body::encoding(req.headers())?;
        let raw = body::read(req.headers(), payload, self.max_body_bytes).await?;
        let body = body::decode(raw, encoding, self.max_body_bytes).await?;
        Ok((key, body))
    }

    /// Produces every payload under the project's key; results in input order.
    async fn produce(&self, key: &KeyRecord, payloads: &[Vec<u8>]) -> Vec<Result<Acked, ProduceError>> {
        self.produce_to(&self.topic, &self.headers, key, payloads).await
    }

    /// Produces every payload to `topic` under the project's key and waits for every
    /// acknowledgement; results in input order. Counts the acknowledged messages.
    pub(super) async fn produce_to(
        &self,
        topic: &str,
        headers: &OwnedHeaders,
        key: &KeyRecord,
        payloads: &[Vec<u8>],
    ) -> Vec<Result<Acked, ProduceError>> {
        let started = Instant::now();
        let results = self
            .producer
            .send_all(payloads.iter().map(|payload| Outgoing {
                topic,
                key: key.kafka_key.as_bytes(),
                payload,
                headers: Some(headers.clone()),
                partition: None,
            }))
            .await;
        metrics::PRODUCE_DURATION.observe(started.elapsed().as_secs_f64());
        let mut acked = 0;
        for result in &results {
            match result {
                Ok(_) => acked += 1,
                Err(error) => metrics::PRODUCE_FAILURES
                    .with_label_values(&[failure_kind(error)])
                    .inc(),
            }
        }
        metrics::EVENTS_PRODUCED.inc_by(acked);
        results
    }

    pub(super) fn unavailable(&self, error: &ProduceError, project_id: Uuid) -> ApiError {
        tracing::warn!(error = %error, %project_id, "Kafka did not acknowledge, answering 503");
        ApiError::KafkaUnavailable {
            retry_after_secs: self.retry_after_secs,
        }
    }
}

fn failure_kind(error: &ProduceError) -> &'static str {
    match error {
        ProduceError::TimedOut(_) => "timed_out",
        ProduceError::Unavailable(_) => "unavailable",
        ProduceError::Rejected(_) => "rejected",
    }
}

fn count_rejection(code: &str) {
    metrics::EVENTS_REJECTED.with_label_values(&[code]).inc();
}

pub(super) fn rejected_by_kafka(index: usize, error: &ProduceError) -> Rejection {
    Rejection {
        index,
        code: EVENT_REJECTED,
        field: None,
        message: format!("Kafka refused the event: {error}"),
    }
}

/// Validates one event and encodes its envelope: `(id, payload)`.
fn prepare(
    json: &[u8],
    index: usize,
    project_id: Uuid,
    received_at: DateTime<Utc>,
) -> Result<(Uuid, Vec<u8>), Result<Rejection, String>> {
    let event = match validate::parse_event(json, received_at) {
        Ok(event) => event,
        Err(Invalid::Syntax(message)) => return Err(Err(message)),
        Err(invalid) => return Err(Ok(invalid.into_rejection(index))),
    };
    let id = event.id;
    let payload = EventEnvelope::new(project_id, received_at, event)
        .encode()
        .map_err(|error| {
            Ok(Rejection {
                index,
                code: validate::INVALID_EVENT,
                field: None,
                message: format!("the event cannot be encoded: {error}"),
            })
        })?;
    validate::check_encoded_size(index, payload.len()).map_err(Ok)?;
    Ok((id, payload))
}

#[derive(Serialize)]
struct Accepted {
    id: Uuid,
}

/// `POST /v1/events`: one event object.
pub async fn single(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (key, body) = state.begin(&req, payload).await?;
    metrics::BATCH_SIZE.observe(1.0);
    let received_at = Utc::now();
    let (id, payload) = match prepare(&body, 0, key.project_id, received_at) {
        Ok(prepared) => prepared,
        Err(Ok(rejection)) => {
            count_rejection(rejection.code);
            return Err(ApiError::InvalidEvent(rejection));
        }
        Err(Err(syntax)) => {
            count_rejection("INVALID_JSON");
            return Err(ApiError::InvalidJson(syntax));
        }
    };
    let results = state.produce(&key, std::slice::from_ref(&payload)).await;
    match results.into_iter().next() {
        Some(Ok(_)) => {
            metrics::EVENTS_ACCEPTED.inc();
            Ok(HttpResponse::Accepted().json(Accepted { id }))
        }
        Some(Err(error)) if !error.is_retryable() => {
            count_rejection(EVENT_REJECTED);
            Err(ApiError::InvalidEvent(rejected_by_kafka(0, &error)))
        }
        Some(Err(error)) => Err(state.unavailable(&error, key.project_id)),
        None => Err(ApiError::Internal("the producer returned no result".into())),
    }
}

#[derive(Serialize)]
struct BatchAccepted<'a> {
    accepted: usize,
    ids: &'a [Uuid],
    rejected: &'a [Rejection],
}

/// `POST /v1/events/batch`: `{"events": [...]}`.
pub async fn batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (key, body) = state.begin(&req, payload).await?;
    let batch = validate::parse_batch(&body).map_err(ApiError::InvalidJson)?;
    let count = batch.events.len();
    if count == 0 {
        return Err(ApiError::EmptyBatch);
    }
    if count > state.max_batch_events {
        return Err(ApiError::TooManyEvents {
            count,
            max: state.max_batch_events,
        });
    }
    metrics::BATCH_SIZE.observe(count as f64);

    let received_at = Utc::now();
    let mut indexes = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut rejected = Vec::new();
    for (index, raw) in batch.events.iter().enumerate() {
        match prepare(raw.get().as_bytes(), index, key.project_id, received_at) {
            Ok((id, payload)) => {
                indexes.push(index);
                ids.push(id);
                payloads.push(payload);
            }
            Err(Ok(rejection)) => rejected.push(rejection),
            // A raw value of the batch is JSON by construction; keep the message anyway.
            Err(Err(message)) => rejected.push(Invalid::Syntax(message).into_rejection(index)),
        }
    }
    for rejection in &rejected {
        count_rejection(rejection.code);
    }
    if payloads.is_empty() {
        return Err(ApiError::ValidationFailed(rejected));
    }

    let results = state.produce(&key, &payloads).await;
    if let Some(error) = results
        .iter()
        .find_map(|result| result.as_ref().err().filter(|error| error.is_retryable()))
    {
        return Err(state.unavailable(error, key.project_id));
    }
    let refused_by_kafka = results.iter().any(Result::is_err);
    if refused_by_kafka {
        let mut kept = Vec::with_capacity(ids.len());
        for ((result, id), index) in results.iter().zip(&ids).zip(&indexes) {
            match result {
                Ok(_) => kept.push(*id),
                Err(error) => {
                    count_rejection(EVENT_REJECTED);
                    rejected.push(rejected_by_kafka(*index, error));
                }
            }
        }
        rejected.sort_by_key(|rejection| rejection.index);
        ids = kept;
        if ids.is_empty() {
            return Err(ApiError::EventRejected(rejected));
        }
    }
    metrics::EVENTS_ACCEPTED.inc_by(ids.len() as u64);
    Ok(HttpResponse::Accepted().json(BatchAccepted {
        accepted: ids.len(),
        ids: &ids,
        rejected: &rejected,
    }))
}
