//! Alert rules, evaluated by the notify workers: every `PULSE_ALERT_EVAL_INTERVAL_MS`, due rules
//! are claimed ([`rules`]), their window read from what was stored ([`window`]), judged
//! ([`condition`]), and the verdict applied to the rule's incidents with the notices it causes
//! ([`incidents`], [`notices`]), in one transaction per rule. Evaluation reads the rollups and
//! the events the persist path stored; it adds nothing to that path.
//!
//! `below` and `absent` rules are judged on the same timer, so silence is noticed as promptly
//! as a burst; they wait for a whole window after the rule was created or changed. The design
//! and its guarantees are in docs/alerts.md.

pub mod condition;
pub mod incidents;
pub mod notices;
pub mod rules;
pub mod window;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use pulse_shared::backoff::{sleep_unless_stopped, Backoff};
use pulse_shared::config::AlertConfig;
use pulse_shared::db::{self, DbPool};
use tokio_util::sync::CancellationToken;

pub use notices::Mail;

use crate::metrics;
use incidents::Change;

/// Evaluates due rules until `stop`.
pub async fn run(pool: DbPool, config: AlertConfig, mail: Mail, stop: CancellationToken) {
    let mut failures = Backoff::new(Duration::from_secs(5));
    let mut pause = Duration::ZERO;
    while sleep_unless_stopped(pause, &stop).await {
        pause = config.eval_interval.min(Duration::from_millis(500));
        match round(&pool, &config, &mail).await {
            Ok(evaluated) => {
                failures = Backoff::new(Duration::from_secs(5));
                if evaluated as i64 >= config.eval_batch {
                    pause = Duration::ZERO;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Evaluating alert rules failed; retrying");
                pause = failures.next_delay();
            }
        }
    }
}

/// One round: claims due rules and evaluates each. Returns how many were claimed.
async fn round(pool: &DbPool, config: &AlertConfig, mail: &Mail) -> anyhow::Result<usize> {
    let mut conn = db::connection(pool).await?;
    let claimed = rules::claim(&mut conn, config.eval_batch, config.eval_interval).await?;
    for rule in &claimed {
        let now = Utc::now();
        if condition::needs_whole_window(rule) && now - rule.updated_at < TimeDelta::seconds(i64::from(rule.window_s)) {
            continue;
        }
        let seen = window::observe(&mut conn, rule, now).await?;
        let verdict = condition::judge(rule, seen);
        metrics::ALERT_EVALUATIONS.inc();
        let change = incidents::apply(&mut conn, rule, verdict, now, mail).await?;
        let label = match change {
            Change::Fired => "fired",
            Change::Reminded => "reminded",
            Change::Resolved => "resolved",
            Change::Suppressed => "suppressed",
            Change::None => continue,
        };
        metrics::ALERT_INCIDENTS.with_label_values(&[label]).inc();
        tracing::info!(rule = %rule.id, project = %rule.project_id, observed = verdict.observed, change = label, "Alert rule");
    }
    Ok(claimed.len())
}
