//! A check's result, recorded in ONE transaction with everything it changes: the
//! `monitor_checks` row, the day's `monitor_daily` counters, the monitor's state, its target's
//! `monitor_breakers` row and, when the state changed, the incident and its notices in the
//! email and webhook outboxes. A crash loses all of it or none; the announcement on the live
//! stream comes after the commit (`super::announce`).
//!
//! The monitor row is locked first (`FOR UPDATE`), so a scheduled check and a manual one of the
//! same monitor are recorded one after the other, each seeing the other's state.
//!
//! State: `consecutive_failures` counts failed checks in a row; a success resets it and makes a
//! `pending` or `down` monitor `up`; the `failures_before_down`-th failure in a row makes it
//! `down`. Going down opens the incident (at most one open per monitor: the partial unique
//! index) and sends `monitor.down`, unless the moment is inside a maintenance window (the
//! incident is marked `in_maintenance` and no notice goes out; if it is still down when the
//! window ends, the next check sends the held-back `monitor.down`). Coming up closes it and
//! sends `monitor.up` if a `monitor.down` went out. While down, `monitor.down` is repeated
//! (`reminder: true`) every `renotify_s` (0: never). An HTTPS certificate expiring within
//! `cert_expiry_days` notifies once per certificate (`cert_warned_expiry` holds the expiry
//! warned about).
//!
//! Breaker (per target `host:port`, shared by every monitor of it): only failures that say the
//! target is unreachable count (dns, connect, tls, timeout); an answer of any kind closes it.
//! `PULSE_MONITOR_BREAKER_FAILURES` such failures in a row open it until
//! `now + PULSE_MONITOR_BREAKER_OPEN_SECS`; the scheduler then lets one probe through
//! (`half_open`), whose success closes it and whose failure opens it again.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Interval, Text};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::notices::{self, Facts, Notice};
use super::probe::{Checker, Outcome, Request};
use super::spec::{self, ErrorClass, MonitorState, StatusRanges};
use super::MonitorError;
use crate::db::{self, DbPool};
use crate::schema::{monitor_checks, monitor_daily, monitor_incidents, monitors};

/// A monitor's stored columns (all but the claim's lease bookkeeping the api never shows are
/// read by both the check and the api's views).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = monitors)]
pub struct MonitorRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    pub method: String,
    pub headers: Value,
    pub body: Option<String>,
    pub interval_s: i32,
    pub timeout_ms: i32,
    pub expected_status: Value,
    pub body_contains: Option<String>,
    pub json_pointer: Option<String>,
    pub json_equals: Option<Value>,
    pub max_latency_ms: Option<i32>,
    pub cert_expiry_days: i32,
    pub failures_before_down: i32,
    pub renotify_s: i32,
    pub paused: bool,
    pub maintenance: Value,
    pub emails: Vec<String>,
    pub webhook_ids: Vec<Uuid>,
    pub state: String,
    pub consecutive_failures: i32,
    pub state_changed_at: Option<DateTime<Utc>>,
    pub next_check_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub cert_expires_at: Option<DateTime<Utc>>,
    pub cert_warned_expiry: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MonitorRow {
    /// The breaker key of its URL (`host:port`).
    pub fn target(&self) -> String {
        spec::target_of_text(&self.url)
    }

    /// The request a check of this monitor makes.
    pub fn request(&self) -> Request {
        Request {
            url: self.url.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            timeout_ms: self.timeout_ms,
            expected_status: StatusRanges::from_value(&self.expected_status),
            body_contains: self.body_contains.clone(),
            json_pointer: self.json_pointer.clone(),
            json_equals: self.json_equals.clone(),
            max_latency_ms: self.max_latency_ms,
        }
    }
}

/// A stored check, as `GET …/monitors/{id}/checks` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = monitor_checks)]
pub struct StoredCheck {
    pub id: i64,
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub cert_expires_at: Option<DateTime<Utc>>,
    pub manual: bool,
}

/// A monitor's state change, as the live stream's `{"type": "monitor", "data": …}` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StateChange {
    pub monitor_id: Uuid,
    /// Not in the stream's `data` (the stream is per project already); the partition key.
    #[serde(skip_serializing, default)]
    pub project_id: Uuid,
    pub name: String,
    pub state: MonitorState,
    pub previous: MonitorState,
    pub at: DateTime<Utc>,
    pub error_class: Option<String>,
    pub error: Option<String>,
}

