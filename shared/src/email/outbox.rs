//! The email outbox: [`enqueue`] writes one message per recipient into `email_messages`, due
//! now, in the caller's transaction, so what caused a message and the message commit together
//! (a crash between the two loses neither). A message already written for the same
//! `Message-ID` and recipient is not written twice.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::email_messages;

/// One message, before its recipients.
#[derive(Debug, Clone)]
pub struct Email {
    /// The project it is about (`None`: about an account).
    pub project_id: Option<Uuid>,
    /// One of the kinds in [`super`] (`alert.fired`, …).
    pub kind: &'static str,
    /// See [`super::message_id`].
    pub message_id: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// Writes `email` once for each of `recipients` (duplicates and blanks skipped). Returns how
/// many rows were written.
pub async fn enqueue(conn: &mut AsyncPgConnection, email: &Email, recipients: &[String]) -> QueryResult<usize> {
    let mut unique: Vec<&str> = recipients.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect();
    unique.sort_unstable();
    unique.dedup();
    if unique.is_empty() {
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let rows: Vec<_> = unique
        .into_iter()
        .map(|recipient| {
            (
                email_messages::id.eq(Uuid::now_v7()),
                email_messages::project_id.eq(email.project_id),
                email_messages::kind.eq(email.kind),
                email_messages::message_id.eq(&email.message_id),
                email_messages::recipient.eq(recipient),
                email_messages::subject.eq(&email.subject),
                email_messages::text_body.eq(&email.text_body),
                email_messages::html_body.eq(&email.html_body),
                email_messages::next_attempt_at.eq(Some(now)),
            )
        })
        .collect();
    diesel::insert_into(email_messages::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}
