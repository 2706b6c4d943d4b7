//! Resuming a stream after `Last-Event-ID` (SSE's header, or `last_event_id=` on either
//! transport): what the client missed is read back from the stored-events topic itself, so
//! any replica resumes any client and nothing is held in memory for clients that may return.
//!
//! How, without gap or repeat:
//! 1. the client is registered with the hub first: from then on every live item reaches its
//!    queue;
//! 2. the end of the project's partition (`high`) is read: the replay covers offsets below it,
//!    the live queue delivers those from it on (items below `high` that the relay hands over
//!    late are skipped by offset);
//! 3. the last event's `received_at` is read from PostgreSQL (the project's own events only);
//!    its announcement was produced after it was stored, hence after that time: the replay
//!    starts at the first offset of [`CLOCK_SKEW`] earlier (covering clocks of api and worker
//!    hosts that disagree);
//! 4. the partition is read from there to `high`; the events (and asked-for metric points)
//!    after the last event seen are the replay (filtered like the live stream).
//!
//! A resume that cannot be exact says so with a `reset` notice instead of guessing: the event
//! is unknown to the project, older than `PULSE_STREAM_RESUME_SECS`, not found in the topic (its
//! announcement was lost with a killed worker), or more than `PULSE_STREAM_CLIENT_BUFFER`
//! events were missed. The client then reads back with `GET /v1/events`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pulse_shared::config::KafkaConfig;
use pulse_shared::kafka::{admin, client};
use pulse_shared::schema::{event_ids, events};
use pulse_shared::stream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use super::filter::Filter;
use super::item::{Item, Kind};
use super::relay::{items_of, kind_of};
use crate::management::ManagementState;

/// How far before the last event's `received_at` the replay starts.
pub const CLOCK_SKEW: Duration = Duration::from_secs(10);
/// Replays running at once per replica; others wait their turn.
const CONCURRENT_REPLAYS: usize = 8;
/// Longest a replay may read the topic.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of a resume.
#[derive(Debug)]
pub enum Resumed {
    /// Send `items`, then the live items from offset `live_from` on.
    Replayed { items: Vec<Arc<Item>>, live_from: i64 },
    /// Cannot resume exactly: tell the client why, then send everything live.
    Reset { reason: String, live_from: i64 },
}

/// Resumes streams; one per replica.
pub struct Resumer {
    kafka: KafkaConfig,
    topic: String,
    partitions: OnceCell<i32>,
    window: Duration,
    most: usize,
    permits: Semaphore,
}

impl Resumer {
    pub fn new(kafka: KafkaConfig, topic: String, window: Duration, most: usize) -> Self {
        Self {
            kafka,
            topic,
            partitions: OnceCell::new(),
            window,
            most,
            permits: Semaphore::new(CONCURRENT_REPLAYS),
        }
    }

    /// What `project`'s client missed after event `after`, with its filter. Call after the
    /// client is registered with the hub.
    pub async fn resume(&self, management: &ManagementState, project: Uuid, after: Uuid, filter: &Filter) -> Resumed {
        let partitions = match self
            .partitions
            .get_or_try_init(|| admin::partition_count(&self.kafka, &self.topic))
            .await
        {
            Ok(partitions) => *partitions,
            Err(error) => return reset(format!("the stored-events topic cannot be read ({error})"), i64::MIN),
        };
        let partition = stream::partition_for(project, partitions);
        let Ok(_permit) = self.permits.acquire().await else {
            return reset("the replica is shutting down".into(), i64::MIN);
        };
        let received_at = match received_at(management, project, after).await {
            Ok(Some(at)) => at,
            Ok(None) => return reset(format!("event {after} is not a stored event of this project"), i64::MIN),
            Err(error) => return reset(format!("the database cannot be read ({error})"), i64::MIN),
        };
        let age = (Utc::now() - received_at).to_std().unwrap_or_default();
        if age > self.window {
            return reset(
                format!(
                    "event {after} is older than the resume window (PULSE_STREAM_RESUME_SECS={})",
                    self.window.as_secs()
                ),
                i64::MIN,
            );
        }
        let read = Replay {
            config: client::reader(&self.kafka),
            topic: self.topic.clone(),
            partition,
            project: project.to_string(),
            from: received_at - chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default(),
            after,
            filter: filter.clone(),
            most: self.most,
        };
        match tokio::task::spawn_blocking(move || read.run()).await {
            Ok(Ok(resumed)) => resumed,
            Ok(Err(error)) => reset(format!("the stored-events topic cannot be read ({error})"), i64::MIN),
            Err(error) => reset(format!("replay failed ({error})"), i64::MIN),
        }
    }
}

fn reset(reason: String, live_from: i64) -> Resumed {
    Resumed::Reset { reason, live_from }
}

async fn received_at(
    management: &ManagementState,
    project: Uuid,
    id: Uuid,
) -> Result<Option<DateTime<Utc>>, crate::error::ApiError> {
    let mut conn = management.conn().await?;
    let found = event_ids::table
        .inner_join(
            events::table.on(events::id
                .eq(event_ids::id)
                .and(events::project_id.eq(event_ids::project_id))
                .and(events::timestamp.eq(event_ids::timestamp))),
        )
        .filter(event_ids::id.eq(id))
        .filter(event_ids::project_id.eq(project))
        .select(events::received_at)
        .first::<DateTime<Utc>>(&mut conn)
        .await
        .optional()?;
    Ok(found)
}

/// One replay, run on a blocking thread (librdkafka's metadata calls block).
struct Replay {
    config: rdkafka::ClientConfig,
    topic: String,
    partition: i32,
    project: String,
    from: DateTime<Utc>,
    after: Uuid,
    filter: Filter,
    most: usize,
}

impl Replay {
    fn run(self) -> Result<Resumed, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer = self.config.create()?;
        let (_, high) = consumer.fetch_watermarks(&self.topic, self.partition, REPLAY_TIMEOUT)?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition_offset(
            &self.topic,
            self.partition,
            Offset::Offset(self.from.timestamp_millis()),
        )?;
        let found = consumer.offsets_for_times(wanted, REPLAY_TIMEOUT)?;
        let start = match found
            .find_partition(&self.topic, self.partition)
            .map(|entry| entry.offset())
        {
            Some(Offset::Offset(offset)) => offset,
            _ => high,
        };
        if start >= high {
            return Ok(reset(
                format!("event {} was not announced on the stored-events topic", self.after),
                high,
            ));
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, self.partition, Offset::Offset(start))?;
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + REPLAY_TIMEOUT;
        let mut seen = false;
        let mut items = Vec::new();
        let mut next = start;
        while next < high {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(reset("the replay took too long".into(), high));
            }
            let Some(received) = consumer.poll(left.min(Duration::from_millis(200))) else {
                continue;
            };
            let message = received?;
            next = message.offset() + 1;
            if message.key() != Some(self.project.as_bytes()) {
                continue;
            }
            for item in items_of(
                message.offset(),
                kind_of(&message),
                message.payload().unwrap_or_default(),
            ) {
                if !seen {
                    seen = matches!(item.kind, Kind::Event { .. }) && item.id == self.after;
                    continue;
                }
                if self.filter.matches(&item) {
                    if items.len() == self.most {
                        return Ok(reset(format!("more than {} messages were missed", self.most), high));
                    }
                    items.push(item);
                }
            }
        }
        if !seen {
            return Ok(reset(
                format!("event {} was not found on the stored-events topic", self.after),
                high,
            ));
        }
        Ok(Resumed::Replayed { items, live_from: high })
    }
}
