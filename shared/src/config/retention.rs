//! Retention (`pulse-scheduler`'s `retention` job): how long each kind of row is kept, how
//! often the job runs and how many rows one of its transactions removes.
//!
//! - `PULSE_RETENTION_INTERVAL_SECS` (3600): how often it runs, at a quarter past each multiple
//!   of the interval since the epoch (hourly: at :15, clear of the `partitions` job on the
//!   hour); once per tick across replicas;
//! - `PULSE_RETENTION_CRON` (unset): a cron expression (seconds first, UTC) to run it on instead
//!   of the interval, e.g. `0 30 3 * * *` for 03:30 every night;
//! - `PULSE_RETENTION_BATCH` (10000): most rows one transaction deletes (never one giant DELETE);
//! - `PULSE_RETENTION_ROLLUPS_1M_DAYS` (14): minute rollups (`event_rollups`, `metric_rollups`)
//!   are kept this long, or the project's `retention_days` when shorter;
//! - `PULSE_RETENTION_ROLLUPS_1H_DAYS` (400): hourly rollups (`event_rollups_hourly`,
//!   `event_rollups_hourly_totals`);
//! - `PULSE_RETENTION_WEBHOOK_DAYS` (30): finished webhook deliveries and their attempts;
//! - `PULSE_RETENTION_EMAIL_DAYS` (30): sent or failed emails and their attempts;
//! - `PULSE_RETENTION_INCIDENT_DAYS` (400): resolved alert incidents;
//! - `PULSE_RETENTION_CHECK_DAYS` (32): uptime check history (`monitor_checks`; the daily
//!   uptime of `monitor_daily` and resolved monitor incidents follow
//!   `PULSE_RETENTION_INCIDENT_DAYS`);
//! - `PULSE_RETENTION_JOB_RUN_DAYS` (30): the scheduler's run history (`job_runs`).
//!
//! Raw events and named-metric points follow each project's `retention_days` (a project
//! setting, not a variable).

use std::time::Duration;

use super::{cron_schedule, positive, raw, ConfigError};

/// Where in each interval a run falls: a quarter past (the `partitions` job runs on the hour).
pub const RETENTION_OFFSET: Duration = Duration::from_secs(900);

/// Settings of the retention job.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How often a run is due (at [`RETENTION_OFFSET`] past each multiple since the epoch).
    pub interval: Duration,
    /// When set, runs are due on this cron schedule instead of the interval.
    pub cron: Option<cron::Schedule>,
    /// Most rows deleted per transaction.
    pub batch: i64,
    /// Days minute rollups are kept (bounded further by each project's `retention_days`).
    pub rollups_1m_days: i32,
    /// Days hourly rollups are kept.
    pub rollups_1h_days: i32,
    /// Days finished webhook deliveries are kept after completion.
    pub webhook_days: i32,
    /// Days sent or failed emails are kept.
    pub email_days: i32,
    /// Days resolved alert incidents are kept after resolution.
    pub incident_days: i32,
    /// Days uptime checks are kept.
    pub check_days: i32,
    /// Days the scheduler's job runs are kept.
    pub job_run_days: i32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            cron: None,
            batch: 10_000,
            rollups_1m_days: 14,
            rollups_1h_days: 400,
            webhook_days: 30,
            email_days: 30,
            incident_days: 400,
            check_days: 32,
            job_run_days: 30,
        }
    }
}

impl RetentionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            interval: Duration::from_secs(positive("PULSE_RETENTION_INTERVAL_SECS", 3600)?),
            cron: match raw("PULSE_RETENTION_CRON") {
                Some(_) => Some(cron_schedule("PULSE_RETENTION_CRON", "")?),
                None => None,
            },
            batch: positive("PULSE_RETENTION_BATCH", defaults.batch)?,
            rollups_1m_days: days("PULSE_RETENTION_ROLLUPS_1M_DAYS", defaults.rollups_1m_days)?,
            rollups_1h_days: days("PULSE_RETENTION_ROLLUPS_1H_DAYS", defaults.rollups_1h_days)?,
            webhook_days: days("PULSE_RETENTION_WEBHOOK_DAYS", defaults.webhook_days)?,
            email_days: days("PULSE_RETENTION_EMAIL_DAYS", defaults.email_days)?,
            incident_days: days("PULSE_RETENTION_INCIDENT_DAYS", defaults.incident_days)?,
            check_days: days("PULSE_RETENTION_CHECK_DAYS", defaults.check_days)?,
            job_run_days: days("PULSE_RETENTION_JOB_RUN_DAYS", defaults.job_run_days)?,
        })
    }
}

/// Longest retention a variable accepts (100 years), so `now() - days` stays a date.
const MAX_DAYS: i32 = 36_500;

fn days(variable: &'static str, default: i32) -> Result<i32, ConfigError> {
    let value = positive(variable, default)?;
    if value > MAX_DAYS {
        return Err(ConfigError {
            variable,
            reason: format!("{value} is more than {MAX_DAYS} days"),
        });
    }
    Ok(value)
}
