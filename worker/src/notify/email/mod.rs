//! Email from the durable outbox (`email_messages`): every `EMAIL_POLL`, due messages are
//! claimed ([`claim`]: `FOR UPDATE SKIP LOCKED`, then a lease), sent over SMTP with lettre
//! ([`send`]), and each attempt recorded with the message's new state ([`record`]), retried on
//! `PULSE_EMAIL_RETRY_SCHEDULE` (±20 % jitter). Any number of notify workers share the outbox;
//! one that dies mid-send leaves its messages to come due again when their lease runs out, so
//! an SMTP server down for an hour loses nothing. A message is sent at least once, and with
//! the same `Message-ID` each time, so a rare resend (a worker killed after the server
//! accepted but before recording it) is recognisably the same message.

pub mod claim;
pub mod compose;
pub mod record;
pub mod send;

use std::time::Duration;

use futures::StreamExt;
use pulse_shared::backoff::{sleep_unless_stopped, Backoff};
use pulse_shared::config::EmailConfig;
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics;

/// How often the outbox is looked at when the last claim found nothing.
const EMAIL_POLL: Duration = Duration::from_millis(250);

/// Sends the outbox until `stop`; a message being sent when `stop` comes is finished.
pub async fn run(pool: DbPool, config: EmailConfig, mailer: send::Mailer, stop: CancellationToken) {
    let lease_for = config.timeout * 2 + Duration::from_secs(5);
    let limit = i64::try_from(config.concurrency).unwrap_or(i64::MAX);
    let mut failures = Backoff::new(Duration::from_secs(5));
    let mut idle = false;
    while !idle || sleep_unless_stopped(EMAIL_POLL, &stop).await {
        if stop.is_cancelled() {
            break;
        }
        let lease = Uuid::now_v7();
        let claimed = match db::connection(&pool).await {
            Ok(mut conn) => claim::claim(&mut conn, limit, lease, lease_for)
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
                tracing::warn!(%error, "Claiming due email failed; retrying");
                sleep_unless_stopped(failures.next_delay(), &stop).await;
                idle = false;
                continue;
            }
        };
        idle = claimed.is_empty();
        futures::stream::iter(claimed)
            .for_each_concurrent(config.concurrency, |message| {
                let pool = pool.clone();
                let mailer = &mailer;
                let schedule = &config.retry_schedule;
                async move {
                    let started = std::time::Instant::now();
                    let outcome = mailer.send(&message).await;
                    metrics::EMAIL_ATTEMPTS
                        .with_label_values(&[if outcome.is_ok() { "success" } else { "failure" }])
                        .inc();
                    record::record(&pool, &message, lease, outcome, started.elapsed(), schedule).await;
                }
            })
            .await;
    }
}
