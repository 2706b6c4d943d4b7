//! Uptime monitors of a project: the management side of issue 14 ("Uptime monitors"). The
//! scheduler (`scheduler/src/monitors/`) claims due monitors by `next_check_at` and checks
//! them through `pulse_shared::monitor`, which records each check, the state, the breaker of
//! the target and the incidents; these routes manage monitors, show their history and figures,
//! and run a check now. The user guide is docs/management.md ("Uptime monitors").
//!
//! Modules, one job each: [`endpoints`] (create, list, read, change, delete), [`rules`] (the
//! request fields and their checks), [`views`] (a monitor, a check and an incident as shown),
//! [`history`] (the checks and the incidents of a monitor, cursor-paged), [`stats`] (uptime,
//! latency percentiles and incidents over 24 h, 7 d and 30 d), [`check`] (check now),
//! [`schema`] (the OpenAPI bounds of the bodies).
//!
//! Roles: members read monitors, checks, figures and incidents; admins (and owners) create,
//! change, delete and check now. A monitor of a project the caller cannot see is 404, like the
//! project.
//!
//! Scheduling: a new monitor's first check is its first slot after now
//! (`spec::next_slot`: the monitor's phase inside its interval, derived from its id, so checks
//! of many monitors spread over the interval instead of piling up at :00); a change of `url`
//! or `interval_s` and unpausing put the next check on the new phase's next slot.

pub(crate) mod check;
pub(crate) mod endpoints;
pub(crate) mod history;
pub(crate) mod rules;
pub(crate) mod schema;
pub(crate) mod stats;
pub(crate) mod views;

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::config::MonitorConfig;
use pulse_shared::monitor::spec::BreakerState;
use pulse_shared::monitor::{Announcer, Checker};
use pulse_shared::schema::{monitor_breakers, monitor_checks, monitors};
use pulse_shared::webhook::ssrf::Guard;
use uuid::Uuid;

use self::views::{CheckRow, MonitorRow, MonitorView};
use crate::error::ApiError;

/// What the monitor routes take from `PULSE_MONITOR_*`, and what "check now" runs with.
#[derive(Clone)]
pub struct Settings {
    /// Checks `url` at creation and change (`PULSE_MONITOR_ALLOW_NETS`).
    pub guard: Guard,
    /// Runs and records "check now" (the scheduler's own path); `serve` always sets one, an
    /// app built without (in-process tests) answers `POST …/check` with a 500.
    pub checker: Option<Checker>,
    /// Announces a state change "check now" caused to live streams; without one (in-process
    /// tests) the change is stored and not announced.
    pub announcer: Option<Announcer>,
}

impl Settings {
    /// The URL guard of `config`, no checker, no announcer.
    pub fn new(config: &MonitorConfig) -> Self {
        Self {
            guard: Guard::new(config.allow_nets.clone()),
            checker: None,
            announcer: None,
        }
    }
}

/// The monitor `monitor` of `project`, or 404; `FOR UPDATE` when `lock`, so a change and a
/// check's result take turns.
pub async fn find(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    monitor: Uuid,
    lock: bool,
) -> Result<MonitorRow, ApiError> {
    let select = monitors::table
        .filter(monitors::id.eq(monitor))
        .filter(monitors::project_id.eq(project))
        .select(MonitorRow::as_select());
    let found = if lock {
        select.for_update().first(conn).await.optional()?
    } else {
        select.first(conn).await.optional()?
    };
    found.ok_or(ApiError::Missing("monitor"))
}

/// The views of `rows`, in their order: each with its target's breaker (`closed` when the
/// target has no row) and its newest check, two queries for the lot.
pub async fn views(conn: &mut AsyncPgConnection, rows: Vec<MonitorRow>) -> Result<Vec<MonitorView>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<String> = rows.iter().map(MonitorRow::target).collect();
    let breakers: HashMap<String, String> = monitor_breakers::table
        .filter(monitor_breakers::target.eq_any(&targets))
        .select((monitor_breakers::target, monitor_breakers::state))
        .load::<(String, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    // The newest check of each, on the (monitor_id, checked_at DESC, id DESC) index.
    let mut last: HashMap<Uuid, CheckRow> = monitor_checks::table
        .filter(monitor_checks::monitor_id.eq_any(&ids))
        .distinct_on(monitor_checks::monitor_id)
        .order((
            monitor_checks::monitor_id,
            monitor_checks::checked_at.desc(),
            monitor_checks::id.desc(),
        ))
        .select(CheckRow::as_select())
        .load::<CheckRow>(conn)
        .await?
        .into_iter()
        .map(|check| (check.monitor_id, check))
        .collect();
    Ok(rows
        .into_iter()
        .zip(targets)
        .map(|(row, target)| {
            let breaker = breakers
                .get(&target)
                .map_or(BreakerState::Closed, |state| BreakerState::parse(state));
            let check = last.remove(&row.id);
            MonitorView::new(row, breaker, check)
        })
        .collect())
}

/// The view of one monitor.
pub async fn view(conn: &mut AsyncPgConnection, row: MonitorRow) -> Result<MonitorView, ApiError> {
    views(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("a monitor's view went missing".into()))
}
