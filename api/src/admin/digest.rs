//! `pulse-api admin send-digest --project ID --date YYYY-MM-DD`: writes the project's digest of
//! that UTC day into the email outbox now, for every subscriber (the notify worker sends it).
//!
//! A send is a new message each time: it takes the next sequence of the day's `Message-ID`
//! ([`pulse_shared::digest::send::next_sequence`], under a lock, in one transaction), so a
//! re-send reaches every subscriber again, under an id of its own. The first send of a day
//! (none written yet, by this command or the scheduler) is sequence 0, the scheduled message
//! itself: the scheduler's `digest` job then finds it sent and does not repeat it.

use anyhow::Context;
use chrono::NaiveDate;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::AsyncConnection;
use pulse_shared::config::{DatabaseConfig, EmailConfig};
use pulse_shared::db;
use pulse_shared::digest::{self, Sent};
use serde::Serialize;
use uuid::Uuid;

/// What `send-digest` prints.
#[derive(Debug, Serialize)]
pub struct SentDigest {
    pub project_id: Uuid,
    pub date: NaiveDate,
    /// The `Message-ID` written (without angle brackets).
    pub message_id: String,
    /// Its sequence: 0 for the day's first digest, then one more per re-send.
    pub sequence: u32,
    /// Subscribed members, each written one message.
    pub recipients: usize,
}

/// Writes the digest of `project` for `date`. The database must be migrated.
pub async fn send_digest(
    database: &DatabaseConfig,
    email: &EmailConfig,
    project: Uuid,
    date: NaiveDate,
) -> anyhow::Result<SentDigest> {
    let pool = db::build_pool(database, "pulse-api-admin")?;
    let mut conn = db::connection(&pool).await?;
    let (sequence, sent) = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            async move {
                let sequence = digest::send::next_sequence(conn, project, date).await?;
                let sent = digest::send(conn, project, date, sequence, &email.from, &email.public_url).await?;
                Ok((sequence, sent))
            }
            .scope_boxed()
        })
        .await
        .context("writing the digest")?;
    let Some(Sent {
        message_id, written, ..
    }) = sent
    else {
        anyhow::bail!("no live project {project}");
    };
    Ok(SentDigest {
        project_id: project,
        date,
        message_id,
        sequence,
        recipients: written,
    })
}
