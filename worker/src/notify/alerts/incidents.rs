//! Incidents: the state `ok → firing → resolved` of one rule, moved in one transaction per
//! evaluation together with the notices it causes, guarded in PostgreSQL so that any number
//! of workers agree:
//! - a breach opens an incident with `INSERT … ON CONFLICT DO NOTHING` on the partial unique
//!   index of firing incidents: one row per rule can be firing, so one breach opens one
//!   incident and writes one `alert.fired`, whoever evaluates it;
//! - the cooldown: no new incident opens within `cooldown_s` of the previous one's start;
//! - while firing, a re-notification is written at most every `renotify_s` (an `UPDATE … WHERE
//!   last_notified_at <= now − renotify_s`, which one transaction wins);
//! - the end resolves it with `UPDATE … WHERE state = 'firing'`, which one transaction wins,
//!   writing `alert.resolved` with how long it lasted.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{alert_incidents, alert_rules};
use uuid::Uuid;

use super::condition::Verdict;
use super::notices::{self, IncidentFacts, Mail, Notice};
use super::rules::Rule;

/// What one evaluation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Fired,
    /// Breached within the cooldown of the previous incident: nothing opened.
    Suppressed,
    Reminded,
    Resolved,
}

#[derive(Queryable, Debug)]
struct Firing {
    id: Uuid,
    started_at: DateTime<Utc>,
    notifications: i32,
}

/// Records what the rule saw, applies `verdict` to its incidents and writes the notices, in one
/// transaction.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    verdict: Verdict,
    now: DateTime<Utc>,
    mail: &Mail,
) -> QueryResult<Change> {
    conn.transaction::<Change, diesel::result::Error, _>(|conn| {
        async move {
            diesel::update(alert_rules::table.find(rule.id))
                .set(alert_rules::last_observed.eq(Some(verdict.observed)))
                .execute(conn)
                .await?;
            let firing: Option<Firing> = alert_incidents::table
                .filter(alert_incidents::rule_id.eq(rule.id))
                .filter(alert_incidents::state.eq("firing"))
                .select((
                    alert_incidents::id,
                    alert_incidents::started_at,
                    alert_incidents::notifications,
                ))
                .first(conn)
                .await
                .optional()?;
            match (verdict.breached, firing) {
                (true, None) => open(conn, rule, verdict, now, mail).await,
                (true, Some(firing)) => still_firing(conn, rule, verdict, firing, now, mail).await,
                (false, Some(firing)) => resolve(conn, rule, verdict, firing, now, mail).await,
                (false, None) => Ok(Change::None),
            }
        }
        .scope_boxed()
    })
    .await
}

async fn open(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    verdict: Verdict,
    now: DateTime<Utc>,
    mail: &Mail,
) -> QueryResult<Change> {
    let previous: Option<DateTime<Utc>> = alert_incidents::table
        .filter(alert_incidents::rule_id.eq(rule.id))
        .select(diesel::dsl::max(alert_incidents::started_at))
        .first(conn)
        .await?;
    if previous.is_some_and(|started| now - started < TimeDelta::seconds(i64::from(rule.cooldown_s))) {
        return Ok(Change::Suppressed);
    }
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(alert_incidents::table)
        .values((
            alert_incidents::id.eq(id),
            alert_incidents::rule_id.eq(rule.id),
            alert_incidents::project_id.eq(rule.project_id),
            alert_incidents::state.eq("firing"),
            alert_incidents::rule_name.eq(&rule.name),
            alert_incidents::kind.eq(&rule.kind),
            alert_incidents::op.eq(&rule.op),
            alert_incidents::threshold.eq(rule.threshold),
            alert_incidents::window_s.eq(rule.window_s),
            alert_incidents::observed.eq(verdict.observed),
            alert_incidents::last_observed.eq(verdict.observed),
            alert_incidents::started_at.eq(now),
            alert_incidents::notifications.eq(1),
            alert_incidents::last_notified_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 0 {
        // Another worker opened it a moment ago.
        return Ok(Change::None);
    }
    let facts = IncidentFacts {
        incident_id: id,
        observed: verdict.observed,
        started_at: now,
        resolved_at: None,
        sequence: 1,
    };
    notices::write(conn, rule, &facts, Notice::Fired, mail).await?;
    Ok(Change::Fired)
}

async fn still_firing(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    verdict: Verdict,
    firing: Firing,
    now: DateTime<Utc>,
    mail: &Mail,
) -> QueryResult<Change> {
    let row = alert_incidents::table
        .filter(alert_incidents::id.eq(firing.id))
        .filter(alert_incidents::state.eq("firing"));
    if rule.renotify_s > 0 {
        let due = now - TimeDelta::seconds(i64::from(rule.renotify_s));
        let reminded = diesel::update(row.filter(alert_incidents::last_notified_at.le(due)))
            .set((
                alert_incidents::last_observed.eq(verdict.observed),
                alert_incidents::notifications.eq(alert_incidents::notifications + 1),
                alert_incidents::last_notified_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if reminded > 0 {
            let facts = IncidentFacts {
                incident_id: firing.id,
                observed: verdict.observed,
                started_at: firing.started_at,
                resolved_at: None,
                sequence: u32::try_from(firing.notifications).unwrap_or(0) + 1,
            };
            notices::write(conn, rule, &facts, Notice::Reminder, mail).await?;
            return Ok(Change::Reminded);
        }
    }
    diesel::update(row)
        .set(alert_incidents::last_observed.eq(verdict.observed))
        .execute(conn)
        .await?;
    Ok(Change::None)
}

async fn resolve(
    conn: &mut AsyncPgConnection,
    rule: &Rule,
    verdict: Verdict,
    firing: Firing,
    now: DateTime<Utc>,
    mail: &Mail,
) -> QueryResult<Change> {
    let resolved = diesel::update(
        alert_incidents::table
            .filter(alert_incidents::id.eq(firing.id))
            .filter(alert_incidents::state.eq("firing")),
    )
    .set((
        alert_incidents::state.eq("resolved"),
        alert_incidents::resolved_at.eq(Some(now)),
        alert_incidents::last_observed.eq(verdict.observed),
    ))
    .execute(conn)
    .await?;
    if resolved == 0 {
        return Ok(Change::None);
    }
    let facts = IncidentFacts {
        incident_id: firing.id,
        observed: verdict.observed,
        started_at: firing.started_at,
        resolved_at: Some(now),
        sequence: 0,
    };
    notices::write(conn, rule, &facts, Notice::Resolved, mail).await?;
    Ok(Change::Resolved)
}
