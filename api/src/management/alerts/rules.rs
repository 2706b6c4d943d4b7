//! An alert rule as the routes take it, and the rules of its fields. Each check returns the
//! value to store or a 400 `INVALID_FIELD` naming the field (`condition.threshold`,
//! `channels.emails`, …). The limits are constants, which the OpenAPI document states
//! ([`super::schema`]).
//!
//! - `condition` is tagged by `kind` and stored flat (`kind`, `filter_*`, `window_s`, `op`,
//!   `threshold`, `min_events`):
//!   - `count`: matching events in the window `above` or `below` `threshold` (≥ 0);
//!   - `error_ratio`: the share of matching events whose status is `error` above `threshold`
//!     (strictly between 0 and 1), judged once at least `min_events` (default
//!     [`DEFAULT_MIN_EVENTS`]) matched; `op` may only be `above`, and `filter.status` is refused
//!     (the ratio is about the status);
//!   - `absent`: no matching event in the window (a dead man's switch): `filter` and
//!     `window_s` only; `op`, `threshold` and `min_events` are refused by name, and stored as
//!     the columns' neutral values (`above`, 0, 0).
//!
//!   Shape mistakes (an unknown `kind` or field, a missing `window_s`, a wrong type) are
//!   `INVALID_JSON` with serde's message, as on every route.
//! - `window_s` [`MIN_WINDOW_S`] to [`MAX_WINDOW_S`]; `cooldown_s` 0 to [`MAX_COOLDOWN_S`]
//!   (default [`DEFAULT_COOLDOWN_S`]); `renotify_s` 0 (never) or [`MIN_RENOTIFY_S`] to
//!   [`MAX_RENOTIFY_S`]; filter strings 1 to [`MAX_FILTER_CHARS`] characters without NUL,
//!   compared with the events' fields exactly (not trimmed).
//! - `channels`: at most [`MAX_EMAILS`] addresses (trimmed, lower-cased and de-duplicated as
//!   accounts' emails are), at most [`MAX_WEBHOOKS`] webhook endpoints, each of the rule's own
//!   project ([`check_webhooks`]), and `owners` (the owners of the project's organization).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pulse_shared::schema::webhooks;
use pulse_shared::whole::{self, Whole};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::management::fields::normalize_email;

/// Shortest window, in seconds.
pub const MIN_WINDOW_S: i64 = 10;
/// Longest window, in seconds (7 days; the column's CHECK says the same).
pub const MAX_WINDOW_S: i64 = 604_800;
/// Longest cooldown, in seconds.
pub const MAX_COOLDOWN_S: i64 = 604_800;
/// `cooldown_s` when a creation names none (the column default).
pub const DEFAULT_COOLDOWN_S: i64 = 300;
/// Shortest re-notification interval other than 0 (never).
pub const MIN_RENOTIFY_S: i64 = 60;
/// Longest re-notification interval.
pub const MAX_RENOTIFY_S: i64 = 604_800;
/// `min_events` of an `error_ratio` rule that names none.
pub const DEFAULT_MIN_EVENTS: i64 = 10;
/// Largest `min_events` (the column is an `integer`).
pub const MAX_MIN_EVENTS: i64 = i32::MAX as i64;
/// Longest filter string, in characters (event types, sources and statuses are no longer).
pub const MAX_FILTER_CHARS: usize = 200;
/// Most email addresses of a rule.
pub const MAX_EMAILS: usize = 20;
/// Most webhook endpoints of a rule.
pub const MAX_WEBHOOKS: usize = 20;

/// What a rule compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AlertKind)]
pub enum Kind {
    Count,
    ErrorRatio,
    Absent,
}

impl Kind {
    /// The stored form (`alert_rules.kind`, `alert_incidents.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::ErrorRatio => "error_ratio",
            Self::Absent => "absent",
        }
    }
}

/// Which side of the threshold is a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AlertOp)]
pub enum Op {
    Above,
    Below,
}

impl Op {
    /// The stored form (`alert_rules.op`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }

    /// The stored form read back (anything but `below` is `above`, the column default).
    pub fn from_stored(text: &str) -> Self {
        if text == "below" {
            Self::Below
        } else {
            Self::Above
        }
    }
}

