//! Claiming due checks, once across replicas.
//!
//! One statement claims: it picks due monitors (`NOT paused AND next_check_at <= now()`, no live
//! lease) oldest first, at most as many as this replica has free check slots, with
//! `FOR UPDATE SKIP LOCKED` (a replica never waits for, nor takes, a row another replica is
//! claiming), and in the same UPDATE moves each one's `next_check_at` to the next slot of its own
//! phase (`scheduled + interval`, or when that is already past, the first slot of the same phase
//! after now: a replica far behind skips the missed slots instead of running them all at once)
//! and sets `lease_until` (the check's timeout plus [`LEASE_SLACK`]). Once the statement
//! committed, the row is not due again before its next slot, so each due check runs once; the
//! lease also keeps a check slower than its interval from overlapping the next one. A replica
//! that dies after claiming loses that one check (the next slot runs as usual).
//!
//! Breakers (per target `host:port`, `monitor_breakers`): a claimed monitor whose target's
//! breaker is open until a later `retry_at` is not probed; its `next_check_at` moves to the
//! first slot of its phase after `retry_at` (state untouched). When `retry_at` has passed, one
//! claim wins the half-open probe (`UPDATE … SET state = 'half_open', retry_at = now() + open
//! WHERE retry_at <= now()`, which one transaction wins); the other monitors of the target wait
//! like those of an open breaker. A half-open probe that never reports back (its replica died)
//! lets the next probe through at its `retry_at`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::db::{self, DbPool};
use pulse_shared::monitor::record::pg_interval;
use pulse_shared::monitor::spec::target_of_text;
use uuid::Uuid;

/// Lease beyond a check's own timeout: the time to record it.
pub const LEASE_SLACK: Duration = Duration::from_secs(30);

/// A claimed check.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Integer)]
    pub interval_s: i32,
    /// When it was due.
    #[diesel(sql_type = Timestamptz)]
    pub scheduled_at: DateTime<Utc>,
}

const CLAIM: &str = "
UPDATE monitors m SET
    next_check_at = due.scheduled_at + make_interval(secs => m.interval_s)
        * (floor(extract(epoch FROM now() - due.scheduled_at) / m.interval_s) + 1),
    lease_until = now() + make_interval(secs => m.timeout_ms / 1000.0) + $2
FROM (
    SELECT id, next_check_at AS scheduled_at FROM monitors
    WHERE NOT paused AND next_check_at <= now() AND (lease_until IS NULL OR lease_until < now())
    ORDER BY next_check_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) due
WHERE m.id = due.id
RETURNING m.id, m.url, m.interval_s, due.scheduled_at";

#[derive(QueryableByName)]
struct Breaker {
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    retry_at: Option<DateTime<Utc>>,
}

/// What a claim round gave this replica.
#[derive(Debug, Default)]
pub struct Round {
    /// To check now.
    pub checks: Vec<Claimed>,
    /// Held back by their target's open breaker (moved past its `retry_at`).
    pub deferred: usize,
}

/// Claims at most `limit` due checks (see the module header).
pub async fn claim(pool: &DbPool, limit: i64, breaker_open: Duration) -> Result<Round, pulse_shared::Error> {
    let mut conn = db::connection(pool).await?;
    let round = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            async move { claim_in(conn, limit, breaker_open).await }.scope_boxed()
        })
        .await?;
    Ok(round)
}

async fn claim_in(
    conn: &mut AsyncPgConnection,
    limit: i64,
    breaker_open: Duration,
) -> Result<Round, diesel::result::Error> {
    let claimed: Vec<Claimed> = diesel::sql_query(CLAIM)
        .bind::<BigInt, _>(limit.max(1))
        .bind::<Interval, _>(pg_interval(LEASE_SLACK))
        .load(conn)
        .await?;
    if claimed.is_empty() {
        return Ok(Round::default());
    }
    let targets: Vec<String> = claimed
        .iter()
        .map(|check| target_of_text(&check.url))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let breakers: Vec<Breaker> =
        diesel::sql_query("SELECT target, retry_at FROM monitor_breakers WHERE target = ANY($1) AND state <> 'closed'")
            .bind::<Array<Text>, _>(&targets)
            .load(conn)
            .await?;
    if breakers.is_empty() {
        return Ok(Round {
            checks: claimed,
            deferred: 0,
        });
    }
    let now = Utc::now();
    // Per target not closed: when checks may go through again (`None`: this claim holds the
    // half-open probe and has not used it yet).
    let mut held: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
    for breaker in breakers {
        let retry_at = breaker.retry_at.unwrap_or(now);
        if retry_at > now {
            held.insert(breaker.target, Some(retry_at));
            continue;
        }
        let won = diesel::sql_query(
            "UPDATE monitor_breakers SET state = 'half_open', retry_at = now() + $2, updated_at = now()
             WHERE target = $1 AND state <> 'closed' AND (retry_at IS NULL OR retry_at <= now())",
        )
        .bind::<Text, _>(&breaker.target)
        .bind::<Interval, _>(pg_interval(breaker_open))
        .execute(conn)
        .await?;
        let until = now + TimeDelta::from_std(breaker_open).unwrap_or(TimeDelta::seconds(60));
        held.insert(breaker.target, if won == 1 { None } else { Some(until) });
    }
    let mut round = Round::default();
    let mut moved_ids = Vec::new();
    let mut moved_to = Vec::new();
    for check in claimed {
        let target = target_of_text(&check.url);
        match held.get_mut(&target) {
            None => round.checks.push(check),
            Some(probe @ None) => {
                // The half-open probe: this one goes through, the others of its target wait.
                *probe = Some(now + TimeDelta::from_std(breaker_open).unwrap_or(TimeDelta::seconds(60)));
                round.checks.push(check);
            }
            Some(Some(retry_at)) => {
                moved_ids.push(check.id);
                moved_to.push(slot_after(check.scheduled_at, check.interval_s, *retry_at));
            }
        }
    }
    if !moved_ids.is_empty() {
        round.deferred = moved_ids.len();
        diesel::sql_query(
            "UPDATE monitors m SET next_check_at = v.next_check_at, lease_until = NULL
             FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, next_check_at)
             WHERE m.id = v.id",
        )
        .bind::<Array<SqlUuid>, _>(&moved_ids)
        .bind::<Array<Timestamptz>, _>(&moved_to)
        .execute(conn)
        .await?;
    }
    Ok(round)
}

/// The first slot of the phase of `scheduled` (every `interval_s`) at or after `at`.
pub fn slot_after(scheduled: DateTime<Utc>, interval_s: i32, at: DateTime<Utc>) -> DateTime<Utc> {
    let interval = TimeDelta::seconds(i64::from(interval_s.max(1)));
    if at <= scheduled {
        return scheduled;
    }
    let behind = (at - scheduled).num_milliseconds();
    let step = interval.num_milliseconds();
    let slots = (behind + step - 1) / step;
    scheduled + TimeDelta::milliseconds(slots * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_checks_keep_their_phase() {
        let scheduled: DateTime<Utc> = "2026-12-02T10:00:07Z".parse().expect("time");
        let retry: DateTime<Utc> = "2026-12-02T10:01:00Z".parse().expect("time");
        assert_eq!(
            slot_after(scheduled, 30, retry),
            "2026-12-02T10:01:07Z".parse::<DateTime<Utc>>().expect("time")
        );
        assert_eq!(slot_after(scheduled, 30, scheduled), scheduled);
        assert_eq!(
            slot_after(scheduled, 30, scheduled + TimeDelta::seconds(30)),
            scheduled + TimeDelta::seconds(30)
        );
    }
}
