//! Expanding the outbox: messages become deliveries, one per subscribed endpoint, in one
//! transaction that also deletes the messages (claimed with `FOR UPDATE SKIP LOCKED`, so any
//! number of notify workers share the outbox and each message is expanded once).
//!
//! `event.created` messages of one round are merged per endpoint: an endpoint gets the events
//! that pass its filter (`event_types`, `sources`), in outbox order, in deliveries of at most
//! `PULSE_WEBHOOK_BATCH_MAX_EVENTS`. Rounds run every `PULSE_WEBHOOK_BATCH_DELAY_MS`, so events
//! of one window travel together instead of one request per event. Other messages give one
//! delivery per endpoint subscribed to their type, carrying the message's payload, or, when
//! the message names its endpoints (an alert rule's channels), one per named endpoint. Disabled
//! endpoints and those of deleted projects (waiting for the purge) get nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::{projects, webhook_deliveries, webhooks};
use pulse_shared::webhook::{message_id, EVENT_CREATED};
use uuid::Uuid;

/// Claims and deletes the oldest messages. Parameter: how many.
const CLAIM_MESSAGES: &str = r#"
DELETE FROM webhook_messages
WHERE id IN (
    SELECT id FROM webhook_messages ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING id, project_id, type AS message_type, event_ids, event_types, sources, payload, created_at, webhook_ids
"#;

#[derive(QueryableByName, Debug)]
struct Message {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    project_id: Uuid,
    #[diesel(sql_type = Text)]
    message_type: String,
    #[diesel(sql_type = Nullable<Array<SqlUuid>>)]
    event_ids: Option<Vec<Uuid>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    event_types: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Nullable<Text>>>)]
    sources: Option<Vec<Option<String>>>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    payload: Option<serde_json::Value>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    /// For named endpoints only (an alert rule's channels), whatever they subscribe to.
    #[diesel(sql_type = Nullable<Array<SqlUuid>>)]
    webhook_ids: Option<Vec<Uuid>>,
}

impl Message {
    /// Whether `subscriber` gets this message: one of the named endpoints, or (no names) an
    /// endpoint of the project subscribed to its type.
    fn reaches(&self, subscriber: &Subscriber) -> bool {
        subscriber.project_id == self.project_id
            && match &self.webhook_ids {
                Some(named) => named.contains(&subscriber.id),
                None => subscriber.takes(&self.message_type),
            }
    }
}

/// What fan-out needs of an endpoint.
#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = webhooks)]
struct Subscriber {
    id: Uuid,
    project_id: Uuid,
    event_types: Vec<String>,
    filter_event_types: Option<Vec<String>>,
    filter_sources: Option<Vec<String>>,
}

impl Subscriber {
    fn takes(&self, message_type: &str) -> bool {
        self.event_types.iter().any(|taken| taken == message_type)
    }

    fn passes(&self, event_type: &str, source: Option<&str>) -> bool {
        let type_ok = self
            .filter_event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|wanted| wanted == event_type));
        let source_ok = self
            .filter_sources
            .as_ref()
            .is_none_or(|sources| source.is_some_and(|source| sources.iter().any(|wanted| wanted == source)));
        type_ok && source_ok
    }
}

