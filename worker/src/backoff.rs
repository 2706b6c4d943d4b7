//! Exponential back-off for retries that must never give up on their own: 100 ms, doubling,
//! capped at a maximum (`PULSE_WORKER_RETRY_MAX_MS` for database writes). Only shutdown ends a
//! retry loop, and [`sleep_unless_stopped`] is where it notices.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The first delay of every back-off.
pub const INITIAL: Duration = Duration::from_millis(100);

/// Delays of one retry loop: [`INITIAL`], doubling each time, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            next: INITIAL.min(max),
            max,
            attempts: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the following one up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.attempts += 1;
        delay
    }

    /// How many delays were handed out, i.e. how many attempts failed so far.
    pub fn failures(&self) -> u32 {
        self.attempts
    }
}

/// Sleeps for `delay`; returns `false` at once if `stop` is (or becomes) cancelled meanwhile.
pub async fn sleep_unless_stopped(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100ms_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(1_000));
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
        assert_eq!(backoff.failures(), 7);
    }

    #[test]
    fn a_cap_below_the_first_delay_wins() {
        let mut backoff = Backoff::new(Duration::from_millis(30));
        assert_eq!(backoff.next_delay(), Duration::from_millis(30));
        assert_eq!(backoff.next_delay(), Duration::from_millis(30));
    }

    #[tokio::test]
    async fn a_stop_cuts_the_sleep_short() {
        let stop = CancellationToken::new();
        assert!(sleep_unless_stopped(Duration::from_millis(1), &stop).await);
        stop.cancel();
        let started = std::time::Instant::now();
        assert!(!sleep_unless_stopped(Duration::from_secs(60), &stop).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
