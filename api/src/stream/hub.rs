//! The clients of one api replica, by project, and the hand-over of each stored event to them.
//!
//! The relay (`relay.rs`) calls [`StreamHub::dispatch`] with the items of each message it read
//! (one stored batch of one project); the hub queues them to every client of that project
//! whose filter takes them. Nothing here ever waits on a client: a client that still has
//! `PULSE_STREAM_CLIENT_BUFFER` messages or more waiting when the next ones arrive is dropped
//! at once (its `dropped` token fires, its connection sends the notice and ends), so one slow
//! reader costs neither the relay, nor storage, nor the other clients anything. A burst (one
//! stored batch, at most `PULSE_WORKER_BATCH_SIZE` events) is always queued whole: counting it
//! against the bound would drop fast readers too whenever a large batch lands. A client's
//! queue thus never holds more than the bound plus one batch. An item is built (and its JSON
//! encoded) once and shared by every client that receives it.
//!
//! A [`Subscription`] unregisters its client when dropped, whichever way the connection ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::filter::Filter;
use super::item::Item;
use crate::metrics;

/// Why a client's connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its queue passed `PULSE_STREAM_CLIENT_BUFFER` messages.
    TooSlow,
}

/// One connected client, as the hub sees it.
pub struct Subscriber {
    id: u64,
    filter: RwLock<Filter>,
    queue: mpsc::UnboundedSender<Vec<Arc<Item>>>,
    /// Items queued and not yet taken by the connection.
    backlog: AtomicUsize,
    /// Fired by the hub when the client is dropped for being too slow.
    pub dropped: CancellationToken,
}

impl Subscriber {
    /// Replaces the client's filter (a WebSocket `subscribe` message).
    pub fn set_filter(&self, filter: Filter) {
        match self.filter.write() {
            Ok(mut guard) => *guard = filter,
            Err(poisoned) => *poisoned.into_inner() = filter,
        }
    }

    fn wants(&self, item: &Item) -> bool {
        match self.filter.read() {
            Ok(filter) => filter.matches(item),
            Err(poisoned) => poisoned.into_inner().matches(item),
        }
    }
}

/// Every client of this replica.
pub struct StreamHub {
    projects: RwLock<HashMap<Uuid, Vec<Arc<Subscriber>>>>,
    next_id: AtomicU64,
    clients: AtomicUsize,
    buffer: usize,
    max_clients: usize,
    /// Fired at shutdown: every connection says goodbye and ends.
    pub closing: CancellationToken,
}

/// A client's registration: its queue and its handle in the hub. Unregisters on drop.
pub struct Subscription {
    batches: mpsc::UnboundedReceiver<Vec<Arc<Item>>>,
    current: VecDeque<Arc<Item>>,
    pub subscriber: Arc<Subscriber>,
    project: Uuid,
    hub: Arc<StreamHub>,
}

impl Subscription {
    /// The next queued item; `None` once the hub let go of the client. Cancel-safe: nothing
    /// is taken unless it is returned.
    pub async fn next(&mut self) -> Option<Arc<Item>> {
        if self.current.is_empty() {
            self.current = self.batches.recv().await?.into();
        }
        let item = self.current.pop_front()?;
        self.subscriber.backlog.fetch_sub(1, Ordering::AcqRel);
        Some(item)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.project, self.subscriber.id);
    }
}

impl StreamHub {
    pub fn new(buffer: usize, max_clients: usize) -> Self {
        Self {
            projects: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            clients: AtomicUsize::new(0),
            buffer,
            max_clients,
            closing: CancellationToken::new(),
        }
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Whether `project` has a client on this replica (the relay decodes nothing otherwise).
    pub fn watches(&self, project: &Uuid) -> bool {
        self.read().contains_key(project)
    }

    /// Registers a client of `project`; `None` when the replica is full.
    pub fn subscribe(self: &Arc<Self>, project: Uuid, filter: Filter) -> Option<Subscription> {
        if self.clients.fetch_add(1, Ordering::AcqRel) >= self.max_clients {
            self.clients.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let (queue, batches) = mpsc::unbounded_channel();
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            filter: RwLock::new(filter),
            queue,
            backlog: AtomicUsize::new(0),
            dropped: CancellationToken::new(),
        });
        self.write().entry(project).or_default().push(subscriber.clone());
        metrics::STREAM_CLIENTS.inc();
        Some(Subscription {
            batches,
            current: VecDeque::new(),
            subscriber,
            project,
            hub: self.clone(),
        })
    }