/// The events a rule counts: those with this `event_type`, `source` and `status` (a field
/// left out: any). Shown with only the fields set (`{}`: every event of the project).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// What a rule watches, tagged by `kind` (the OpenAPI schema is written out in
/// [`super::schema`], since it says per kind what the derive cannot). The same shape is read
/// and shown, so a rule read can be sent back as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Count {
        #[serde(default)]
        filter: Option<AlertFilter>,
        #[serde(deserialize_with = "whole_number")]
        window_s: i64,
        op: Op,
        #[serde(serialize_with = "plain_number")]
        threshold: f64,
        /// Only for `error_ratio`: refused by name here.
        #[serde(default, deserialize_with = "given", skip_serializing)]
        min_events: bool,
    },
    ErrorRatio {
        #[serde(default)]
        filter: Option<AlertFilter>,
        #[serde(deserialize_with = "whole_number")]
        window_s: i64,
        /// Only `above` (the default).
        #[serde(default)]
        op: Option<Op>,
        #[serde(serialize_with = "plain_number")]
        threshold: f64,
        #[serde(default, deserialize_with = "whole::option")]
        min_events: Option<i64>,
    },
    Absent {
        #[serde(default)]
        filter: Option<AlertFilter>,
        #[serde(deserialize_with = "whole_number")]
        window_s: i64,
        /// An absent rule has none of these: each is refused by name.
        #[serde(default, deserialize_with = "given", skip_serializing)]
        op: bool,
        #[serde(default, deserialize_with = "given", skip_serializing)]
        threshold: bool,
        #[serde(default, deserialize_with = "given", skip_serializing)]
        min_events: bool,
    },
}

/// Where a rule's notices go. Every field is optional in a request (`[]`, `[]`, `false`);
/// `channels` in a PATCH replaces all three.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"emails": ["ops@example.com"], "webhook_ids": ["0192f0c1-7a3e-7000-8000-00000000e001"], "owners": false}))]
pub struct AlertChannels {
    /// Addresses to mail, at most 20; stored trimmed, lower-cased and de-duplicated.
    pub emails: Vec<String>,
    /// Webhook endpoints of the same project (they receive `alert.fired` and
    /// `alert.resolved`), at most 20.
    pub webhook_ids: Vec<Uuid>,
    /// Also mail the owners of the project's organization (as they are when a notice is
    /// written).
    pub owners: bool,
}

/// A condition as stored, in the flat columns of `alert_rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCondition {
    pub kind: Kind,
    pub filter_event_type: Option<String>,
    pub filter_source: Option<String>,
    pub filter_status: Option<String>,
    pub window_s: i32,
    pub op: Op,
    pub threshold: f64,
    pub min_events: i32,
}

impl StoredCondition {
    /// The condition as the routes show it (and take it back).
    pub fn to_condition(&self) -> Condition {
        let filter = Some(AlertFilter {
            event_type: self.filter_event_type.clone(),
            source: self.filter_source.clone(),
            status: self.filter_status.clone(),
        });
        let window_s = i64::from(self.window_s);
        match self.kind {
            Kind::Count => Condition::Count {
                filter,
                window_s,
                op: self.op,
                threshold: self.threshold,
                min_events: false,
            },
            Kind::ErrorRatio => Condition::ErrorRatio {
                filter,
                window_s,
                op: Some(self.op),
                threshold: self.threshold,
                min_events: Some(i64::from(self.min_events)),
            },
            Kind::Absent => Condition::Absent {
                filter,
                window_s,
                op: false,
                threshold: false,
                min_events: false,
            },
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// A required whole number (`300` or `300.0`), as `pulse_shared::whole` reads optional ones.
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Whole::<i64>::deserialize(deserializer).map(|whole| whole.0)
}

/// A number as JSON writes it plainly: `10` rather than `10.0` when it is whole (the same
/// value; a rule's `threshold` then reads back as it was sent).
pub fn plain_number<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    // Below 2^53 every whole f64 is exactly an i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// [`plain_number`] of an optional number (`null` when absent).
pub fn plain_number_option<S: serde::Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => plain_number(value, serializer),
        None => serializer.serialize_none(),
    }
}

/// Whether the field was sent at all (with any value, `null` included): for fields a kind
/// does not have, which are refused by name rather than as unknown.
fn given<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// [`MIN_WINDOW_S`] to [`MAX_WINDOW_S`].
fn check_window(window_s: i64) -> Result<i32, ApiError> {
    if (MIN_WINDOW_S..=MAX_WINDOW_S).contains(&window_s) {
        Ok(window_s as i32)
    } else {
        Err(invalid(
            "condition.window_s",
            format!("condition.window_s must be between {MIN_WINDOW_S} and {MAX_WINDOW_S} seconds"),
        ))
    }
}

