//! Recording an email attempt: one transaction writes the attempt into `email_attempts` and
//! moves the message on (sent; pending again after the schedule's next wait; failed after a
//! permanent refusal or the last retry), only while the claim's lease is still the message's.
//! A password reset's bodies are blanked once sent: the token they carry is no longer kept in
//! clear.
//!
//! A database error here is retried with back-off until it succeeds or the lease would have
//! run out (then the message is simply due again).

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use pulse_shared::db::{self, DbPool};
use pulse_shared::email::PASSWORD_RESET;
use pulse_shared::schema::{email_attempts, email_messages};
use uuid::Uuid;

use super::claim::Claimed;
use super::send::SendError;
use crate::metrics;
use crate::notify::retry;

/// What a sent password reset keeps of its bodies.
const REDACTED: &str = "(removed once sent: it held a password-reset token)";

/// The message's next state after an attempt.
#[derive(Debug, PartialEq)]
enum Next {
    Sent,
    Retry(Duration),
    Failed,
}

fn next(outcome: &Result<(), SendError>, attempts_made: u32, schedule: &[Duration]) -> Next {
    match outcome {
        Ok(()) => Next::Sent,
        Err(error) if error.permanent => Next::Failed,
        Err(_) if attempts_made as usize > schedule.len() => Next::Failed,
        Err(_) => Next::Retry(retry::delay(schedule, attempts_made, None)),
    }
}

/// Records the attempt; logs and gives up only when the database stays unreachable.
pub async fn record(
    pool: &DbPool,
    message: &Claimed,
    lease: Uuid,
    outcome: Result<(), SendError>,
    took: Duration,
    schedule: &[Duration],
) {
    let attempts_made = u32::try_from(message.attempts).unwrap_or(0) + 1;
    let next = next(&outcome, attempts_made, schedule);
    let error = outcome.as_ref().err().map(|error| error.message.clone());
    let mut backoff = pulse_shared::backoff::Backoff::new(Duration::from_secs(2));
    for _ in 0..10 {
        match write(pool, message, lease, &next, error.as_deref(), attempts_made, took).await {
            Ok(recorded) => {
                if recorded {
                    match &next {
                        Next::Sent => metrics::EMAIL_MESSAGES.with_label_values(&["sent"]).inc(),
                        Next::Failed => metrics::EMAIL_MESSAGES.with_label_values(&["failed"]).inc(),
                        Next::Retry(_) => {}
                    }
                    if let Some(error) = &error {
                        tracing::info!(email = %message.id, attempt = attempts_made, %error, "Email attempt failed");
                    }
                }
                return;
            }
            Err(db_error) => {
                tracing::warn!(email = %message.id, error = %db_error, "Recording an email attempt failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    tracing::error!(email = %message.id, "Could not record an email attempt; the message will be due again");
}

/// Writes the attempt and the new state; `false` when the lease was lost (nothing written).
async fn write(
    pool: &DbPool,
    message: &Claimed,
    lease: Uuid,
    next: &Next,
    error: Option<&str>,
    attempts_made: u32,
    took: Duration,
) -> anyhow::Result<bool> {
    let mut conn = db::connection(pool).await?;
    let now = chrono::Utc::now();
    let recorded = conn
        .transaction::<bool, diesel::result::Error, _>(|conn| {
            async move {
                let row = email_messages::table
                    .filter(email_messages::id.eq(message.id))
                    .filter(email_messages::lease.eq(lease))
                    .filter(email_messages::status.eq("pending"));
                let attempts = i32::try_from(attempts_made).unwrap_or(i32::MAX);
                let updated = match next {
                    Next::Sent => {
                        let redact = message.kind == PASSWORD_RESET;
                        diesel::update(row)
                            .set((
                                email_messages::status.eq("sent"),
                                email_messages::attempts.eq(attempts),
                                email_messages::sent_at.eq(Some(now)),
                                email_messages::next_attempt_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                                email_messages::lease.eq(None::<Uuid>),
                                email_messages::last_error.eq(None::<String>),
                                email_messages::text_body.eq(if redact { REDACTED } else { &message.text_body }),
                                email_messages::html_body.eq(if redact { REDACTED } else { &message.html_body }),
                            ))
                            .execute(conn)
                            .await?
                    }
                    Next::Retry(wait) => {
                        let due = now + chrono::Duration::from_std(*wait).unwrap_or_default();
                        diesel::update(row)
                            .set((
                                email_messages::attempts.eq(attempts),
                                email_messages::next_attempt_at.eq(Some(due)),
                                email_messages::lease.eq(None::<Uuid>),
                                email_messages::last_error.eq(error),
                            ))
                            .execute(conn)
                            .await?
                    }
                    Next::Failed => {
                        diesel::update(row)
                            .set((
                                email_messages::status.eq("failed"),
                                email_messages::attempts.eq(attempts),
                                email_messages::next_attempt_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                                email_messages::lease.eq(None::<Uuid>),
                                email_messages::last_error.eq(error),
                            ))
                            .execute(conn)
                            .await?
                    }
                };
                if updated == 0 {
                    return Ok(false);
                }
                diesel::insert_into(email_attempts::table)
                    .values((
                        email_attempts::id.eq(Uuid::now_v7()),
                        email_attempts::email_id.eq(message.id),
                        email_attempts::attempt.eq(attempts),
                        email_attempts::attempted_at.eq(now),
                        email_attempts::duration_ms.eq(i32::try_from(took.as_millis()).unwrap_or(i32::MAX)),
                        email_attempts::error.eq(error),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            }
            .scope_boxed()
        })
        .await?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(permanent: bool) -> Result<(), SendError> {
        Err(SendError {
            permanent,
            message: "no".into(),
        })
    }

    #[test]
    fn a_permanent_refusal_fails_at_once_and_the_schedule_bounds_retries() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(30)];
        assert_eq!(next(&Ok(()), 1, &schedule), Next::Sent);
        assert_eq!(next(&failure(true), 1, &schedule), Next::Failed);
        assert!(matches!(next(&failure(false), 1, &schedule), Next::Retry(_)));
        assert!(matches!(next(&failure(false), 2, &schedule), Next::Retry(_)));
        assert_eq!(next(&failure(false), 3, &schedule), Next::Failed);
    }
}
