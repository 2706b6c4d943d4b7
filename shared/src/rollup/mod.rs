//! Rollups: the mergeable summary a rollup row keeps of its events, shared by the worker
//! (which writes one row per bucket and dimensions from a batch's new events), the api (which
//! merges rows into the buckets a query asks for) and `pulse-api admin rebuild-rollups`.
//!
//! - [`sketch`]: the distinct-count and quantile sketches and their stored form (also the
//!   [`Values`] sketch of named-metric rollups, `metric_rollups`);
//! - [`Summary`] (here): what a row, or a merge of rows, sums up;
//! - [`rows`]: the rows of a set of events, and the statement that inserts them;
//! - [`stored`]: a row's summary columns as SQL returns them, decoded.

pub mod rows;
pub mod sketch;
pub mod stored;

pub use rows::RollupRows;
pub use stored::{StoredSummary, SUMMARY_COLUMNS};

/// The advisory lock that rollup compaction rounds (pulse-scheduler) and
/// `pulse-api admin rebuild-rollups` take turns with ('pulse rollups').
pub const COMPACTION_LOCK: i64 = 0x7075_6c73_6572_6f6c;
pub use sketch::{Distinct, Durations, SketchError, Values, DISTINCT_PRECISION, QUANTILE_ACCURACY};

/// What one rollup row (or a merge of rows) sums up: the count; the count, sum, min and max
/// of the durations; sketches of distinct users and sessions and of the durations (`None`
/// while no event had one). Events without a user, session or duration are left out of those,
/// as SQL's aggregates leave out NULL.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub events: i64,
    pub durations: i64,
    pub duration_sum: i128,
    pub duration_min: Option<i64>,
    pub duration_max: Option<i64>,
    pub users: Option<Distinct>,
    pub sessions: Option<Distinct>,
    pub sketch: Option<Durations>,
}

impl Summary {
    /// Adds one event.
    pub fn record(&mut self, duration_ms: Option<i64>, user: Option<&str>, session: Option<&str>) {
        self.events += 1;
        if let Some(ms) = duration_ms {
            self.durations += 1;
            self.duration_sum += i128::from(ms);
            self.duration_min = Some(self.duration_min.map_or(ms, |min| min.min(ms)));
            self.duration_max = Some(self.duration_max.map_or(ms, |max| max.max(ms)));
            self.sketch.get_or_insert_with(Durations::default).add(ms);
        }
        if let Some(user) = user {
            self.users.get_or_insert_with(Distinct::default).insert(user);
        }
        if let Some(session) = session {
            self.sessions.get_or_insert_with(Distinct::default).insert(session);
        }
    }

    /// A summary from its stored columns (`duration_sum` as text: it is `numeric`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_stored(
        events: i64,
        durations: i64,
        duration_sum: &str,
        duration_min: Option<i64>,
        duration_max: Option<i64>,
        users: Option<&[u8]>,
        sessions: Option<&[u8]>,
        duration_sketch: Option<&[u8]>,
    ) -> Result<Self, SketchError> {
        Ok(Self {
            events,
            durations,
            duration_sum: duration_sum
                .parse()
                .map_err(|error| SketchError::new(format!("duration_sum {duration_sum:?}: {error}")))?,
            duration_min,
            duration_max,
            users: users.map(Distinct::decode).transpose()?,
            sessions: sessions.map(Distinct::decode).transpose()?,
            sketch: duration_sketch.map(Durations::decode).transpose()?,
        })
    }

    /// Adds another summary's events, as if they had been recorded here.
    pub fn merge(&mut self, other: Summary) {
        self.events += other.events;
        self.durations += other.durations;
        self.duration_sum += other.duration_sum;
        self.duration_min = [self.duration_min, other.duration_min].into_iter().flatten().min();
        self.duration_max = [self.duration_max, other.duration_max].into_iter().flatten().max();
        fn union<T>(into: &mut Option<T>, other: Option<T>, merge: impl FnOnce(&mut T, &T)) {
            match (into.as_mut(), other) {
                (Some(mine), Some(theirs)) => merge(mine, &theirs),
                (None, theirs) => *into = theirs,
                (Some(_), None) => {}
            }
        }
        union(&mut self.users, other.users, Distinct::merge);
        union(&mut self.sessions, other.sessions, Distinct::merge);
        union(&mut self.sketch, other.sketch, Durations::merge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_merge_as_if_recorded_together() {
        let (mut left, mut right, mut both) = (Summary::default(), Summary::default(), Summary::default());
        for (i, (duration, user)) in [
            (Some(5), Some("a")),
            (None, Some("b")),
            (Some(50), None),
            (Some(1), Some("a")),
        ]
        .into_iter()
        .enumerate()
        {
            let half = if i % 2 == 0 { &mut left } else { &mut right };
            half.record(duration, user, None);
            both.record(duration, user, None);
        }
        left.merge(right);
        assert_eq!(
            (left.events, left.durations, left.duration_sum),
            (both.events, both.durations, both.duration_sum)
        );
        assert_eq!((left.duration_min, left.duration_max), (Some(1), Some(50)));
        assert_eq!(left.users.as_mut().map(Distinct::count), Some(2));
        assert!(left.sessions.is_none());
        assert_eq!(left.sketch.as_ref().map(Durations::count), Some(3));
    }
}
