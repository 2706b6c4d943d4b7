//! The daily digest of a project: what one UTC day held, gathered ([`figures`]), written as a
//! text and HTML mail ([`compose`]) and put into the email outbox for each subscribed member
//! ([`send`]); the notify worker delivers it. Written by the scheduler's `digest` job
//! (`scheduler/src/jobs/digest.rs`, yesterday's digest at `PULSE_DIGEST_HOUR_UTC`) and by
//! `pulse-api admin send-digest` (one now). Members opt in per project with
//! `PUT /v1/projects/{project_id}/digest` (`digest_subscriptions`). The guide is docs/digest.md.
//!
//! **Once per member and day.** A digest's `Message-ID` is derived from (project, day) and a
//! sequence ([`message_id`]): the scheduler always writes sequence 0, so every replica and every
//! re-run writes the same id, and the outbox's `UNIQUE (message_id, recipient)` (insert with
//! `ON CONFLICT DO NOTHING`) keeps one row per member. A deliberate re-send (`admin
//! send-digest` of a day already sent) takes the next sequence: a new message id, sent again.

pub mod compose;
pub mod figures;
pub mod send;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use figures::{gather, DayFigures};
pub use send::{send, Sent};

/// What a digest is in `email_messages.kind` (and the first part of its `Message-ID`).
pub const KIND: &str = crate::email::DIGEST_DAILY;

/// How many event types a digest lists.
pub const TOP_EVENT_TYPES: i64 = 10;

/// How early a run may come and still count as at the hour: a scheduler tick's timer may wake
/// a hair before `HH:00:00`, and the job reads the clock, not the tick. (A start-up run in the
/// last 5 s before the hour thus sends a digest of a day 5 s short of its end.)
const EARLY: TimeDelta = TimeDelta::seconds(5);

/// `[start, end)` of the UTC day `day`.
pub fn day_range(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day.and_time(NaiveTime::MIN).and_utc();
    (start, start + TimeDelta::days(1))
}

/// The latest day whose digest is due at `now` when digests go out at `hour_utc`:00 UTC:
/// yesterday from the hour on, the day before yesterday before it. A run at start-up sends
/// this day's digest to whoever has not had it yet.
pub fn due_day(now: DateTime<Utc>, hour_utc: u32) -> NaiveDate {
    let now = now + EARLY;
    let today = now.date_naive();
    let back = if now.hour() >= hour_utc { 1 } else { 2 };
    today.checked_sub_days(Days::new(back)).unwrap_or(today)
}

/// The id that stands for the digest of `project` on `day` in its `Message-ID`: the first 16
/// bytes of a SHA-256 of both (a UUID of version 8, "custom"), the same on every replica.
pub fn cause(project: Uuid, day: NaiveDate) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"pulse digest ");
    hash.update(project.as_bytes());
    hash.update(day.format(" %Y-%m-%d").to_string().as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The `Message-ID` (without angle brackets) of the digest of `project` on `day`: sequence 0
/// for the scheduled one, the next for each re-send.
pub fn message_id(project: Uuid, day: NaiveDate, sequence: u32, from: &str) -> String {
    crate::email::message_id(KIND, cause(project, day), sequence, crate::email::from_domain(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("day")
    }

    #[test]
    fn the_due_day_is_yesterday_from_the_hour_on() {
        assert_eq!(due_day(at("2026-12-02T07:00:00Z"), 7), day("2026-12-01"));
        assert_eq!(due_day(at("2026-12-02T23:59:59Z"), 7), day("2026-12-01"));
        // A timer waking a hair early still sends yesterday's.
        assert_eq!(due_day(at("2026-12-02T06:59:59.900Z"), 7), day("2026-12-01"));
        assert_eq!(due_day(at("2026-12-02T06:00:00Z"), 7), day("2026-11-30"));
        assert_eq!(due_day(at("2026-12-02T00:00:00Z"), 0), day("2026-12-01"));
        assert_eq!(due_day(at("2026-12-01T23:59:58Z"), 0), day("2026-12-01"));
        assert_eq!(due_day(at("2026-12-01T23:59:00Z"), 0), day("2026-11-30"));
    }

    #[test]
    fn message_ids_are_per_project_day_and_sequence() {
        let project = Uuid::parse_str("0192f0c1-7a3e-7000-8000-00000000d001").expect("uuid");
        let other = Uuid::parse_str("0192f0c1-7a3e-7000-8000-00000000d002").expect("uuid");
        let first = message_id(project, day("2026-12-01"), 0, "Pulse <alerts@example.com>");
        assert!(first.starts_with("digest.daily."), "{first}");
        assert!(first.ends_with(".0@example.com"), "{first}");
        assert_eq!(first, message_id(project, day("2026-12-01"), 0, "alerts@example.com"));
        assert_ne!(first, message_id(project, day("2026-12-02"), 0, "alerts@example.com"));
        assert_ne!(first, message_id(other, day("2026-12-01"), 0, "alerts@example.com"));
        assert_ne!(first, message_id(project, day("2026-12-01"), 1, "alerts@example.com"));
        assert_eq!(cause(project, day("2026-12-01")).get_version_num(), 8);
    }

    #[test]
    fn a_day_is_its_utc_midnights() {
        assert_eq!(
            day_range(day("2026-12-01")),
            (at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"))
        );
    }
}
