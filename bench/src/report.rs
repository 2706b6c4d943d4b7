//! The numbers a run reports and how they are computed: latency percentiles from HDR
//! histograms (microseconds), rates over intervals, the storage-time estimate of a marker seen
//! by a poll, and the human summary and `--json` line.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency or delay a histogram records (longer values are clamped to it).
pub const MAX_RECORDED_US: u64 = 600_000_000;

/// A histogram of microseconds, 3 significant figures, up to [`MAX_RECORDED_US`].
pub fn micros_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failure here is a programming error.
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).expect("valid histogram bounds")
}

/// Records `value` in microseconds, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, value: Duration) {
    let micros = u64::try_from(value.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_RECORDED_US);
    histogram.saturating_record(micros);
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// `count` per second over `elapsed`; 0 for an empty interval.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        0.0
    } else {
        count as f64 / seconds
    }
}

/// When a marker was stored, estimated from the poll that first saw it.
///
/// A poll's snapshot is taken when its query starts, so a row it sees was committed before
/// `seen_at`; the previous poll that asked for the same id did not see it, so it was committed
/// after `last_missed_at` (or, never asked before, after its acceptance). The estimate is the
/// midpoint, off by at most half the poll interval. Offsets are from the run's start.
pub fn stored_estimate(accepted_at: Duration, last_missed_at: Option<Duration>, seen_at: Duration) -> Duration {
    let lower = last_missed_at
        .map_or(accepted_at, |missed| missed.max(accepted_at))
        .min(seen_at);
    lower + (seen_at - lower) / 2
}

/// Acceptance-to-storage delay of one marker (zero when storage came first, which a worker
/// that commits before the api's answer reaches the client can do).
pub fn delay(accepted_at: Duration, stored_at: Duration) -> Duration {
    stored_at.saturating_sub(accepted_at)
}

/// What `load` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub url: String,
    pub concurrency: usize,
    pub batch_size: usize,
    pub target_rate_events_per_s: Option<f64>,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub accepted_events: u64,
    pub accepted_events_per_s: f64,
    pub latency: Percentiles,
    /// Failed requests by HTTP status, or `io` for transport errors.
    pub errors: BTreeMap<String, u64>,
    /// Accepted events in each whole second of the run.
    pub accepted_per_second: Vec<u64>,
    pub persisted: Option<PersistedReport>,
}

/// What the wait for storage measured.
#[derive(Debug, Clone, Serialize)]
pub struct PersistedReport {
    /// Ids of the project stored in `event_ids` during the run (count after minus before).
    pub stored_events: u64,
    /// Rows of the project added to `events` during the run (should equal `stored_events`).
    pub events_rows: u64,
    /// All accepted events were found stored before the wait's timeout.
    pub complete: bool,
    /// First acceptance to the first count that saw every accepted event.
    pub end_to_end_s: f64,
    pub end_to_end_events_per_s: f64,
    /// How long after the last request storage finished (upper bound).
    pub drain_after_load_s: f64,
    /// Acceptance-to-storage delay of the marker events.
    pub delay: Percentiles,
    /// 99th percentile of the half-width of the markers' storage windows: how exact `delay` is.
    pub delay_uncertainty_p99_ms: f64,
    /// Markers sent, and how many were never found before the timeout.
    pub markers: u64,
    pub markers_missing: u64,
    pub poll_interval_ms: u64,
}

