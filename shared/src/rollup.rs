//! The mergeable summary a rollup row keeps of its events, shared by the worker (which builds
//! one per bucket from a batch's new events) and the api (which merges rows into the buckets a
//! query asks for).
//!
//! - [`Distinct`]: a HyperLogLog++ sketch (`hyperloglogplus`) of user or session ids, precision
//!   [`DISTINCT_PRECISION`] (standard error 1.04/√2¹⁴ ≈ 0.8 %; exact-ish in its sparse form for
//!   small sets). Sketches merge without loss, so a merged count is what one sketch over all
//!   the ids would say.
//! - [`Durations`]: a DDSketch (`sketches-ddsketch`) of `duration_ms`, relative accuracy
//!   [`QUANTILE_ACCURACY`]: every quantile it answers is within 0.5 % of the value at that rank.
//!   Merging is exact (bins add up).
//!
//! Ids are hashed with SipHash-1-3 under fixed keys ([`StableHash`]), not std's
//! `DefaultHasher`, whose algorithm may change between Rust releases: sketches written by one
//! build must merge with those of the next. Stored form: postcard (`bytea`), versioned by a
//! leading byte.

use std::hash::BuildHasher;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use sketches_ddsketch::{Config, DDSketch};

/// HyperLogLog++ precision of distinct counts.
pub const DISTINCT_PRECISION: u8 = 14;
/// Relative accuracy of duration quantiles.
pub const QUANTILE_ACCURACY: f64 = 0.005;
/// Most bins a duration sketch keeps (1 ms to many hours at 0.5 % fit well inside).
const QUANTILE_MAX_BINS: u32 = 4096;
/// First byte of every stored sketch: the format.
const FORMAT: u8 = 1;

/// Why stored sketch bytes could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable rollup sketch: {0}")]
pub struct SketchError(String);

/// The fixed hash of ids in [`Distinct`] sketches.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StableHash;

impl BuildHasher for StableHash {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(0x7075_6c73_6520_6869, 0x6c6c_2073_6b65_7463)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![FORMAT];
    // postcard cannot fail on these in-memory types; an empty payload would decode as an error.
    bytes.extend(postcard::to_allocvec(value).unwrap_or_default());
    bytes
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SketchError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|error| SketchError(error.to_string())),
        Some((format, _)) => Err(SketchError(format!("unknown format {format}"))),
        None => Err(SketchError("empty".into())),
    }
}

/// Distinct ids (users or sessions).
#[derive(Debug)]
pub struct Distinct(HyperLogLogPlus<str, StableHash>);

impl Default for Distinct {
    fn default() -> Self {
        Self(HyperLogLogPlus::new(DISTINCT_PRECISION, StableHash).expect("a valid precision"))
    }
}

impl Distinct {
    pub fn insert(&mut self, id: &str) {
        self.0.insert(id);
    }

    pub fn merge(&mut self, other: &Distinct) {
        // Same precision by construction.
        let _ = self.0.merge(&other.0);
    }

    /// The estimated number of distinct ids.
    pub fn count(&mut self) -> u64 {
        self.0.count().round() as u64
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&self.0)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SketchError> {
        decode(bytes).map(Self)
    }
}

/// Durations in milliseconds.
#[derive(Clone)]
pub struct Durations(DDSketch);

impl std::fmt::Debug for Durations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durations").field("count", &self.0.count()).finish()
    }
}

impl Default for Durations {
    fn default() -> Self {
        Self(DDSketch::new(Config::new(QUANTILE_ACCURACY, QUANTILE_MAX_BINS, 1e-9)))
    }
}

impl Durations {
    pub fn add(&mut self, ms: i64) {
        self.0.add(ms as f64);
    }

    pub fn merge(&mut self, other: &Durations) {
        // Same configuration by construction.
        let _ = self.0.merge(&other.0);
    }

    pub fn count(&self) -> usize {
        self.0.count()
    }

    /// The duration at quantile `q` (0 to 1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&self.0)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SketchError> {
        decode(bytes).map(Self)
    }
}

/// What one rollup row (or a merge of rows) sums up: the count; the count, sum, min and max
/// of the durations; sketches of distinct users and sessions and of the durations (`None`
/// while no event had one). Events without a user, session or duration are left out of those,
/// as SQL's aggregates leave out NULL.
#[derive(Debug, Default)]
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

    #[test]
    fn distinct_counts_merge_and_survive_storage() {
        let (mut left, mut right) = (Distinct::default(), Distinct::default());
        for i in 0..30_000 {
            left.insert(&format!("user-{i}"));
        }
        for i in 20_000..50_000 {
            right.insert(&format!("user-{i}"));
        }
        let mut stored = Distinct::decode(&left.encode()).expect("decodes");
        stored.merge(&Distinct::decode(&right.encode()).expect("decodes"));
        let estimate = stored.count() as f64;
        assert!((estimate - 50_000.0).abs() / 50_000.0 < 0.02, "{estimate}");
        let mut small = Distinct::default();
        for id in ["a", "b", "a", "c"] {
            small.insert(id);
        }
        assert_eq!(small.count(), 3);
    }

    #[test]
    fn duration_quantiles_merge_within_their_accuracy() {
        let (mut left, mut right) = (Durations::default(), Durations::default());
        for ms in 0..5_000 {
            left.add(ms);
            right.add(ms + 5_000);
        }
        let mut stored = Durations::decode(&left.encode()).expect("decodes");
        stored.merge(&Durations::decode(&right.encode()).expect("decodes"));
        assert_eq!(stored.count(), 10_000);
        let p90 = stored.quantile(0.9).expect("p90");
        assert!((p90 - 8_999.0).abs() / 8_999.0 <= QUANTILE_ACCURACY * 1.01, "{p90}");
        assert_eq!(Durations::default().quantile(0.5), None);
        assert!(Durations::decode(&[9, 1, 2]).is_err());
        assert!(Distinct::decode(&[]).is_err());
    }
}