fn check_filter_text(field: &'static str, text: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let count = text.chars().count();
    if count == 0 || count > MAX_FILTER_CHARS || text.contains('\0') {
        return Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_FILTER_CHARS} characters without NUL (leave it out to match any)"),
        ));
    }
    Ok(Some(text))
}

/// The filter's strings checked; `error_ratio` refuses `status`.
fn check_filter(filter: Option<AlertFilter>, kind: Kind) -> Result<AlertFilter, ApiError> {
    let filter = filter.unwrap_or_default();
    if kind == Kind::ErrorRatio && filter.status.is_some() {
        return Err(invalid(
            "condition.filter.status",
            "an error_ratio rule is about the status (the share of matching events with status error): it takes no filter.status",
        ));
    }
    Ok(AlertFilter {
        event_type: check_filter_text("condition.filter.event_type", filter.event_type)?,
        source: check_filter_text("condition.filter.source", filter.source)?,
        status: check_filter_text("condition.filter.status", filter.status)?,
    })
}

fn not_for(field: &'static str, kind: Kind) -> ApiError {
    let article = if kind == Kind::Count { "a" } else { "an" };
    invalid(
        field,
        format!(
            "{article} {} rule has no {}: leave it out",
            kind.as_str(),
            field.trim_start_matches("condition.")
        ),
    )
}

/// The condition to store, or a 400 naming the field at fault.
pub fn check_condition(condition: Condition) -> Result<StoredCondition, ApiError> {
    match condition {
        Condition::Count {
            filter,
            window_s,
            op,
            threshold,
            min_events,
        } => {
            if min_events {
                return Err(not_for("condition.min_events", Kind::Count));
            }
            let filter = check_filter(filter, Kind::Count)?;
            let window_s = check_window(window_s)?;
            if !(threshold.is_finite() && threshold >= 0.0) {
                return Err(invalid(
                    "condition.threshold",
                    "condition.threshold of a count rule must be a number of at least 0",
                ));
            }
            Ok(stored(Kind::Count, filter, window_s, op, threshold, 0))
        }
        Condition::ErrorRatio {
            filter,
            window_s,
            op,
            threshold,
            min_events,
        } => {
            let filter = check_filter(filter, Kind::ErrorRatio)?;
            let window_s = check_window(window_s)?;
            if op == Some(Op::Below) {
                return Err(invalid(
                    "condition.op",
                    "an error_ratio rule fires above its threshold only: op must be above (or left out)",
                ));
            }
            if !(threshold.is_finite() && threshold > 0.0 && threshold < 1.0) {
                return Err(invalid(
                    "condition.threshold",
                    "condition.threshold of an error_ratio rule is a share: strictly between 0 and 1",
                ));
            }
            let min_events = min_events.unwrap_or(DEFAULT_MIN_EVENTS);
            if !(1..=MAX_MIN_EVENTS).contains(&min_events) {
                return Err(invalid(
                    "condition.min_events",
                    format!("condition.min_events must be between 1 and {MAX_MIN_EVENTS}"),
                ));
            }
            Ok(stored(
                Kind::ErrorRatio,
                filter,
                window_s,
                Op::Above,
                threshold,
                min_events as i32,
            ))
        }
        Condition::Absent {
            filter,
            window_s,
            op,
            threshold,
            min_events,
        } => {
            for (sent, field) in [
                (op, "condition.op"),
                (threshold, "condition.threshold"),
                (min_events, "condition.min_events"),
            ] {
                if sent {
                    return Err(not_for(field, Kind::Absent));
                }
            }
            let filter = check_filter(filter, Kind::Absent)?;
            let window_s = check_window(window_s)?;
            Ok(stored(Kind::Absent, filter, window_s, Op::Above, 0.0, 0))
        }
    }
}

fn stored(kind: Kind, filter: AlertFilter, window_s: i32, op: Op, threshold: f64, min_events: i32) -> StoredCondition {
    StoredCondition {
        kind,
        filter_event_type: filter.event_type,
        filter_source: filter.source,
        filter_status: filter.status,
        window_s,
        op,
        threshold,
        min_events,
    }
}

/// 0 to [`MAX_COOLDOWN_S`].
pub fn check_cooldown(cooldown_s: i64) -> Result<i32, ApiError> {
    if (0..=MAX_COOLDOWN_S).contains(&cooldown_s) {
        Ok(cooldown_s as i32)
    } else {
        Err(invalid(
            "cooldown_s",
            format!("cooldown_s must be between 0 and {MAX_COOLDOWN_S} seconds"),
        ))
    }
}

