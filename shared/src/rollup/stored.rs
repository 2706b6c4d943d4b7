//! A rollup row's summary columns as SQL returns them (`SELECT` or `RETURNING`), and their
//! decoding into a [`Summary`]: one reader for the api's queries, the scheduler's compaction
//! and anything else that reads `event_rollups` or `event_rollups_hourly`.

use diesel::sql_types::{BigInt, Bytea, Nullable, Text};
use diesel::QueryableByName;

use super::{SketchError, Summary};

/// The summary columns of a rollup row; select `duration_sum` as text (`duration_sum::text AS
/// duration_sum`: it is `numeric`), or use [`SUMMARY_COLUMNS`].
#[derive(Debug, QueryableByName)]
pub struct StoredSummary {
    #[diesel(sql_type = BigInt)]
    pub events: i64,
    #[diesel(sql_type = BigInt)]
    pub durations: i64,
    #[diesel(sql_type = Text)]
    pub duration_sum: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub duration_min: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub duration_max: Option<i64>,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub users: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub sessions: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub duration_sketch: Option<Vec<u8>>,
}

/// The select list of [`StoredSummary`].
pub const SUMMARY_COLUMNS: &str = "events, durations, duration_sum::text AS duration_sum, duration_min, \
     duration_max, users, sessions, duration_sketch";

impl StoredSummary {
    /// The summary, its sketches decoded.
    pub fn decode(self) -> Result<Summary, SketchError> {
        Summary::from_stored(
            self.events,
            self.durations,
            &self.duration_sum,
            self.duration_min,
            self.duration_max,
            self.users.as_deref(),
            self.sessions.as_deref(),
            self.duration_sketch.as_deref(),
        )
    }
}
