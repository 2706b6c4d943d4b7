//! What a client asked to receive: its filter (`event_type`, `source`, each repeatable; empty
//! means all; `metrics`, the names whose named-metric points it also wants; monitor state
//! changes reach every client of the project, whatever it filters) from the query
//! string or a WebSocket `subscribe` message, and the rest of the
//! stream's query string (`last_event_id`; `project_id` and `token` are read by the access
//! check). Unknown parameters are a 400 naming them, as on every read route.

use pulse_shared::event::{MAX_EVENT_TYPE_CHARS, MAX_NAME_CHARS};
use serde::Deserialize;
use uuid::Uuid;

use super::item::{Item, Kind};
use crate::error::ApiError;
use crate::query::params::query_pairs;

/// Most values of one filter field.
pub const MAX_FILTER_VALUES: usize = 100;

/// Which events (and named-metric points) a client receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    event_types: Vec<String>,
    sources: Vec<String>,
    /// Names of the metrics whose points the client asked for (none: no points).
    metrics: Vec<String>,
}

impl Filter {
    pub fn new(event_types: Vec<String>, sources: Vec<String>) -> Self {
        Self {
            event_types,
            sources,
            metrics: Vec::new(),
        }
    }

    /// The same filter, also taking the points of `metrics`.
    pub fn with_metrics(mut self, metrics: Vec<String>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn matches(&self, item: &Item) -> bool {
        match &item.kind {
            Kind::Event { event_type, source } => {
                (self.event_types.is_empty() || self.event_types.contains(event_type))
                    && (self.sources.is_empty() || source.as_ref().is_some_and(|source| self.sources.contains(source)))
            }
            Kind::Metric { name } => self.metrics.contains(name),
            Kind::Monitor => true,
        }
    }

    pub fn metrics(&self) -> &[String] {
        &self.metrics
    }

    pub fn event_types(&self) -> &[String] {
        &self.event_types
    }

    pub fn sources(&self) -> &[String] {
        &self.sources
    }
}

/// The stream's query string.
#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    pub filter: Filter,
    /// Resume after this event (SSE also takes the `Last-Event-ID` header).
    pub last_event_id: Option<Uuid>,
}

impl StreamQuery {
    pub fn from_request(req: &actix_web::HttpRequest) -> Result<Self, ApiError> {
        let mut event_types = Vec::new();
        let mut sources = Vec::new();
        let mut metrics = Vec::new();
        let mut last_event_id = None;
        for (name, value) in query_pairs(req)? {
            match name.as_str() {
                "event_type" => event_types.push(checked("event_type", value, MAX_EVENT_TYPE_CHARS)?),
                "source" => sources.push(checked("source", value, MAX_NAME_CHARS)?),
                "metrics" => metrics.push(metric_name(value).map_err(|message| ApiError::InvalidParameter {
                    parameter: "metrics",
                    message,
                })?),
                "last_event_id" => {
                    last_event_id = Some(value.parse().map_err(|_| ApiError::InvalidParameter {
                        parameter: "last_event_id",
                        message: format!("last_event_id must be an event id (a UUID), got {value:?}"),
                    })?);
                }
                "project_id" | "token" => {}
                _ => {
                    return Err(ApiError::InvalidParameter {
                        parameter: "query",
                        message: format!(
                        "unknown parameter {name:?}; parameters: project_id, token, event_type, source, last_event_id"
                    ),
                    })
                }
            }
        }
        Ok(Self {
            filter: bounded(event_types, sources, metrics)
                .map_err(|(parameter, message)| ApiError::InvalidParameter { parameter, message })?,
            last_event_id,
        })
    }
}

fn checked(parameter: &'static str, value: String, max_chars: usize) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > max_chars {
        return Err(ApiError::InvalidParameter {
            parameter,
            message: format!("{parameter} must be 1 to {max_chars} characters"),
        });
    }
    Ok(value)
}

fn metric_name(value: String) -> Result<String, String> {
    if pulse_shared::metric::valid_name(&value) {
        Ok(value)
    } else {
        Err(format!("{value:?} is not a metric name"))
    }
}

fn bounded(
    event_types: Vec<String>,
    sources: Vec<String>,
    metrics: Vec<String>,
) -> Result<Filter, (&'static str, String)> {
    for (parameter, values) in [
        ("event_type", &event_types),
        ("source", &sources),
        ("metrics", &metrics),
    ] {
        if values.len() > MAX_FILTER_VALUES {
            return Err((parameter, format!("at most {MAX_FILTER_VALUES} values of {parameter}")));
        }
    }
    Ok(Filter::new(event_types, sources).with_metrics(metrics))
}

/// A message a WebSocket client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Replaces the filter; an absent event list means all, an absent `metrics` none.
    Subscribe {
        #[serde(default)]
        event_types: Vec<String>,
        #[serde(default)]
        sources: Vec<String>,
        #[serde(default)]
        metrics: Vec<String>,
    },
}

impl ClientMessage {
    /// Reads one text frame; the error is the message to send back.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let message: Self = serde_json::from_str(text).map_err(|error| {
            format!(r#"not a client message ({error}); expected {{"type": "subscribe", "event_types": [...], "sources": [...]}}"#)
        })?;
        match message {
            Self::Subscribe {
                event_types,
                sources,
                metrics,
            } => {
                for (field, values, max) in [
                    ("event_types", &event_types, MAX_EVENT_TYPE_CHARS),
                    ("sources", &sources, MAX_NAME_CHARS),
                ] {
                    if values
                        .iter()
                        .any(|value| value.is_empty() || value.chars().count() > max)
                    {
                        return Err(format!("each of {field} must be 1 to {max} characters"));
                    }
                }
                let metrics = metrics.into_iter().map(metric_name).collect::<Result<Vec<_>, _>>()?;
                bounded(event_types, sources, metrics).map_err(|(_, message)| message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_messages_replace_the_filter_and_bad_ones_say_why() {
        let filter = ClientMessage::parse(r#"{"type":"subscribe","event_types":["a"],"sources":["web"]}"#).expect("ok");
        assert_eq!(filter, Filter::new(vec!["a".into()], vec!["web".into()]));
        assert_eq!(ClientMessage::parse(r#"{"type":"subscribe"}"#), Ok(Filter::default()));
        assert!(ClientMessage::parse("{").is_err());
        assert!(ClientMessage::parse(r#"{"type":"nope"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"subscribe","event_types":[""]}"#).is_err());
        let many: Vec<String> = (0..=MAX_FILTER_VALUES).map(|i| format!("t{i}")).collect();
        let text = serde_json::json!({"type": "subscribe", "event_types": many}).to_string();
        assert!(ClientMessage::parse(&text).is_err());
    }

    #[test]
    fn a_source_filter_excludes_events_without_a_source() {
        let mut item = Item::test_event(0, "a");
        let filter = Filter::new(vec![], vec!["web".into()]);
        assert!(!filter.matches(&item));
        item.kind = Kind::Event {
            event_type: "a".into(),
            source: Some("web".into()),
        };
        assert!(filter.matches(&item));
        assert!(Filter::default().matches(&item));
        item.kind = Kind::Metric { name: "cpu".into() };
        assert!(!Filter::default().matches(&item), "points only when asked for");
        assert!(Filter::default().with_metrics(vec!["cpu".into()]).matches(&item));
    }
}
