//! Exponential back-off, the one retry policy of every binary: 100 ms, doubling, capped at a
//! maximum (`PULSE_WORKER_RETRY_MAX_MS` for the worker's database writes, 5 s for start-up
//! steps). [`retry_startup`] runs a start-up step (migrations, topic creation) until it
//! succeeds, shutdown is requested, or its optional deadline passes; the worker's write loops
//! use [`Backoff`] directly. Shutdown is noticed in [`sleep_unless_stopped`].

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
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

/// How a start-up step is retried.
#[derive(Debug, Clone, Copy)]
pub struct StartupPolicy {
    /// Bound of one attempt (an unreachable broker otherwise hangs an admin call).
    pub attempt_timeout: Duration,
    /// Give up once this much time has passed (`None`: retry until shutdown).
    pub give_up_after: Option<Duration>,
}

/// Longest wait between two start-up attempts.
pub const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);

/// A start-up step that did not succeed before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed {attempts} times in {waited:?}, last: {last_error}")]
pub struct GaveUp {
    pub step: &'static str,
    pub attempts: u32,
    pub waited: Duration,
    pub last_error: String,
}

/// Runs `attempt` until it succeeds (`Ok(Some(value))`), shutdown is requested (`Ok(None)`) or
/// the policy's deadline passes (`Err`). Each failure is logged as "`step` not ready, retrying"
/// with the attempt number, the delay and the error.
pub async fn retry_startup<T, E, F, Fut>(
    step: &'static str,
    stop: &CancellationToken,
    policy: StartupPolicy,
    mut attempt: F,
) -> Result<Option<T>, GaveUp>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::new(STARTUP_RETRY_MAX);
    loop {
        let outcome = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(None),
            outcome = tokio::time::timeout(policy.attempt_timeout, attempt()) => outcome,
        };
        let error = match outcome {
            Ok(Ok(value)) => return Ok(Some(value)),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {:?}", policy.attempt_timeout),
        };
        let delay = backoff.next_delay();
        if policy
            .give_up_after
            .is_some_and(|limit| started.elapsed() + delay >= limit)
        {
            return Err(GaveUp {
                step,
                attempts: backoff.failures(),
                waited: started.elapsed(),
                last_error: error,
            });
        }
        tracing::warn!(step, attempt = backoff.failures(), retry_in_ms = delay.as_millis() as u64, %error, "{step} not ready, retrying");
        if !sleep_unless_stopped(delay, stop).await {
            return Ok(None);
        }
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

#[cfg(test)]
mod startup_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_step_is_retried_until_it_succeeds() {
        let stop = CancellationToken::new();
        let mut calls = 0;
        let policy = StartupPolicy {
            attempt_timeout: Duration::from_secs(1),
            give_up_after: None,
        };
        let result = retry_startup("step", &stop, policy, || {
            calls += 1;
            let outcome = if calls < 4 { Err("not yet") } else { Ok(calls) };
            async move { outcome }
        })
        .await;
        assert_eq!(result.expect("no deadline"), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_gives_up_and_a_stop_ends_quietly() {
        let stop = CancellationToken::new();
        let policy = StartupPolicy {
            attempt_timeout: Duration::from_millis(10),
            give_up_after: Some(Duration::from_secs(2)),
        };
        // Attempts that hang are cut by the attempt timeout, then the deadline ends the loop.
        let gave_up = retry_startup("hangs", &stop, policy, std::future::pending::<Result<(), String>>)
            .await
            .expect_err("deadline");
        assert_eq!(gave_up.step, "hangs");
        assert!(gave_up.last_error.contains("no answer"), "{gave_up}");
        stop.cancel();
        let stopped = retry_startup("stopped", &stop, policy, || async { Err::<(), _>("down") }).await;
        assert!(matches!(stopped, Ok(None)));
    }
}
