//! Writing a project's digest into the email outbox for its subscribers ([`send`]), and the
//! sequence a deliberate re-send takes ([`next_sequence`]).
//!
//! Recipients are the members with an enabled `digest_subscriptions` row who still belong to
//! the project's organization (a member who left keeps the row but gets nothing), of a live
//! project in a live organization. Members who already have this message (same `Message-ID`)
//! are left out before anything is gathered, so a second run of the day costs one look-up;
//! the outbox's `ON CONFLICT DO NOTHING` settles a race between two writers.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{cause, compose, figures, message_id, KIND};
use crate::email::{self, Email};
use crate::schema::{email_messages, organizations, projects};

/// What [`send`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    pub message_id: String,
    /// Subscribed members of the organization.
    pub subscribers: usize,
    /// Outbox rows written: subscribers who did not have this message yet.
    pub written: usize,
}

#[derive(QueryableByName)]
struct Recipient {
    #[diesel(sql_type = Text)]
    email: String,
}

/// The email addresses of the project's subscribers who are members of its organization.
pub async fn subscribers(conn: &mut AsyncPgConnection, project: Uuid) -> QueryResult<Vec<String>> {
    let rows: Vec<Recipient> = diesel::sql_query(
        "SELECT u.email
         FROM digest_subscriptions s
         JOIN projects p ON p.id = s.project_id
         JOIN organizations o ON o.id = p.organization_id
         JOIN memberships m ON m.organization_id = p.organization_id AND m.user_id = s.user_id
         JOIN users u ON u.id = s.user_id
         WHERE s.project_id = $1 AND s.enabled AND p.deleted_at IS NULL AND o.deleted_at IS NULL
         ORDER BY u.email",
    )
    .bind::<SqlUuid, _>(project)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.email).collect())
}

/// Writes the digest of `project` for `day` with `sequence` (0: the scheduled one) into the
/// outbox for every subscriber who does not have it yet. `None` when the project is deleted
/// or does not exist. `from` is `PULSE_SMTP_FROM` (the domain of the message id), `public_url`
/// `PULSE_PUBLIC_URL`.
pub async fn send(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    day: NaiveDate,
    sequence: u32,
    from: &str,
    public_url: &str,
) -> QueryResult<Option<Sent>> {
    let name: Option<String> = projects::table
        .inner_join(organizations::table)
        .filter(projects::id.eq(project))
        .filter(projects::deleted_at.is_null())
        .filter(organizations::deleted_at.is_null())
        .select(projects::name)
        .first(conn)
        .await
        .optional()?;
    let Some(name) = name else {
        return Ok(None);
    };
    let message_id = message_id(project, day, sequence, from);
    let subscribers = subscribers(conn, project).await?;
    let already: Vec<String> = email_messages::table
        .filter(email_messages::message_id.eq(&message_id))
        .filter(email_messages::recipient.eq_any(&subscribers))
        .select(email_messages::recipient)
        .load(conn)
        .await?;
    let missing: Vec<String> = subscribers
        .iter()
        .filter(|address| !already.contains(address))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(Some(Sent {
            message_id,
            subscribers: subscribers.len(),
            written: 0,
        }));
    }
    let figures = figures::gather(conn, project, day).await?;
    let composed = compose::compose(&name, &figures, public_url);
    let mail = Email {
        project_id: Some(project),
        kind: KIND,
        message_id: message_id.clone(),
        subject: composed.subject,
        text_body: composed.text,
        html_body: composed.html,
    };
    let written = email::enqueue(conn, &mail, &missing).await?;
    Ok(Some(Sent {
        message_id,
        subscribers: subscribers.len(),
        written,
    }))
}

#[derive(QueryableByName)]
struct Sequence {
    #[diesel(sql_type = BigInt)]
    next: i64,
}

/// The sequence a new send of the digest of `project` for `day` takes: 0 when none was
/// written yet (so a first `admin send-digest` is the scheduled message, which the scheduler
/// then does not repeat), else one more than the highest written. Takes a transaction-level
/// advisory lock on the digest, so two re-sends at once take different sequences: run it in
/// the transaction that then calls [`send`].
pub async fn next_sequence(conn: &mut AsyncPgConnection, project: Uuid, day: NaiveDate) -> QueryResult<u32> {
    // `digest.daily.<cause>.<sequence>@<domain>`: the prefix up to the sequence.
    let prefix = format!("{KIND}.{}.", cause(project, day).simple());
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(&prefix)
        .execute(conn)
        .await?;
    let found: Sequence = diesel::sql_query(
        "SELECT coalesce(max(split_part(substr(message_id, length($2) + 1), '@', 1)::int8) + 1, 0) AS next
         FROM email_messages
         WHERE project_id = $1 AND kind = $3 AND starts_with(message_id, $2)",
    )
    .bind::<SqlUuid, _>(project)
    .bind::<Text, _>(&prefix)
    .bind::<Text, _>(KIND)
    .get_result(conn)
    .await?;
    Ok(u32::try_from(found.next).unwrap_or(u32::MAX))
}
