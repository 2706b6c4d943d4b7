//! The daily digest job: at `PULSE_DIGEST_HOUR_UTC`:00 UTC (cron `0 0 H * * *`), and once at
//! start, it writes the due day's digest ([`pulse_shared::digest::due_day`]: yesterday from the
//! hour on, the day before before it) of every live project with an enabled subscriber into
//! the email outbox; the notify worker sends it.
//!
//! Once per member and day, across replicas and re-runs: a tick is claimed once in `job_runs`,
//! and beyond that (a start-up run, a retry after a failed run, a replica whose claim was for
//! another second) every run writes the same `Message-ID` per project and day, which the
//! outbox's `UNIQUE (message_id, recipient)` keeps to one row per member
//! ([`pulse_shared::digest`]). A run after the hour (a replica started late, or down at the
//! hour) thus sends what is missing and nothing twice.
//!
//! Projects are walked by id, [`PAGE`] at a time; each project's digest is gathered from the
//! rollups and written on its own (one project failing does not hold up the others; the run
//! then ends as an error, and its retry writes only what is still missing).

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use pulse_shared::db::{self, DbPool};
use pulse_shared::digest;
use uuid::Uuid;

use super::Settings;

/// Projects read per round trip.
pub const PAGE: i64 = 100;

/// The cron expression of the job at `hour_utc` (seconds first, UTC).
pub fn schedule(hour_utc: u32) -> cron::Schedule {
    format!("0 0 {hour_utc} * * *")
        .parse()
        .expect("PULSE_DIGEST_HOUR_UTC is checked to be 0 to 23 when it is read, a valid cron hour")
}

#[derive(QueryableByName)]
struct ProjectId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// What one run wrote.
#[derive(Debug, Default)]
struct Report {
    projects: usize,
    written: usize,
    already: usize,
    failed: Vec<String>,
}

/// Sends the due day's digests.
pub async fn run(pool: &DbPool, settings: &Settings) -> anyhow::Result<String> {
    let day = digest::due_day(Utc::now(), settings.digest.hour_utc);
    send_day(pool, settings, day).await
}

/// Sends the digests of `day` to every subscriber who does not have it yet.
pub async fn send_day(pool: &DbPool, settings: &Settings, day: NaiveDate) -> anyhow::Result<String> {
    let mut conn = db::connection(pool).await.context("database connection")?;
    let mut report = Report::default();
    let mut after = Uuid::nil();
    loop {
        let page: Vec<ProjectId> = diesel::sql_query(
            "SELECT DISTINCT s.project_id AS id
             FROM digest_subscriptions s
             JOIN projects p ON p.id = s.project_id
             JOIN organizations o ON o.id = p.organization_id
             WHERE s.enabled AND p.deleted_at IS NULL AND o.deleted_at IS NULL AND s.project_id > $1
             ORDER BY 1
             LIMIT $2",
        )
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(PAGE)
        .load(&mut conn)
        .await
        .context("listing subscribed projects")?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        let full = page.len() as i64 == PAGE;
        for project in page {
            match digest::send(
                &mut conn,
                project.id,
                day,
                0,
                &settings.email.from,
                &settings.email.public_url,
            )
            .await
            {
                Ok(Some(sent)) => {
                    report.projects += 1;
                    report.written += sent.written;
                    report.already += sent.subscribers - sent.written.min(sent.subscribers);
                    if sent.written > 0 {
                        tracing::info!(project_id = %project.id, %day, written = sent.written, message_id = sent.message_id, "Digest written");
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(project_id = %project.id, %day, %error, "Digest failed");
                    report.failed.push(format!("{}: {error}", project.id));
                }
            }
        }
        if !full {
            break;
        }
    }
    let summary = format!(
        "digest of {day}: {} projects, {} emails written, {} already had it",
        report.projects, report.written, report.already
    );
    if report.failed.is_empty() {
        Ok(summary)
    } else {
        anyhow::bail!(
            "{summary}; {} projects failed: {}",
            report.failed.len(),
            report.failed.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_hour_every_day() {
        let after: chrono::DateTime<Utc> = "2026-12-01T07:00:00Z".parse().expect("t");
        let next: Vec<_> = schedule(7).after(&after).take(2).collect();
        assert_eq!(
            next,
            vec![
                "2026-12-02T07:00:00Z".parse::<chrono::DateTime<Utc>>().expect("t"),
                "2026-12-03T07:00:00Z".parse::<chrono::DateTime<Utc>>().expect("t"),
            ]
        );
        assert_eq!(schedule(0).source(), "0 0 0 * * *");
    }
}
