//! The sketches of a rollup row and their stored form.
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

impl SketchError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

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

impl Clone for Distinct {
    /// A merge into an empty sketch: lossless, and `HyperLogLogPlus<str, _>` has no `Clone`
    /// (`str` is unsized).
    fn clone(&self) -> Self {
        let mut copy = Self::default();
        copy.merge(self);
        copy
    }
}

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

/// Named-metric values (any finite `f64`, negative ones too): the same DDSketch, with the same
/// relative accuracy [`QUANTILE_ACCURACY`] and stored form, as [`Durations`]. Values closer to
/// zero than 1e-9 count as zero.
#[derive(Clone)]
pub struct Values(DDSketch);

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").field("count", &self.0.count()).finish()
    }
}

impl Default for Values {
    fn default() -> Self {
        Self(DDSketch::new(Config::new(QUANTILE_ACCURACY, QUANTILE_MAX_BINS, 1e-9)))
    }
}

impl Values {
    pub fn add(&mut self, value: f64) {
        self.0.add(value);
    }

    pub fn merge(&mut self, other: &Values) {
        // Same configuration by construction.
        let _ = self.0.merge(&other.0);
    }

    pub fn count(&self) -> usize {
        self.0.count()
    }

    /// The value at quantile `q` (0 to 1), `None` when empty.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn value_quantiles_cover_negative_numbers_within_their_accuracy() {
        let mut values = Values::default();
        for i in -500..500 {
            values.add(f64::from(i) / 4.0);
        }
        let stored = Values::decode(&values.encode()).expect("decodes");
        assert_eq!(stored.count(), 1000);
        let p10 = stored.quantile(0.1).expect("p10");
        assert!(
            (p10 - -100.0).abs() / 100.0 <= QUANTILE_ACCURACY * 1.01 + 0.0025,
            "{p10}"
        );
        let p90 = stored.quantile(0.9).expect("p90");
        assert!(
            (p90 - 99.75).abs() / 99.75 <= QUANTILE_ACCURACY * 1.01 + 0.0025,
            "{p90}"
        );
    }
}
