//! Persists one batch: dead letters acknowledged by Kafka, then the events written in one
//! database statement, retried in place until both succeeded.
//!
//! A failed write (PostgreSQL unreachable, connection cut, deadlock, timeout) is retried with
//! the SAME rows after 100 ms, doubling up to `PULSE_WORKER_RETRY_MAX_MS`, for ever: a batch
//! is never skipped. Each attempt is bounded (statement timeout plus a margin, so a silently
//! dropped connection cannot hang the worker); a timed-out connection is discarded rather than
//! returned to the pool. Shutdown is the only way out: an attempt in progress is allowed to
//! finish, but once it failed with shutdown requested the batch is abandoned and its offsets
//! stay unstored, so it is read again after restart.
//!
//! Once committed, the batch's new events are announced to the live streams (`publish`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::pooled_connection::deadpool::Object;
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batch::Batch;
use super::dead_letter::DeadLetterSink;
use super::publish::StoredPublisher;
use super::store::{self, Columns, Written};
use crate::error::{Error, Result};
use crate::metrics;
use pulse_shared::backoff::{self, Backoff};

/// Slack past `statement_timeout` before an attempt is given up as hung.
const ATTEMPT_MARGIN: Duration = Duration::from_secs(5);

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is in the database and the dead-letter topic: store the offsets.
    Committed(Written),
    /// Shutdown came while it was still failing: store nothing.
    Abandoned,
}

/// Writes batches; shared by the persist tasks.
pub struct Persister {
    pool: DbPool,
    dead_letters: DeadLetterSink,
    publisher: Option<StoredPublisher>,
    retry_max: Duration,
    attempt_timeout: Duration,
    stop: CancellationToken,
}

impl Persister {
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

    /// Persists `batch` (see the module comment); never gives up unless shutting down.
    pub async fn persist(&self, mut batch: Batch) -> Outcome {
        let started = Instant::now();
        let messages = batch.len();
        let offsets = batch.describe_offsets();
        if !batch.dead_letters().is_empty() && !self.dead_letters.send_all(batch.dead_letters(), &self.stop).await {
            tracing::warn!(%offsets, "Shutdown while dead letters were failing; batch abandoned, offsets stay unstored");
            return Outcome::Abandoned;
        }
        let payloads = batch.take_payloads();
        let (events, repeated) = batch.take_unique_events();
        let columns = Columns::from_events(events);
        let Some((written, new)) = self.write_with_retries(&columns, &offsets).await else {
            return Outcome::Abandoned;
        };
        if let Some(publisher) = &self.publisher {
            publisher.publish(&columns, &new, payloads);
        }
        metrics::EVENTS_PERSISTED.inc_by(written.inserted as u64);
        metrics::EVENTS_DUPLICATE.inc_by((written.duplicates + repeated) as u64);
        metrics::BATCH_SIZE.observe(messages as f64);
        metrics::BATCH_DURATION.observe(started.elapsed().as_secs_f64());
        tracing::debug!(
            %offsets,
            messages,
            inserted = written.inserted,
            duplicates = written.duplicates + repeated,
            "Batch committed"
        );
        Outcome::Committed(written)
    }

    /// Whether batches keep their payloads for the stored-events topic.
    pub fn publishes(&self) -> bool {
        self.publisher.is_some()
    }

    async fn write_with_retries(&self, columns: &Columns, offsets: &str) -> Option<(Written, HashSet<Uuid>)> {
        let mut backoff = Backoff::new(self.retry_max);
        loop {
            match self.write_once(columns).await {
                Ok(written) => {
                    if backoff.failures() > 0 {
                        tracing::info!(%offsets, failures = backoff.failures(), "Database write succeeded after retries");
                    }
                    return Some(written);
                }
                Err(error) => {
                    metrics::DB_RETRIES.inc();
                    if self.stop.is_cancelled() {
                        tracing::warn!(%offsets, %error, "Database write failed during shutdown; batch abandoned, offsets stay unstored");
                        return None;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        %offsets,
                        rows = columns.len(),
                        attempt = backoff.failures(),
                        retry_in_ms = delay.as_millis() as u64,
                        %error,
                        "Database write failed; retrying the same batch"
                    );
                    if !backoff::sleep_unless_stopped(delay, &self.stop).await {
                        tracing::warn!(%offsets, "Shutdown during database retries; batch abandoned, offsets stay unstored");
                        return None;
                    }
                }
            }
        }
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
