//! The metrics group (`pulse-worker metrics`): named-metric points from `<prefix>metrics` stored
//! exactly once in PostgreSQL with their latest rows and per-minute rollups, what cannot be
//! decoded sent to `<prefix>metrics.dlq`. A second [`Handler`] of the generic consumer loop
//! (`crate::kafka::pipeline`), beside the persist group; it borrows the persist group's
//! dead-letter sink and its `DeadLetter`/`Rejection` types, which are not event-specific.
//!
//! - here: decoding into a [`PointBatch`], and the write with retries ([`MetricsWriter`]:
//!   the same policy as `persist/writer.rs` — the SAME batch retried with back-off for ever,
//!   each attempt bounded, abandoned only at shutdown with its offsets unstored);
//! - [`store`]: the SQL (ids, points, latest, rollups; one transaction);
//! - after the commit, the new points are announced on the stored-events topic for the live
//!   streams (`crate::persist::publish`, kind `metric`).

pub mod store;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::pooled_connection::deadpool::Object;
use pulse_shared::backoff::{self, Backoff};
use pulse_shared::db::{self, DbPool};
use pulse_shared::metric::{MetricDecodeError, MetricEnvelope};
use pulse_shared::stream;
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::kafka::pipeline::{Handler, Settled};
use crate::metrics;
use crate::persist::batch::{DeadLetter, Position};
use crate::persist::dead_letter::DeadLetterSink;
use crate::persist::decode::Rejection;
use crate::persist::publish::StoredPublisher;
use store::{Columns, Written};

/// Slack past `statement_timeout` before an attempt is given up as hung.
const ATTEMPT_MARGIN: Duration = Duration::from_secs(5);

impl From<MetricDecodeError> for Rejection {
    fn from(error: MetricDecodeError) -> Self {
        let reason = match error {
            MetricDecodeError::Empty => "empty",
            MetricDecodeError::Malformed(_) => "malformed",
            MetricDecodeError::UnknownVersion(_) => "unknown_version",
            MetricDecodeError::Unstorable { .. } => "unstorable",
        };
        Self {
            reason,
            message: error.to_string(),
        }
    }
}

/// Messages gathered for one transaction: decoded points, dead letters, offsets per partition.
#[derive(Debug, Default)]
pub struct PointBatch {
    points: Vec<MetricEnvelope>,
    dead: Vec<DeadLetter>,
    /// Lowest and highest offset seen per partition.
    ranges: BTreeMap<i32, (i64, i64)>,
    messages: usize,
}

impl PointBatch {
    fn saw(&mut self, position: Position) {
        self.messages += 1;
        self.ranges
            .entry(position.partition)
            .and_modify(|(first, last)| {
                *first = (*first).min(position.offset);
                *last = (*last).max(position.offset);
            })
            .or_insert((position.offset, position.offset));
    }

    /// `(partition, last offset + 1)`: what to store once the batch is committed (the same
    /// invariant as the persist group's batch, `persist/batch.rs`).
    pub fn offsets_to_store(&self) -> Vec<(i32, i64)> {
        self.ranges
            .iter()
            .map(|(&partition, &(_, last))| (partition, last + 1))
            .collect()
    }

    fn describe_offsets(&self) -> String {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|(partition, (first, last))| format!("{partition}:{first}-{last}"))
            .collect();
        parts.join(" ")
    }

    /// The points, the first of each id kept, and how many repeats were dropped.
    fn take_unique_points(&mut self) -> (Vec<MetricEnvelope>, usize) {
        let points = std::mem::take(&mut self.points);
        let before = points.len();
        let mut seen = HashSet::with_capacity(before);
        let unique: Vec<MetricEnvelope> = points.into_iter().filter(|p| seen.insert(p.point.id)).collect();
        let dropped = before - unique.len();
        (unique, dropped)
    }
}

/// Writes point batches: dead letters first, then the points, retried until done.
pub struct MetricsWriter {
    pool: DbPool,
    dead_letters: DeadLetterSink,
    publisher: Option<StoredPublisher>,
    retry_max: Duration,
    attempt_timeout: Duration,
    stop: CancellationToken,
}

impl MetricsWriter {
    pub fn new(
        pool: DbPool,
        dead_letters: DeadLetterSink,
        publisher: Option<StoredPublisher>,
        retry_max: Duration,
        statement_timeout: Duration,
        stop: CancellationToken,
    ) -> Self {
        Self {
            pool,
            dead_letters,
            publisher,
            retry_max,
            attempt_timeout: statement_timeout + ATTEMPT_MARGIN,
            stop,
        }
    }