/// What recording a check did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    pub check: StoredCheck,
    /// The state change it caused, if any (to announce after the commit).
    pub change: Option<StateChange>,
}

/// How a check is recorded.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// When the check was due (`None`: a manual check).
    pub scheduled_at: Option<DateTime<Utc>>,
    pub manual: bool,
}

/// Runs one check of `monitor_id` now and records it (`manual = true`) through the same path
/// as scheduled checks: the api's `POST …/monitors/{id}/check`. The caller announces
/// `Recorded::change` (`super::Announcer`). A paused monitor is checked too (asked for).
pub async fn check_now(pool: &DbPool, checker: &Checker, monitor_id: Uuid) -> Result<Recorded, MonitorError> {
    let row = {
        let mut conn = db::connection(pool).await?;
        monitors::table
            .find(monitor_id)
            .select(MonitorRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or(MonitorError::NotFound(monitor_id))?
    };
    // No connection is held while the check runs.
    let outcome = checker.probe(&row.request()).await;
    let mut conn = db::connection(pool).await?;
    record(
        &mut conn,
        checker,
        monitor_id,
        &outcome,
        Context {
            scheduled_at: None,
            manual: true,
        },
    )
    .await
}

/// The breaker's verdict on a check: whether it says the target is unreachable.
pub fn counts_against_target(class: Option<ErrorClass>) -> bool {
    matches!(
        class,
        Some(ErrorClass::Dns | ErrorClass::Connect | ErrorClass::Tls | ErrorClass::Timeout)
    )
}

/// A failure against the target: counted, and the breaker opened at the threshold (or again
/// after a failed half-open probe).
const BREAKER_FAILURE: &str = "
INSERT INTO monitor_breakers AS b (target, state, failures, opened_at, retry_at, updated_at)
VALUES ($1, CASE WHEN 1 >= $2 THEN 'open' ELSE 'closed' END, 1,
        CASE WHEN 1 >= $2 THEN now() END, CASE WHEN 1 >= $2 THEN now() + $3 END, now())
ON CONFLICT (target) DO UPDATE SET
    failures = b.failures + 1,
    state = CASE WHEN b.state = 'half_open' OR b.failures + 1 >= $2 THEN 'open' ELSE b.state END,
    opened_at = CASE WHEN b.state <> 'open' AND (b.state = 'half_open' OR b.failures + 1 >= $2) THEN now() ELSE b.opened_at END,
    retry_at = CASE WHEN b.state <> 'open' AND (b.state = 'half_open' OR b.failures + 1 >= $2) THEN now() + $3 ELSE b.retry_at END,
    updated_at = now()
";

/// The target answered: the breaker closes (a row already closed with no failures is not
/// touched, so the checks of a healthy target do not queue on its row).
const BREAKER_SUCCESS: &str = "
UPDATE monitor_breakers SET state = 'closed', failures = 0, opened_at = NULL, retry_at = NULL, updated_at = now()
WHERE target = $1 AND (state <> 'closed' OR failures <> 0)";

/// Records `outcome` of a check of `monitor_id` in one transaction (see the module header).
pub async fn record(
    conn: &mut AsyncPgConnection,
    checker: &Checker,
    monitor_id: Uuid,
    outcome: &Outcome,
    context: Context,
) -> Result<Recorded, MonitorError> {
    let checker = checker.clone();
    let outcome = outcome.clone();
    conn.transaction::<Recorded, MonitorError, _>(|conn| {
        async move { record_in(conn, &checker, monitor_id, &outcome, context).await }.scope_boxed()
    })
    .await
}

async fn record_in(
    conn: &mut AsyncPgConnection,
    checker: &Checker,
    monitor_id: Uuid,
    outcome: &Outcome,
    context: Context,
) -> Result<Recorded, MonitorError> {
    let monitor: MonitorRow = monitors::table
        .find(monitor_id)
        .select(MonitorRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(MonitorError::NotFound(monitor_id))?;
    let now = Utc::now();
    let class = outcome.error_class.map(ErrorClass::as_str);

    let check: StoredCheck = diesel::insert_into(monitor_checks::table)
        .values((
            monitor_checks::monitor_id.eq(monitor_id),
            monitor_checks::checked_at.eq(outcome.checked_at),
            monitor_checks::scheduled_at.eq(context.scheduled_at),
            monitor_checks::ok.eq(outcome.ok),
            monitor_checks::status_code.eq(outcome.status_code.map(i32::from)),
            monitor_checks::latency_ms.eq(Some(outcome.latency_ms)),
            monitor_checks::error_class.eq(class),
            monitor_checks::error.eq(&outcome.error),
            monitor_checks::cert_expires_at.eq(outcome.cert_expires_at),
            monitor_checks::manual.eq(context.manual),
        ))
        .returning(StoredCheck::as_returning())
        .get_result(conn)
        .await?;

    diesel::insert_into(monitor_daily::table)
        .values((
            monitor_daily::monitor_id.eq(monitor_id),
            monitor_daily::day.eq(outcome.checked_at.date_naive()),
            monitor_daily::checks.eq(1),
            monitor_daily::ok_checks.eq(i32::from(outcome.ok)),
        ))
        .on_conflict((monitor_daily::monitor_id, monitor_daily::day))
        .do_update()
        .set((
            monitor_daily::checks.eq(monitor_daily::checks + 1),
            monitor_daily::ok_checks.eq(monitor_daily::ok_checks + i32::from(outcome.ok)),
        ))
        .execute(conn)
        .await?;

    let target = spec::target_of_text(&monitor.url);
    let open_for = pg_interval(checker.config.breaker_open);
    if counts_against_target(outcome.error_class) {
        diesel::sql_query(BREAKER_FAILURE)
            .bind::<Text, _>(&target)
            .bind::<Integer, _>(checker.config.breaker_failures)
            .bind::<Interval, _>(open_for)
            .execute(conn)
            .await?;
    } else {
        diesel::sql_query(BREAKER_SUCCESS)
            .bind::<Text, _>(&target)
            .execute(conn)
            .await?;
    }

    let previous = MonitorState::parse(&monitor.state);
    let failures = if outcome.ok {
        0
    } else {
        monitor.consecutive_failures.saturating_add(1)
    };
    let state = match previous {
        _ if outcome.ok => MonitorState::Up,
        MonitorState::Down => MonitorState::Down,
        _ if failures >= monitor.failures_before_down => MonitorState::Down,
        other => other,
    };
    let windows = spec::maintenance_from_value(&monitor.maintenance);
    let in_maintenance = spec::in_maintenance(&windows, now);
    let facts = |incident_id: Option<Uuid>, started_at: DateTime<Utc>, sequence: u32| Facts {
        monitor_id,
        project_id: monitor.project_id,
        name: &monitor.name,
        url: &monitor.url,
        incident_id,
        started_at,
        resolved_at: None,
        error_class: class,
        error: outcome.error.as_deref(),
        cert_expires_at: outcome.cert_expires_at,
        sequence,
    };
    let mail = checker.mail.clone();

    if state == MonitorState::Down {
        if previous != MonitorState::Down {
            let incident_id = Uuid::now_v7();
            let opened = diesel::insert_into(monitor_incidents::table)
                .values((
                    monitor_incidents::id.eq(incident_id),
                    monitor_incidents::monitor_id.eq(monitor_id),
                    monitor_incidents::project_id.eq(monitor.project_id),
                    monitor_incidents::started_at.eq(now),
                    monitor_incidents::error_class.eq(class),
                    monitor_incidents::error.eq(&outcome.error),
                    monitor_incidents::in_maintenance.eq(in_maintenance),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if opened == 1 && !in_maintenance {
                notices::write(
                    conn,
                    Notice::Down,
                    &facts(Some(incident_id), now, 1),
                    &monitor.emails,
                    &monitor.webhook_ids,
                    &mail,
                )
                .await?;
                mark_notified(conn, incident_id, now).await?;
            }
        } else if !in_maintenance {
            // Still down: the held-back first notice once a maintenance window ended, or a
            // reminder every renotify_s.
            let open: Option<OpenIncident> = monitor_incidents::table
                .filter(monitor_incidents::monitor_id.eq(monitor_id))
                .filter(monitor_incidents::resolved_at.is_null())
                .select((
                    monitor_incidents::id,
                    monitor_incidents::started_at,
                    monitor_incidents::notifications,
                    monitor_incidents::last_notified_at,
                ))
                .first(conn)
                .await
                .optional()?;
            if let Some((incident_id, started_at, sent, last)) = open {
                let sequence = u32::try_from(sent).unwrap_or(0) + 1;
                let notice = if sent == 0 {
                    Some(Notice::Down)
                } else if monitor.renotify_s > 0
                    && last.is_some_and(|last| now - last >= TimeDelta::seconds(i64::from(monitor.renotify_s)))
                {
                    Some(Notice::Reminder)
                } else {
                    None
                };
                if let Some(notice) = notice {
                    notices::write(
                        conn,
                        notice,
                        &facts(Some(incident_id), started_at, sequence),
                        &monitor.emails,
                        &monitor.webhook_ids,
                        &mail,
                    )
                    .await?;
                    mark_notified(conn, incident_id, now).await?;
                }
            }
        }
    } else if previous == MonitorState::Down {
        let closed: Option<(Uuid, DateTime<Utc>, i32)> = diesel::update(
            monitor_incidents::table
                .filter(monitor_incidents::monitor_id.eq(monitor_id))
                .filter(monitor_incidents::resolved_at.is_null()),
        )
        .set(monitor_incidents::resolved_at.eq(now))
        .returning((
            monitor_incidents::id,
            monitor_incidents::started_at,
            monitor_incidents::notifications,
        ))
        .get_result(conn)
        .await
        .optional()?;
        if let Some((incident_id, started_at, sent)) = closed.filter(|(_, _, sent)| *sent > 0) {
            let sequence = u32::try_from(sent).unwrap_or(0) + 1;
            let facts = Facts {
                resolved_at: Some(now),
                ..facts(Some(incident_id), started_at, sequence)
            };
            notices::write(conn, Notice::Up, &facts, &monitor.emails, &monitor.webhook_ids, &mail).await?;
        }
    }

    // The certificate, once per certificate (its expiry tells one from the next).
    let mut warned = monitor.cert_warned_expiry;
    if let Some(expires) = outcome.cert_expires_at {
        let soon =
            monitor.cert_expiry_days > 0 && expires - now <= TimeDelta::days(i64::from(monitor.cert_expiry_days));
        if soon && warned != Some(expires) && !in_maintenance {
            notices::write(
                conn,
                Notice::CertExpiring,
                &Facts {
                    incident_id: None,
                    ..facts(None, now, 1)
                },
                &monitor.emails,
                &monitor.webhook_ids,
                &mail,
            )
            .await?;
            warned = Some(expires);
        }
    }

    let changed = state != previous;
    diesel::update(monitors::table.find(monitor_id))
        .set((
            monitors::state.eq(state.as_str()),
            monitors::consecutive_failures.eq(failures),
            monitors::last_checked_at.eq(Some(outcome.checked_at)),
            monitors::cert_warned_expiry.eq(warned),
            monitors::state_changed_at.eq(if changed { Some(now) } else { monitor.state_changed_at }),
            monitors::cert_expires_at.eq(outcome.cert_expires_at.or(monitor.cert_expires_at)),
            // The scheduler's lease on this check ends with it (a manual check holds none).
            monitors::lease_until.eq(if context.manual { monitor.lease_until } else { None }),
        ))
        .execute(conn)
        .await?;

    let change = changed.then(|| StateChange {
        monitor_id,
        project_id: monitor.project_id,
        name: monitor.name.clone(),
        state,
        previous,
        at: now,
        error_class: class.map(str::to_owned),
        error: outcome.error.clone(),
    });
    Ok(Recorded { check, change })
}

/// An open incident: id, start, notices sent, the last one's time.
type OpenIncident = (Uuid, DateTime<Utc>, i32, Option<DateTime<Utc>>);

async fn mark_notified(conn: &mut AsyncPgConnection, incident_id: Uuid, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(monitor_incidents::table.find(incident_id))
        .set((
            monitor_incidents::notifications.eq(monitor_incidents::notifications + 1),
            monitor_incidents::last_notified_at.eq(Some(now)),
        ))
        .execute(conn)
        .await
}

/// A duration as a PostgreSQL interval.
pub fn pg_interval(duration: std::time::Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
}
