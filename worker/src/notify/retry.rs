//! When a failed delivery is tried again: `PULSE_WEBHOOK_RETRY_SCHEDULE` (the wait before each
//! retry; its last entry repeats for endpoints allowing more attempts), ±20 % jitter so that
//! many deliveries failed together do not come back together, and never sooner than a 429 or
//! 503's `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// The wait before the next attempt after `attempts_made` attempts (≥ 1).
pub fn delay(schedule: &[Duration], attempts_made: u32, retry_after: Option<Duration>) -> Duration {
    let index = usize::try_from(attempts_made.saturating_sub(1)).unwrap_or(usize::MAX);
    let base = schedule
        .get(index)
        .or_else(|| schedule.last())
        .copied()
        .unwrap_or(Duration::ZERO);
    let jittered = base.mul_f64(rand::rng().random_range(0.8..=1.2));
    jittered.max(retry_after.unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_with_jitter_and_honours_retry_after() {
        let schedule = [Duration::ZERO, Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(delay(&schedule, 1, None), Duration::ZERO);
        for _ in 0..100 {
            let second = delay(&schedule, 2, None);
            assert!(
                second >= Duration::from_secs(4) && second <= Duration::from_secs(6),
                "{second:?}"
            );
            let beyond = delay(&schedule, 9, None);
            assert!(beyond >= Duration::from_secs(240) && beyond <= Duration::from_secs(360));
        }
        assert_eq!(
            delay(&schedule, 1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert!(delay(&schedule, 3, Some(Duration::from_secs(1))) >= Duration::from_secs(240));
    }
}
