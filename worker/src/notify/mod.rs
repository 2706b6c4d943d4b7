//! The notify role (`pulse-worker notify`): signed webhooks from the durable outbox, alert
//! rules, and email. Four loops per process, any number of processes:
//! - fan-out ([`fanout`]): every `PULSE_WEBHOOK_BATCH_DELAY_MS`, outbox messages become one
//!   delivery per subscribed endpoint (`event.created` batched per endpoint);
//! - delivery ([`deliver`]): due deliveries are claimed ([`claim`]), their body rendered
//!   ([`body`]), signed and sent ([`send`]), and the attempt recorded ([`record`]), with the
//!   retry schedule of [`retry`];
//! - alerts ([`alerts`]): due rules are claimed, evaluated over their window, and incidents
//!   opened and resolved, their notices written to the email and webhook outboxes in the same
//!   transaction;
//! - email ([`email`]): the email outbox is claimed, sent with lettre, and each attempt logged.
//!
//! Every hand-over goes through PostgreSQL with `FOR UPDATE SKIP LOCKED`, so workers share the
//! work without coordinating and a killed one loses nothing: its messages stay in the outbox,
//! its leases run out. The design and the guarantees are in docs/webhooks.md.

pub mod alerts;
pub mod body;
pub mod claim;
pub mod deliver;
pub mod email;
pub mod fanout;
pub mod record;
pub mod retry;
pub mod send;

use std::time::Duration;

use pulse_shared::backoff::{sleep_unless_stopped, Backoff};
use pulse_shared::config::{AlertConfig, EmailConfig, WebhookConfig};
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Messages one fan-out transaction expands.
const FANOUT_MESSAGES: i64 = 500;

/// What the notify role reads of the configuration.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub webhook: WebhookConfig,
    pub email: EmailConfig,
    pub alert: AlertConfig,
    pub shutdown_timeout: Duration,
}

/// Runs fan-out, delivery, alert evaluation and email until `stop`.
pub async fn run(pool: DbPool, settings: NotifySettings, stop: CancellationToken) -> crate::Result<()> {
    let sender = send::Sender::new(&settings.webhook).map_err(|error| crate::Error::Setup(error.to_string()))?;
    let mailer = email::send::Mailer::new(&settings.email).map_err(crate::Error::Setup)?;
    let fanout = tokio::spawn(run_fanout(pool.clone(), settings.webhook.clone(), stop.clone()));
    let mail = tokio::spawn(email::run(pool.clone(), settings.email.clone(), mailer, stop.clone()));
    let evaluation = tokio::spawn(alerts::run(
        pool.clone(),
        settings.alert.clone(),
        alerts::Mail::new(&settings.email),
        stop.clone(),
    ));
    deliver::run(pool, settings, sender, stop).await;
    let _ = fanout.await;
    let _ = mail.await;
    let _ = evaluation.await;
    Ok(())
}

/// Expands the outbox every batch delay; back to back while rounds come back full.
async fn run_fanout(pool: DbPool, webhook: WebhookConfig, stop: CancellationToken) {
    let mut failures = Backoff::new(Duration::from_secs(5));
    while sleep_unless_stopped(webhook.batch_delay, &stop).await {
        loop {
            let round = match db::connection(&pool).await {
                Ok(mut conn) => fanout::round(&mut conn, FANOUT_MESSAGES, webhook.batch_max_events)
                    .await
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match round {
                Ok(round) => {
                    failures = Backoff::new(Duration::from_secs(5));
                    metrics::WEBHOOK_MESSAGES_EXPANDED.inc_by(round.messages as u64);
                    metrics::WEBHOOK_DELIVERIES_CREATED.inc_by(round.deliveries as u64);
                    if (round.messages as i64) < FANOUT_MESSAGES || stop.is_cancelled() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Expanding the webhook outbox failed; retrying");
                    sleep_unless_stopped(failures.next_delay(), &stop).await;
                    break;
                }
            }
        }
    }
}