#[derive(Insertable, Debug)]
#[diesel(table_name = webhook_deliveries)]
struct NewDelivery {
    id: Uuid,
    webhook_id: Uuid,
    project_id: Uuid,
    message_id: String,
    message_type: String,
    event_ids: Option<Vec<Uuid>>,
    payload: Option<serde_json::Value>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl NewDelivery {
    fn new(
        subscriber: &Subscriber,
        message_type: &str,
        event_ids: Option<Vec<Uuid>>,
        payload: Option<serde_json::Value>,
        created_at: DateTime<Utc>,
    ) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            webhook_id: subscriber.id,
            project_id: subscriber.project_id,
            message_id: message_id(id),
            message_type: message_type.to_owned(),
            event_ids,
            payload,
            next_attempt_at: Some(Utc::now()),
            created_at,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub messages: usize,
    pub deliveries: usize,
}

/// Expands up to `max_messages` messages; returns how many and the deliveries made.
pub async fn round(conn: &mut AsyncPgConnection, max_messages: i64, batch_max_events: usize) -> QueryResult<Round> {
    conn.transaction(|conn| {
        async move {
            let messages: Vec<Message> = diesel::sql_query(CLAIM_MESSAGES)
                .bind::<Int8, _>(max_messages)
                .load(conn)
                .await?;
            if messages.is_empty() {
                return Ok(Round::default());
            }
            let mut projects: Vec<Uuid> = messages.iter().map(|message| message.project_id).collect();
            projects.sort_unstable();
            projects.dedup();
            let subscribers: Vec<Subscriber> = webhooks::table
                .inner_join(projects::table)
                .filter(webhooks::project_id.eq_any(&projects))
                .filter(webhooks::enabled.eq(true))
                .filter(projects::deleted_at.is_null())
                .select(Subscriber::as_select())
                .load(conn)
                .await?;
            let deliveries = expand(&messages, &subscribers, batch_max_events.max(1));
            for chunk in deliveries.chunks(1_000) {
                diesel::insert_into(webhook_deliveries::table)
                    .values(chunk)
                    .execute(conn)
                    .await?;
            }
            Ok(Round {
                messages: messages.len(),
                deliveries: deliveries.len(),
            })
        }
        .scope_boxed()
    })
    .await
}

/// The deliveries of `messages` for `subscribers` (pure, so it is tested without a database).
fn expand(messages: &[Message], subscribers: &[Subscriber], batch_max_events: usize) -> Vec<NewDelivery> {
    let mut deliveries = Vec::new();
    // Per endpoint: the events it takes, and the creation time of the first message with one.
    let mut events: HashMap<Uuid, (Vec<Uuid>, DateTime<Utc>)> = HashMap::new();
    for message in messages {
        let takers = subscribers.iter().filter(|subscriber| message.reaches(subscriber));
        if message.message_type != EVENT_CREATED {
            for subscriber in takers {
                deliveries.push(NewDelivery::new(
                    subscriber,
                    &message.message_type,
                    None,
                    Some(message.payload.clone().unwrap_or(serde_json::Value::Null)),
                    message.created_at,
                ));
            }
            continue;
        }
        let ids = message.event_ids.as_deref().unwrap_or_default();
        let types = message.event_types.as_deref().unwrap_or_default();
        let sources = message.sources.as_deref().unwrap_or_default();
        for subscriber in takers {
            let (taken, _) = events
                .entry(subscriber.id)
                .or_insert_with(|| (Vec::new(), message.created_at));
            for (index, id) in ids.iter().enumerate() {
                let event_type = types.get(index).map(String::as_str).unwrap_or_default();
                let source = sources.get(index).and_then(Option::as_deref);
                if subscriber.passes(event_type, source) {
                    taken.push(*id);
                }
            }
        }
    }
    for subscriber in subscribers {
        let Some((taken, created_at)) = events.remove(&subscriber.id) else {
            continue;
        };
        for chunk in taken.chunks(batch_max_events) {
            deliveries.push(NewDelivery::new(
                subscriber,
                EVENT_CREATED,
                Some(chunk.to_vec()),
                None,
                created_at,
            ));
        }
    }
    deliveries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(
        project: Uuid,
        types: &[&str],
        filter_types: Option<&[&str]>,
        sources: Option<&[&str]>,
    ) -> Subscriber {
        let strings = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
        Subscriber {
            id: Uuid::now_v7(),
            project_id: project,
            event_types: strings(types),
            filter_event_types: filter_types.map(strings),
            filter_sources: sources.map(strings),
        }
    }

    fn events_message(project: Uuid, events: &[(Uuid, &str, Option<&str>)]) -> Message {
        Message {
            id: Uuid::now_v7(),
            project_id: project,
            message_type: EVENT_CREATED.into(),
            event_ids: Some(events.iter().map(|event| event.0).collect()),
            event_types: Some(events.iter().map(|event| event.1.to_owned()).collect()),
            sources: Some(events.iter().map(|event| event.2.map(str::to_owned)).collect()),
            payload: None,
            created_at: Utc::now(),
            webhook_ids: None,
        }
    }

    #[test]
    fn events_are_merged_per_endpoint_filtered_and_chunked() {
        let project = Uuid::now_v7();
        let other_project = Uuid::now_v7();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let messages = vec![
            events_message(project, &[(ids[0], "signup", Some("web")), (ids[1], "purchase", None)]),
            events_message(
                project,
                &[(ids[2], "signup", Some("ios")), (ids[3], "signup", Some("web"))],
            ),
            events_message(other_project, &[(ids[4], "signup", Some("web"))]),
        ];
        let all = subscriber(project, &[EVENT_CREATED], None, None);
        let signups_from_web = subscriber(project, &[EVENT_CREATED], Some(&["signup"]), Some(&["web"]));
        let alerts_only = subscriber(project, &["alert.fired"], None, None);
        let deliveries = expand(&messages, &[all, signups_from_web, alerts_only], 3);
        let of = |index: usize| {
            deliveries
                .iter()
                .filter(|d| d.webhook_id == deliveries[index].webhook_id)
                .count()
        };
        assert_eq!(deliveries.len(), 3, "all: 4 events in chunks of 3 → 2; filtered: 1");
        assert_eq!(deliveries[0].event_ids.as_deref(), Some(&ids[..3]));
        assert_eq!(deliveries[1].event_ids.as_deref(), Some(&ids[3..4]));
        assert_eq!(deliveries[2].event_ids.as_deref(), Some(&[ids[0], ids[3]][..]));
        assert_eq!(of(0), 2);
        assert!(deliveries.iter().all(|d| d.message_id == message_id(d.id)));
    }

    #[test]
    fn other_messages_go_to_each_subscriber_of_their_type_with_their_payload() {
        let project = Uuid::now_v7();
        let message = Message {
            id: Uuid::now_v7(),
            project_id: project,
            message_type: "webhook.disabled".into(),
            event_ids: None,
            event_types: None,
            sources: None,
            payload: Some(serde_json::json!({"webhook_id": "x"})),
            created_at: Utc::now(),
            webhook_ids: None,
        };
        let taker = subscriber(project, &["webhook.disabled", EVENT_CREATED], None, None);
        let deliveries = expand(
            &[message],
            &[taker, subscriber(project, &[EVENT_CREATED], None, None)],
            100,
        );
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].payload, Some(serde_json::json!({"webhook_id": "x"})));
        assert_eq!(deliveries[0].event_ids, None);
    }

    #[test]
    fn a_message_naming_endpoints_goes_to_those_alone_whatever_they_subscribe_to() {
        let project = Uuid::now_v7();
        let named = subscriber(project, &[EVENT_CREATED], None, None);
        let subscribed_but_not_named = subscriber(project, &["alert.fired"], None, None);
        let message = Message {
            id: Uuid::now_v7(),
            project_id: project,
            message_type: "alert.fired".into(),
            event_ids: None,
            event_types: None,
            sources: None,
            payload: Some(serde_json::json!({"alert_id": "a"})),
            created_at: Utc::now(),
            webhook_ids: Some(vec![named.id]),
        };
        let named_id = named.id;
        let deliveries = expand(&[message], &[named, subscribed_but_not_named], 100);
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].webhook_id, named_id);
    }
}
