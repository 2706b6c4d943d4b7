//! The rollups of a batch: the rows (`pulse_shared::rollup::RollupRows`) of the batch's events
//! that were new, written in the batch's transaction (`store.rs`), so a redelivered batch adds
//! nothing (promise 3). Rows are insert-only (see the migration): concurrent workers never
//! wait on each other's rows, and queries merge them.

use std::borrow::Cow;
use std::collections::HashSet;

use pulse_shared::rollup::rows::RollupEvent;
use pulse_shared::rollup::RollupRows;
use uuid::Uuid;

use super::store::Columns;

/// The rollup rows of the events of `columns` whose id is in `new`.
pub fn of<'a>(columns: &'a Columns, new: &HashSet<Uuid>) -> RollupRows<'a> {
    let mut rows = RollupRows::default();
    for index in 0..columns.len() {
        if !new.contains(&columns.ids[index]) {
            continue;
        }
        rows.record(RollupEvent {
            project_id: columns.project_ids[index],
            timestamp: columns.timestamps[index],
            event_type: Cow::Borrowed(&columns.event_types[index]),
            source: columns.sources[index].as_deref().map(Cow::Borrowed),
            status: columns.statuses[index].as_deref().map(Cow::Borrowed),
            duration_ms: columns.durations[index],
            user_id: columns.user_ids[index].as_deref(),
            session_id: columns.session_ids[index].as_deref(),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use pulse_shared::envelope::EventEnvelope;
    use pulse_shared::event::Event;
    use pulse_shared::rollup::Distinct;

    fn envelope(id: Uuid, at: &str, event_type: &str, user: Option<&str>, duration: Option<i64>) -> EventEnvelope {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": id, "timestamp": at, "event_type": event_type, "user_id": user, "duration_ms": duration,
        }))
        .expect("event");
        EventEnvelope::new(Uuid::nil(), Utc::now(), event)
    }

    #[test]
    fn only_new_events_are_summed_per_minute_and_dimensions() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let columns = Columns::from_events(vec![
            envelope(ids[0], "2026-12-01T10:00:05Z", "a", Some("u1"), Some(10)),
            envelope(ids[1], "2026-12-01T10:00:59.999Z", "a", Some("u2"), Some(30)),
            envelope(ids[2], "2026-12-01T10:01:00Z", "a", Some("u1"), None),
            envelope(ids[3], "2026-12-01T10:00:10Z", "b", None, None),
            envelope(ids[4], "2026-12-01T10:00:20Z", "a", Some("u3"), Some(1000)),
        ]);
        let new: HashSet<Uuid> = ids[..4].iter().copied().collect();
        let rows = of(&columns, &new);
        assert_eq!(rows.len(), 3, "(10:00, a), (10:01, a), (10:00, b)");
        let minute_a = rows
            .get(Uuid::nil(), "2026-12-01T10:00:00Z".parse().expect("t"), "a")
            .expect("row");
        assert_eq!((minute_a.events, minute_a.durations, minute_a.duration_sum), (2, 2, 40));
        assert_eq!((minute_a.duration_min, minute_a.duration_max), (Some(10), Some(30)));
        let mut users = Distinct::decode(&minute_a.users.as_ref().expect("users").encode()).expect("decodes");
        assert_eq!(users.count(), 2);
        assert!(
            of(&columns, &HashSet::new()).is_empty(),
            "a redelivered batch adds nothing"
        );
    }
}
