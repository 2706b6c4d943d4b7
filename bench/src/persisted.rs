//! Waiting for accepted events to be stored, and timing it, with as little load on the
//! database as possible (it shares the machine with the system under test).
//!
//! * **Acceptance→storage delay, by markers.** Every n-th request carries one event with an id
//!   the tool chose. When its 2xx answer arrives the tool notes the time; a poller asks
//!   `event_ids` (primary-key probes) every `poll` whether pending markers are stored: the
//!   oldest [`OLDEST_PROBES`] every time and [`ROTATING_PROBES`] more in turn. A marker first seen by the poll that started at `t`, and
//!   missed by the poll that started at `t'`, was committed in `(t', t]`; the midpoint is the
//!   estimate (`report::stored_estimate`) and half the window its uncertainty, which is
//!   reported too. This assumes no FIFO order across Kafka partitions and costs a few hundred
//!   index probes per poll, where a difference of cumulative curves would need a `count(*)`
//!   over millions of rows every 10–20 ms. Storage is close to acceptance order, so the oldest
//!   markers are the ones to watch; the rotating probes bound the window of a marker stored
//!   out of order (a partition consumed ahead of the others), and the reported uncertainty
//!   says how wide the windows really were.
//! * **End-to-end rate, by counts.** Once every marker was seen, `count(*)` of the project's
//!   rows in `event_ids` (written in the same transaction as `events`, and far narrower) is
//!   polled until it reaches the count before the run plus every accepted event. The first
//!   poll that sees them all bounds the last storage from above; its start minus the first
//!   acceptance is the end-to-end time. `events` is counted once at the end as a check.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::report;

/// Pending markers probed in every poll: the oldest ones, which storage reaches next.
pub const OLDEST_PROBES: usize = 256;
/// More pending markers probed per poll in turn, for those stored out of acceptance order (a
/// Kafka partition consumed ahead of the others).
pub const ROTATING_PROBES: usize = 768;

/// Which of `pending` markers (oldest first) a poll asks for: the [`OLDEST_PROBES`] oldest,
/// and [`ROTATING_PROBES`] of the rest starting at `cursor` (wrapping).
fn probe_set(pending: usize, cursor: usize) -> Vec<bool> {
    let mut asked = vec![false; pending];
    let oldest = pending.min(OLDEST_PROBES);
    asked[..oldest].fill(true);
    let rest = pending - oldest;
    if rest > 0 {
        for step in 0..rest.min(ROTATING_PROBES) {
            asked[oldest + (cursor + step) % rest] = true;
        }
    }
    asked
}

/// One marker event: its id and when (offset from the run's start) its request was accepted.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub id: Uuid,
    pub accepted_at: Duration,
}

struct Pending {
    marker: Marker,
    last_missed: Option<Duration>,
}

/// Opens a connection whose driver runs on its own task.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("pulse-bench: database connection ended: {error}");
        }
    });
    Ok(client)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Ids of the project stored in `event_ids` (the cheap count, polled).
pub async fn count_ids(client: &Client, project_id: Uuid) -> Result<u64> {
    count(
        client,
        "SELECT count(*) FROM event_ids WHERE project_id = $1",
        project_id,
    )
    .await
}

/// Rows of the project in `events` (the check, counted once at the end).
pub async fn count_events(client: &Client, project_id: Uuid) -> Result<u64> {
    count(client, "SELECT count(*) FROM events WHERE project_id = $1", project_id).await
}

async fn count(client: &Client, sql: &str, project_id: Uuid) -> Result<u64> {
    let row = client
        .query_one(sql, &[&project_id])
        .await
        .with_context(|| format!("running {sql}"))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Polls marker ids until every marker sent has been seen, or `timeout` after the senders
/// closed.
pub struct MarkerTracker {
    sender: UnboundedSender<Marker>,
    task: JoinHandle<Result<MarkerResult>>,
}

/// What the tracker found.
pub struct MarkerResult {
    pub delays: Histogram<u64>,
    /// Half-width of each marker's storage window.
    pub uncertainty: Histogram<u64>,
    pub markers: u64,
    pub missing: u64,
}

impl MarkerTracker {
    pub fn start(client: Client, start: Instant, poll: Duration, timeout: Duration) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(track(client, receiver, start, poll, timeout));
        Self { sender, task }
    }

    /// A sender for the load tasks.
    pub fn sender(&self) -> UnboundedSender<Marker> {
        self.sender.clone()
    }

    /// Closes this handle's sender and waits for the remaining markers.
    pub async fn finish(self) -> Result<MarkerResult> {
        drop(self.sender);
        self.task.await.context("the marker poller panicked")?
    }
}