    /// Gives `items` (all of `project`, one stored batch) to the project's clients that want
    /// them; drops the clients that are `buffer` messages or more behind.
    pub fn dispatch(&self, project: Uuid, items: &[Arc<Item>]) {
        let mut too_slow: Vec<u64> = Vec::new();
        {
            let projects = self.read();
            let Some(subscribers) = projects.get(&project) else {
                return;
            };
            for subscriber in subscribers {
                if subscriber.dropped.is_cancelled() {
                    continue;
                }
                let wanted: Vec<Arc<Item>> = items.iter().filter(|item| subscriber.wants(item)).cloned().collect();
                if wanted.is_empty() {
                    continue;
                }
                if subscriber.backlog.load(Ordering::Acquire) >= self.buffer {
                    subscriber.dropped.cancel();
                    too_slow.push(subscriber.id);
                    continue;
                }
                let count = wanted.len();
                subscriber.backlog.fetch_add(count, Ordering::AcqRel);
                // A closed queue: the connection is ending and its Subscription unregisters it.
                if subscriber.queue.send(wanted).is_err() {
                    subscriber.backlog.fetch_sub(count, Ordering::AcqRel);
                }
            }
        }
        for id in too_slow {
            metrics::STREAM_DROPPED.with_label_values(&["too_slow"]).inc();
            tracing::info!(project_id = %project, buffer = self.buffer, "Stream client dropped: too slow");
            self.remove(project, id);
        }
    }

    fn remove(&self, project: Uuid, id: u64) {
        let mut projects = self.write();
        if let Some(subscribers) = projects.get_mut(&project) {
            let before = subscribers.len();
            subscribers.retain(|subscriber| subscriber.id != id);
            if subscribers.len() < before {
                self.clients.fetch_sub(1, Ordering::AcqRel);
                metrics::STREAM_CLIENTS.dec();
            }
            if subscribers.is_empty() {
                projects.remove(&project);
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Vec<Arc<Subscriber>>>> {
        self.projects.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Vec<Arc<Subscriber>>>> {
        self.projects.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(offset: i64, event_type: &str) -> Arc<Item> {
        Arc::new(Item::test_event(offset, event_type))
    }

    #[tokio::test]
    async fn a_full_queue_drops_that_client_only() {
        let hub = Arc::new(StreamHub::new(2, 10));
        let project = Uuid::now_v7();
        let mut slow = hub.subscribe(project, Filter::default()).expect("room");
        let mut fast = hub.subscribe(project, Filter::default()).expect("room");
        for offset in 0..2 {
            hub.dispatch(project, &[item(offset, "a")]);
            assert_eq!(fast.next().await.expect("item").offset, offset);
        }
        assert!(!slow.subscriber.dropped.is_cancelled());
        hub.dispatch(project, &[item(2, "a")]);
        assert!(slow.subscriber.dropped.is_cancelled(), "two waiting with a buffer of 2");
        assert_eq!(fast.next().await.expect("item").offset, 2);
        assert_eq!(hub.clients(), 1);
        assert_eq!(slow.next().await.expect("what was queued stays readable").offset, 0);
        drop(slow);
        drop(fast);
        assert_eq!(hub.clients(), 0);
        assert!(!hub.watches(&project));
    }

    #[tokio::test]
    async fn filters_choose_and_other_projects_see_nothing() {
        let hub = Arc::new(StreamHub::new(10, 10));
        let project = Uuid::now_v7();
        let other = hub.subscribe(Uuid::now_v7(), Filter::default()).expect("room");
        let mut only_b = hub
            .subscribe(project, Filter::new(vec!["b".into()], vec![]))
            .expect("room");
        hub.dispatch(project, &[item(0, "a"), item(1, "b")]);
        assert_eq!(only_b.next().await.expect("item").offset, 1);
        assert!(only_b.batches.try_recv().is_err());
        drop(other);
    }

    #[tokio::test]
    async fn a_burst_is_queued_whole_and_only_a_client_still_behind_is_dropped() {
        let hub = Arc::new(StreamHub::new(3, 10));
        let project = Uuid::now_v7();
        let mut client = hub.subscribe(project, Filter::default()).expect("room");
        let burst: Vec<Arc<Item>> = (0..10).map(|offset| item(offset, "a")).collect();
        hub.dispatch(project, &burst);
        assert!(
            !client.subscriber.dropped.is_cancelled(),
            "an empty queue takes a whole batch"
        );
        for _ in 0..8 {
            client.next().await.expect("item");
        }
        hub.dispatch(project, &[item(10, "a")]);
        assert!(!client.subscriber.dropped.is_cancelled(), "2 behind with a buffer of 3");
        hub.dispatch(project, &[item(11, "a")]);
        assert!(client.subscriber.dropped.is_cancelled(), "3 behind with a buffer of 3");
    }

    #[test]
    fn the_replica_refuses_past_its_maximum() {
        let hub = Arc::new(StreamHub::new(1, 1));
        let first = hub.subscribe(Uuid::now_v7(), Filter::default());
        assert!(first.is_some());
        assert!(hub.subscribe(Uuid::now_v7(), Filter::default()).is_none());
        drop(first);
        assert!(hub.subscribe(Uuid::now_v7(), Filter::default()).is_some());
    }
}