    async fn persist(&self, mut batch: PointBatch) -> Settled {
        let started = Instant::now();
        let messages = batch.messages;
        let offsets = batch.describe_offsets();
        if !batch.dead.is_empty() && !self.dead_letters.send_all(&batch.dead, &self.stop).await {
            tracing::warn!(%offsets, "Shutdown while dead letters were failing; batch abandoned, offsets stay unstored");
            return Settled::Abandoned;
        }
        let (points, repeated) = batch.take_unique_points();
        // Kept for the announcement after the commit (points are small; only when publishing).
        let announced: Vec<MetricEnvelope> = if self.publisher.is_some() {
            points.clone()
        } else {
            Vec::new()
        };
        let columns = Columns::from_points(points);
        let mut backoff = Backoff::new(self.retry_max);
        let (written, new) = loop {
            match self.write_once(&columns).await {
                Ok(written) => break written,
                Err(error) => {
                    metrics::DB_RETRIES.inc();
                    if self.stop.is_cancelled() {
                        tracing::warn!(%offsets, %error, "Database write failed during shutdown; batch abandoned, offsets stay unstored");
                        return Settled::Abandoned;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        %offsets,
                        rows = columns.len(),
                        attempt = backoff.failures(),
                        retry_in_ms = delay.as_millis() as u64,
                        %error,
                        "Database write of metric points failed; retrying the same batch"
                    );
                    if !backoff::sleep_unless_stopped(delay, &self.stop).await {
                        tracing::warn!(%offsets, "Shutdown during database retries; batch abandoned, offsets stay unstored");
                        return Settled::Abandoned;
                    }
                }
            }
        };
        if let Some(publisher) = &self.publisher {
            let rows = announced
                .into_iter()
                .filter(|envelope| new.contains(&envelope.point.id))
                .filter_map(|envelope| Some((envelope.project_id, envelope.encode().ok()?)))
                .collect();
            publisher.publish_rows(stream::KIND_METRIC, rows);
        }
        metrics::METRIC_POINTS_PERSISTED.inc_by(written.inserted as u64);
        metrics::METRIC_POINTS_DUPLICATE.inc_by((written.duplicates + repeated) as u64);
        metrics::BATCH_SIZE.observe(messages as f64);
        metrics::BATCH_DURATION.observe(started.elapsed().as_secs_f64());
        tracing::debug!(%offsets, messages, inserted = written.inserted, "Metric batch committed");
        Settled::Done
    }

    async fn write_once(&self, columns: &Columns) -> Result<(Written, HashSet<Uuid>)> {
        let mut conn = db::connection(&self.pool).await?;
        match tokio::time::timeout(self.attempt_timeout, store::write_returning_new(&mut conn, columns)).await {
            Ok(result) => Ok(result?),
            Err(_elapsed) => {
                // The connection may be mid-statement: close it instead of pooling it.
                drop(Object::take(conn));
                Err(Error::DatabaseTimeout(self.attempt_timeout))
            }
        }
    }
}

/// The metrics group's handler of the consumer loop.
pub struct MetricsHandler {
    writer: MetricsWriter,
    topic: String,
}

impl MetricsHandler {
    pub fn new(writer: MetricsWriter, topic: String) -> Self {
        Self { writer, topic }
    }
}

impl Handler for MetricsHandler {
    type Batch = PointBatch;

    fn batch(&self, capacity: usize) -> PointBatch {
        PointBatch {
            points: Vec::with_capacity(capacity),
            ..PointBatch::default()
        }
    }

    fn accept(&self, batch: &mut PointBatch, message: &BorrowedMessage<'_>) {
        metrics::METRIC_POINTS_CONSUMED.inc();
        let position = Position {
            partition: message.partition(),
            offset: message.offset(),
        };
        batch.saw(position);
        match MetricEnvelope::decode(message.payload()) {
            Ok(envelope) => batch.points.push(envelope),
            Err(error) => {
                let rejection = Rejection::from(error);
                tracing::debug!(
                    topic = %self.topic,
                    partition = position.partition,
                    offset = position.offset,
                    reason = rejection.reason,
                    "Undecodable metric message; dead-lettering it"
                );
                batch.dead.push(DeadLetter {
                    position,
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    rejection,
                });
            }
        }
    }

    fn len(&self, batch: &PointBatch) -> usize {
        batch.messages
    }

    fn offsets(&self, batch: &PointBatch) -> Vec<(i32, i64)> {
        batch.offsets_to_store()
    }

    async fn process(self: Arc<Self>, batch: PointBatch) -> Settled {
        self.writer.persist(batch).await
    }
}