async fn track(
    client: Client,
    mut receiver: UnboundedReceiver<Marker>,
    start: Instant,
    poll: Duration,
    timeout: Duration,
) -> Result<MarkerResult> {
    let mut result = MarkerResult {
        delays: report::micros_histogram(),
        uncertainty: report::micros_histogram(),
        markers: 0,
        missing: 0,
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut give_up_at: Option<Instant> = None;
    let statement = client
        .prepare("SELECT id FROM event_ids WHERE id = ANY($1)")
        .await
        .context("preparing the marker query")?;
    let mut next_poll = Instant::now();
    let mut cursor = 0usize;
    loop {
        tokio::time::sleep_until(next_poll.into()).await;
        next_poll = Instant::now() + poll;
        loop {
            match receiver.try_recv() {
                Ok(marker) => {
                    result.markers += 1;
                    pending.push(Pending {
                        marker,
                        last_missed: None,
                    });
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    give_up_at.get_or_insert_with(|| Instant::now() + timeout);
                    break;
                }
            }
        }
        if pending.is_empty() {
            if give_up_at.is_some() {
                break;
            }
            continue;
        }
        if give_up_at.is_some_and(|at| Instant::now() >= at) {
            result.missing = pending.len() as u64;
            break;
        }
        let asked = probe_set(pending.len(), cursor);
        cursor = cursor.wrapping_add(ROTATING_PROBES);
        let ids: Vec<Uuid> = (0..pending.len())
            .filter(|&i| asked[i])
            .map(|i| pending[i].marker.id)
            .collect();
        let polled_at = start.elapsed();
        let began = Instant::now();
        let rows = client.query(&statement, &[&ids]).await.context("polling markers")?;
        // Never spend more than about half of one database core on polling.
        next_poll = began + poll.max(began.elapsed() * 2);
        let seen: HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
        let mut index = 0;
        pending.retain_mut(|p| {
            let was_asked = asked[index];
            index += 1;
            if !was_asked {
                return true;
            }
            if seen.contains(&p.marker.id) {
                let stored = report::stored_estimate(p.marker.accepted_at, p.last_missed, polled_at);
                report::record(&mut result.delays, report::delay(p.marker.accepted_at, stored));
                report::record(&mut result.uncertainty, polled_at.saturating_sub(stored));
                false
            } else {
                p.last_missed = Some(polled_at);
                true
            }
        });
    }
    Ok(result)
}

/// When the count of stored events first reached the target.
pub struct CountWait {
    pub stored: u64,
    pub complete: bool,
    /// Offset of the start of the first poll that saw the target (or of the last poll).
    pub seen_at: Duration,
}

/// Polls [`count_ids`] until it reaches `target` or `timeout` passes. The interval grows with
/// the query's own duration so the poll never takes more than a third of one database core.
pub async fn wait_for_count(
    client: &Client,
    project_id: Uuid,
    target: u64,
    start: Instant,
    timeout: Duration,
) -> Result<CountWait> {
    let give_up_at = Instant::now() + timeout;
    loop {
        let polled_at = start.elapsed();
        let began = Instant::now();
        let stored = count_ids(client, project_id).await?;
        if stored >= target || Instant::now() >= give_up_at {
            return Ok(CountWait {
                stored,
                complete: stored >= target,
                seen_at: polled_at,
            });
        }
        let took = began.elapsed();
        tokio::time::sleep((took * 2).max(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_cover_the_oldest_and_rotate_through_the_rest() {
        assert_eq!(probe_set(3, 0), vec![true; 3]);
        let count = |set: &[bool]| set.iter().filter(|&&asked| asked).count();
        let set = probe_set(OLDEST_PROBES + 2 * ROTATING_PROBES, 0);
        assert_eq!(count(&set), OLDEST_PROBES + ROTATING_PROBES);
        assert!(set[..OLDEST_PROBES + ROTATING_PROBES].iter().all(|&asked| asked));
        let next = probe_set(OLDEST_PROBES + 2 * ROTATING_PROBES, ROTATING_PROBES);
        assert!(next[OLDEST_PROBES + ROTATING_PROBES..].iter().all(|&asked| asked));
        assert!(next[..OLDEST_PROBES].iter().all(|&asked| asked));
        // The window wraps around the end of the rest.
        let wrapped = probe_set(OLDEST_PROBES + 10, 8);
        assert_eq!(count(&wrapped), OLDEST_PROBES + 10);
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
