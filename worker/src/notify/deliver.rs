//! The delivery loop of one notify worker: claims due deliveries (`claim.rs`), sends each in a
//! task of its own (`body.rs`, `send.rs`) and records the attempt (`record.rs`).
//!
//! Bounds, so a slow or dead endpoint never delays the others: at most
//! `PULSE_WEBHOOK_CONCURRENCY` attempts in flight in the process, at most
//! `PULSE_WEBHOOK_ENDPOINT_CONCURRENCY` to one endpoint (the claim asks for no more), every
//! attempt bounded by the client's timeouts. The loop claims again as soon as a claim came back
//! full and a slot is free, else every [`POLL`] or when an attempt ends.
//!
//! At shutdown the loop stops claiming and waits for the attempts in flight (up to the shutdown
//! timeout); an attempt abandoned then keeps its lease, which runs out, and the delivery is sent
//! again with the same `webhook-id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_shared::backoff::{sleep_unless_stopped, Backoff};
use pulse_shared::db::{self, DbPool};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::claim::{claim, Claimed};
use super::record::{record, Policy, Recorded};
use super::send::Sender;
use super::{body, NotifySettings};
use crate::metrics;

/// Longest wait between claims when nothing woke the loop.
pub const POLL: Duration = Duration::from_millis(100);
/// Most deliveries one claim takes.
const CLAIM_MAX: usize = 100;
/// Margin of a lease over the longest attempt (rendering and recording included).
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Attempts in flight per endpoint in this process.
#[derive(Default)]
struct InFlight(Mutex<HashMap<Uuid, i64>>);

impl InFlight {
    fn add(&self, webhook_id: Uuid) {
        *self.lock().entry(webhook_id).or_default() += 1;
    }

    fn remove(&self, webhook_id: Uuid) {
        let mut map = self.lock();
        if let Some(count) = map.get_mut(&webhook_id) {
            *count -= 1;
            if *count <= 0 {
                map.remove(&webhook_id);
            }
        }
    }

    fn snapshot(&self) -> Vec<(Uuid, i64)> {
        self.lock().iter().map(|(id, count)| (*id, *count)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i64>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs the delivery loop until `stop`, then waits for the attempts in flight.
pub async fn run(pool: DbPool, settings: NotifySettings, sender: Sender, stop: CancellationToken) {
    let webhook = &settings.webhook;
    let slots = Arc::new(Semaphore::new(webhook.concurrency));
    let in_flight = Arc::new(InFlight::default());
    let finished = Arc::new(Notify::new());
    let tasks = TaskTracker::new();
    let policy = Arc::new(Policy {
        retry_schedule: webhook.retry_schedule.clone(),
        disable_after: webhook.disable_after,
        mail: super::alerts::Mail::new(&settings.email),
    });
    let lease_for = webhook.timeout + LEASE_MARGIN;
    let renderer = body::Renderer::default();
    let per_endpoint = i64::try_from(webhook.endpoint_concurrency).unwrap_or(i64::MAX);
    let mut failures = Backoff::new(Duration::from_secs(5));
    while !stop.is_cancelled() {
        let free = slots.available_permits().min(CLAIM_MAX);
        if free == 0 {
            wait(&finished, &stop).await;
            continue;
        }
        let lease = Uuid::new_v4();
        let claimed = match db::connection(&pool).await {
            Ok(mut conn) => claim(
                &mut conn,
                &in_flight.snapshot(),
                per_endpoint,
                i64::try_from(free).unwrap_or(i64::MAX),
                lease,
                lease_for,
            )
            .await
            .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let claimed = match claimed {
            Ok(claimed) => {
                failures = Backoff::new(Duration::from_secs(5));
                claimed
            }
            Err(error) => {
                tracing::warn!(%error, "Claiming webhook deliveries failed; retrying");
                sleep_unless_stopped(failures.next_delay(), &stop).await;
                continue;
            }
        };
        let full = claimed.len() == free;
        for delivery in claimed {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break; // cannot happen: the claim asked for at most the free slots
            };
            in_flight.add(delivery.webhook_id);
            metrics::WEBHOOK_IN_FLIGHT.inc();
            let (pool, sender, renderer, policy, in_flight, finished) = (
                pool.clone(),
                sender.clone(),
                renderer.clone(),
                policy.clone(),
                in_flight.clone(),
                finished.clone(),
            );
            tasks.spawn(async move {
                attempt(&pool, &sender, &renderer, &policy, &delivery, lease).await;
                in_flight.remove(delivery.webhook_id);
                metrics::WEBHOOK_IN_FLIGHT.dec();
                drop(slot);
                finished.notify_one();
            });
        }
        if !full {
            wait(&finished, &stop).await;
        }
    }
    tasks.close();
    if tokio::time::timeout(settings.shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("Webhook attempts still in flight at the shutdown timeout; their leases will run out and they will be sent again");
    }
}

async fn wait(finished: &Notify, stop: &CancellationToken) {
    tokio::select! {
        _ = finished.notified() => {}
        _ = tokio::time::sleep(POLL) => {}
        _ = stop.cancelled() => {}
    }
}

/// Renders, sends and records one delivery. Database trouble while rendering or recording is
/// retried within the lease; past it the delivery is simply due again.
async fn attempt(
    pool: &DbPool,
    sender: &Sender,
    renderer: &body::Renderer,
    policy: &Policy,
    delivery: &Claimed,
    lease: Uuid,
) {
    let Some(body) = with_retries(
        "render a webhook body",
        |mut conn| async move { renderer.render(&mut conn, delivery).await },
        pool,
    )
    .await
    else {
        return;
    };
    let attempt = sender.send(delivery, body).await;
    metrics::WEBHOOK_ATTEMPTS
        .with_label_values(&[attempt.error_class.map_or("success", |class| class.as_str())])
        .inc();
    metrics::WEBHOOK_ATTEMPT_DURATION.observe(attempt.duration.as_secs_f64());
    let recorded = with_retries(
        "record a webhook attempt",
        |mut conn| {
            let attempt = &attempt;
            async move {
                record(&mut conn, delivery, lease, attempt, policy)
                    .await
                    .map_err(|error| error.to_string())
            }
        },
        pool,
    )
    .await;
    match recorded {
        Some((Recorded::Succeeded, _)) => metrics::WEBHOOK_DELIVERIES.with_label_values(&["succeeded"]).inc(),
        Some((Recorded::Failed, _)) => metrics::WEBHOOK_DELIVERIES.with_label_values(&["failed"]).inc(),
        Some((Recorded::LeaseLost, _)) => {
            tracing::warn!(delivery_id = %delivery.id, "A webhook attempt outlived its lease; another worker owns the delivery now");
        }
        Some((Recorded::Retrying { .. }, _)) | None => {}
    }
    if let Some((_, true)) = recorded {
        metrics::WEBHOOK_ENDPOINTS_DISABLED.inc();
    }
}

/// Runs `step` on a pooled connection, up to five times with back-off.
async fn with_retries<T, F, Fut>(what: &str, step: F, pool: &DbPool) -> Option<T>
where
    F: Fn(db::DbConn) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut backoff = Backoff::new(Duration::from_secs(5));
    for _ in 0..5 {
        let result = match db::connection(pool).await {
            Ok(conn) => step(conn).await,
            Err(error) => Err(error.to_string()),
        };
        match result {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, "Could not {what}; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    None
}