impl LoadReport {
    pub fn print_human(&self) {
        let endpoint = if self.batch_size == 1 {
            "POST /v1/events"
        } else {
            "POST /v1/events/batch"
        };
        println!(
            "load: {endpoint} at {}, concurrency {}, batch size {}",
            self.url, self.concurrency, self.batch_size
        );
        if let Some(rate) = self.target_rate_events_per_s {
            println!("  target rate        {rate:.0} events/s (latency measured from each request's scheduled time)");
        }
        println!("  duration           {:.2} s", self.duration_s);
        println!("  requests           {} ({:.0}/s)", self.requests, self.requests_per_s);
        println!(
            "  accepted events    {} ({:.0}/s)",
            self.accepted_events, self.accepted_events_per_s
        );
        let l = &self.latency;
        println!(
            "  latency            p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
        if self.errors.is_empty() {
            println!("  errors             none");
        } else {
            let errors: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            println!("  errors             {}", errors.join(", "));
        }
        if let Some(p) = &self.persisted {
            println!(
                "  persisted          {} events ({} rows in events){}",
                p.stored_events,
                p.events_rows,
                if p.complete { "" } else { " (INCOMPLETE: timed out)" }
            );
            println!(
                "  end to end         {:.0} events/s over {:.2} s (first acceptance -> last stored; drain after load {:.2} s)",
                p.end_to_end_events_per_s, p.end_to_end_s, p.drain_after_load_s
            );
            println!(
                "  accept->stored     p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (±{:.1} ms at p99; {} markers, {} missing, poll {} ms)",
                p.delay.p50_ms,
                p.delay.p99_ms,
                p.delay.max_ms,
                p.delay_uncertainty_p99_ms,
                p.markers,
                p.markers_missing,
                p.poll_interval_ms
            );
        }
    }
}

/// What `copy-baseline` measured: rows/s of each way of storing the same rows.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub rows: u64,
    pub mean_row_json_bytes: u64,
    pub phases: Vec<BaselinePhase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselinePhase {
    pub name: String,
    pub description: String,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
}

impl BaselineReport {
    pub fn print_human(&self) {
        println!(
            "copy-baseline: {} rows per phase (~{} bytes of JSON per event)",
            self.rows, self.mean_row_json_bytes
        );
        for phase in &self.phases {
            println!(
                "  {:<22} {:>9.0} rows/s  ({:.2} s)  {}",
                phase.name, phase.rows_per_s, phase.seconds, phase.description
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut histogram = micros_histogram();
        for value in 1..=1000u64 {
            record(&mut histogram, ms(value));
        }
        let p = Percentiles::of(&histogram);
        assert_eq!(p.count, 1000);
        // 3 significant figures: within 0.1 % of the exact rank value.
        assert!((p.p50_ms - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p95_ms - 950.0).abs() <= 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() <= 1.0, "{p:?}");
    }

    #[test]
    fn empty_histogram_reports_zeroes_and_outliers_are_clamped() {
        assert_eq!(Percentiles::of(&micros_histogram()), Percentiles::default());
        let mut histogram = micros_histogram();
        record(&mut histogram, Duration::from_secs(10_000));
        record(&mut histogram, Duration::ZERO);
        assert!(histogram.max() >= MAX_RECORDED_US - MAX_RECORDED_US / 1000);
        assert_eq!(histogram.min(), 1);
    }

    #[test]
    fn rate_handles_an_empty_interval() {
        assert_eq!(rate(500, ms(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn stored_estimate_is_the_midpoint_of_the_window_that_contains_the_commit() {
        // Asked before and missed at 100 ms, seen by the poll at 120 ms: stored ~110 ms.
        assert_eq!(stored_estimate(ms(40), Some(ms(100)), ms(120)), ms(110));
        // Never asked before: the window opens at acceptance.
        assert_eq!(stored_estimate(ms(100), None, ms(120)), ms(110));
        // A miss recorded before acceptance cannot narrow the window below acceptance.
        assert_eq!(stored_estimate(ms(100), Some(ms(90)), ms(120)), ms(110));
        // Seen by a poll that started before the client had its answer: zero-width window.
        assert_eq!(stored_estimate(ms(130), None, ms(120)), ms(120));
    }

    #[test]
    fn delay_never_goes_negative() {
        assert_eq!(delay(ms(100), ms(135)), ms(35));
        assert_eq!(delay(ms(130), ms(120)), Duration::ZERO);
    }
}
