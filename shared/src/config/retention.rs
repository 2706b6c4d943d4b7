//! Retention (`pulse-scheduler`'s `retention` job): how long each kind of row is kept, how
//! often the job runs and how many rows one of its transactions removes.
//!
//! - `PULSE_RETENTION_CRON` (`0 15 * * * *`, every hour at a quarter past): when it runs (cron,
//!   seconds first, UTC, like every cron job of the scheduler; once per tick across replicas);
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
//!   `PULSE_RETENTION_INCIDENT_DAYS`).
//!
//! Raw events and named-metric points follow each project's `retention_days` (a project
//! setting, not a variable).

use std::str::FromStr;

use super::{cron_schedule, positive, ConfigError};

/// The default of `PULSE_RETENTION_CRON`: every hour, at a quarter past (the `partitions` job
/// runs on the hour).
pub const DEFAULT_RETENTION_CRON: &str = "0 15 * * * *";

/// Settings of the retention job.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// When a run is due.
    pub cron: cron::Schedule,
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
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            cron: cron::Schedule::from_str(DEFAULT_RETENTION_CRON).expect("the default cron parses"),
            batch: 10_000,
            rollups_1m_days: 14,
            rollups_1h_days: 400,
            webhook_days: 30,
            email_days: 30,
            incident_days: 400,
            check_days: 32,
        }
    }
}

impl RetentionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            cron: cron_schedule("PULSE_RETENTION_CRON", DEFAULT_RETENTION_CRON)?,
            batch: positive("PULSE_RETENTION_BATCH", defaults.batch)?,
            rollups_1m_days: days("PULSE_RETENTION_ROLLUPS_1M_DAYS", defaults.rollups_1m_days)?,
            rollups_1h_days: days("PULSE_RETENTION_ROLLUPS_1H_DAYS", defaults.rollups_1h_days)?,
            webhook_days: days("PULSE_RETENTION_WEBHOOK_DAYS", defaults.webhook_days)?,
            email_days: days("PULSE_RETENTION_EMAIL_DAYS", defaults.email_days)?,
            incident_days: days("PULSE_RETENTION_INCIDENT_DAYS", defaults.incident_days)?,
            check_days: days("PULSE_RETENTION_CHECK_DAYS", defaults.check_days)?,
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