/// 0 (never) or [`MIN_RENOTIFY_S`] to [`MAX_RENOTIFY_S`].
pub fn check_renotify(renotify_s: i64) -> Result<i32, ApiError> {
    if renotify_s == 0 || (MIN_RENOTIFY_S..=MAX_RENOTIFY_S).contains(&renotify_s) {
        Ok(renotify_s as i32)
    } else {
        Err(invalid(
            "renotify_s",
            format!("renotify_s must be 0 (never) or between {MIN_RENOTIFY_S} and {MAX_RENOTIFY_S} seconds"),
        ))
    }
}

/// The channels to store: addresses normalized and de-duplicated, endpoint ids de-duplicated
/// (that they belong to the project is [`check_webhooks`]'s job).
pub fn check_channels(channels: AlertChannels) -> Result<AlertChannels, ApiError> {
    if channels.emails.len() > MAX_EMAILS {
        return Err(invalid("channels.emails", format!("at most {MAX_EMAILS} addresses")));
    }
    let mut emails: Vec<String> = Vec::with_capacity(channels.emails.len());
    for raw in &channels.emails {
        let email = normalize_email(raw).map_err(|_| {
            invalid(
                "channels.emails",
                format!("{raw:?} is not an email address (name@example.com)"),
            )
        })?;
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    if channels.webhook_ids.len() > MAX_WEBHOOKS {
        return Err(invalid(
            "channels.webhook_ids",
            format!("at most {MAX_WEBHOOKS} webhook endpoints"),
        ));
    }
    let mut webhook_ids: Vec<Uuid> = Vec::with_capacity(channels.webhook_ids.len());
    for id in channels.webhook_ids {
        if !webhook_ids.contains(&id) {
            webhook_ids.push(id);
        }
    }
    Ok(AlertChannels {
        emails,
        webhook_ids,
        owners: channels.owners,
    })
}

/// 400 `channels.webhook_ids` unless every id is a webhook endpoint of `project` (an
/// endpoint of another project is refused like one that does not exist).
pub async fn check_webhooks(conn: &mut AsyncPgConnection, project: Uuid, ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<Uuid> = webhooks::table
        .filter(webhooks::project_id.eq(project))
        .filter(webhooks::id.eq_any(ids))
        .select(webhooks::id)
        .load(conn)
        .await?;
    match ids.iter().find(|id| !found.contains(id)) {
        None => Ok(()),
        Some(missing) => Err(invalid(
            "channels.webhook_ids",
            format!("{missing} is not a webhook endpoint of this project"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> Result<Condition, serde_json::Error> {
        serde_json::from_value(value)
    }

    fn field_of(result: Result<StoredCondition, ApiError>) -> &'static str {
        match result {
            Err(ApiError::InvalidField { field, .. }) => field,
            other => panic!("expected INVALID_FIELD, got {other:?}"),
        }
    }

    #[test]
    fn each_kind_is_stored_flat_and_shown_as_it_came() {
        let count = json!({"kind": "count", "filter": {"event_type": "checkout", "status": "error"},
                           "window_s": 300, "op": "above", "threshold": 10});
        let stored = check_condition(read(count.clone()).expect("count")).expect("valid");
        assert_eq!(
            (stored.kind, stored.window_s, stored.op, stored.min_events),
            (Kind::Count, 300, Op::Above, 0)
        );
        assert_eq!(serde_json::to_value(stored.to_condition()).expect("json"), count);

        let ratio = read(json!({"kind": "error_ratio", "window_s": 60.0, "threshold": 0.25})).expect("ratio");
        let stored = check_condition(ratio).expect("valid");
        assert_eq!((stored.op, stored.min_events), (Op::Above, 10), "defaults");
        assert_eq!(
            serde_json::to_value(stored.to_condition()).expect("json"),
            json!({"kind": "error_ratio", "filter": {}, "window_s": 60, "op": "above", "threshold": 0.25, "min_events": 10})
        );

        let absent = read(json!({"kind": "absent", "filter": {"source": "cron"}, "window_s": 3600})).expect("absent");
        let stored = check_condition(absent).expect("valid");
        assert_eq!((stored.op, stored.threshold, stored.min_events), (Op::Above, 0.0, 0));
        assert_eq!(
            serde_json::to_value(stored.to_condition()).expect("json"),
            json!({"kind": "absent", "filter": {"source": "cron"}, "window_s": 3600})
        );
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (
                json!({"kind": "count", "window_s": 9, "op": "above", "threshold": 1}),
                "condition.window_s",
            ),
            (
                json!({"kind": "count", "window_s": 604801, "op": "above", "threshold": 1}),
                "condition.window_s",
            ),
            (
                json!({"kind": "count", "window_s": 60, "op": "below", "threshold": -1}),
                "condition.threshold",
            ),
            (
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "min_events": 3}),
                "condition.min_events",
            ),
            (
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "filter": {"source": ""}}),
                "condition.filter.source",
            ),
            (
                json!({"kind": "count", "window_s": 60, "op": "above", "threshold": 1, "filter": {"event_type": "x".repeat(201)}}),
                "condition.filter.event_type",
            ),
            (
                json!({"kind": "error_ratio", "window_s": 60, "threshold": 1}),
                "condition.threshold",
            ),
            (
                json!({"kind": "error_ratio", "window_s": 60, "threshold": 0}),
                "condition.threshold",
            ),
            (
                json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "op": "below"}),
                "condition.op",
            ),
            (
                json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "min_events": 0}),
                "condition.min_events",
            ),
            (
                json!({"kind": "error_ratio", "window_s": 60, "threshold": 0.5, "filter": {"status": "error"}}),
                "condition.filter.status",
            ),
            (json!({"kind": "absent", "window_s": 60, "op": "above"}), "condition.op"),
            (
                json!({"kind": "absent", "window_s": 60, "threshold": null}),
                "condition.threshold",
            ),
            (
                json!({"kind": "absent", "window_s": 60, "min_events": 1}),
                "condition.min_events",
            ),
        ];
        for (body, field) in cases {
            let condition = read(body.clone()).unwrap_or_else(|error| panic!("{body}: {error}"));
            assert_eq!(field_of(check_condition(condition)), field, "{body}");
        }
    }

    #[test]
    fn shape_mistakes_are_serde_errors() {
        for body in [
            json!({"kind": "ratio", "window_s": 60}),
            json!({"window_s": 60}),
            json!({"kind": "absent"}),
            json!({"kind": "count", "window_s": 60, "threshold": 1}),
            json!({"kind": "absent", "window_s": 60, "colour": "red"}),
            json!({"kind": "absent", "window_s": 60, "filter": {"tag": "x"}}),
            json!({"kind": "absent", "window_s": 60.5}),
        ] {
            assert!(read(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn channels_are_normalized_and_bounded() {
        let id = Uuid::now_v7();
        let checked = check_channels(AlertChannels {
            emails: vec![
                " Ops@Example.com ".into(),
                "ops@example.com".into(),
                "b@example.com".into(),
            ],
            webhook_ids: vec![id, id],
            owners: true,
        })
        .expect("valid");
        assert_eq!(checked.emails, vec!["ops@example.com", "b@example.com"]);
        assert_eq!((checked.webhook_ids, checked.owners), (vec![id], true));
        let too_many = AlertChannels {
            emails: (0..=MAX_EMAILS).map(|i| format!("u{i}@example.com")).collect(),
            ..AlertChannels::default()
        };
        assert!(matches!(
            check_channels(too_many),
            Err(ApiError::InvalidField {
                field: "channels.emails",
                ..
            })
        ));
        let bad = AlertChannels {
            emails: vec!["not an address".into()],
            ..AlertChannels::default()
        };
        assert!(matches!(
            check_channels(bad),
            Err(ApiError::InvalidField {
                field: "channels.emails",
                ..
            })
        ));
        let hooks = AlertChannels {
            webhook_ids: (0..=MAX_WEBHOOKS).map(|_| Uuid::now_v7()).collect(),
            ..AlertChannels::default()
        };
        assert!(matches!(
            check_channels(hooks),
            Err(ApiError::InvalidField {
                field: "channels.webhook_ids",
                ..
            })
        ));
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(check_cooldown(0).expect("0"), 0);
        assert!(check_cooldown(-1).is_err() && check_cooldown(MAX_COOLDOWN_S + 1).is_err());
        assert_eq!(check_renotify(0).expect("never"), 0);
        assert_eq!(check_renotify(60).expect("60"), 60);
        assert!(check_renotify(59).is_err() && check_renotify(MAX_RENOTIFY_S + 1).is_err());
    }
}
