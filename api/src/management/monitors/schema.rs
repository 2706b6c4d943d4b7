//! The OpenAPI side of monitors and of the status page settings: [`MonitorFieldRules`] puts the
//! bounds the checks in [`super::rules`] enforce into the derived schemas (`CreateMonitor`,
//! `UpdateMonitor`, `MonitorJsonMatch`, `MonitorChannels`, `UpdateStatusPage`) and marks them
//! closed (`additionalProperties: false`, as they are read with `deny_unknown_fields`), from
//! the same constants, so the document and the validators cannot drift apart. The JSON-valued
//! fields (`expected_status`, `maintenance`, `headers`, `json_match.equals`) are written out
//! whole, since utoipa sees only `serde_json::Value`.

use serde_json::{json, Value};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr};
use utoipa::Modify;

use super::rules::{
    MAX_BODY_CHARS, MAX_CERT_EXPIRY_DAYS, MAX_FAILURES_BEFORE_DOWN, MAX_INTERVAL_S, MAX_MATCH_CHARS, MAX_POINTER_CHARS,
    MAX_TIMEOUT_MS, MAX_URL_CHARS, METHODS, MIN_INTERVAL_S, MIN_TIMEOUT_MS,
};
use crate::management::alerts::rules::{MAX_EMAILS, MAX_RENOTIFY_S, MAX_WEBHOOKS};
use crate::management::fields::name_pattern;
use crate::management::projects::SLUG_PATTERN;
use pulse_shared::event::NO_NUL_PATTERN;
use pulse_shared::monitor::spec::MAX_LIST;

/// Bodies read with `deny_unknown_fields`.
const CLOSED: [&str; 5] = [
    "CreateMonitor",
    "UpdateMonitor",
    "MonitorJsonMatch",
    "MonitorChannels",
    "UpdateStatusPage",
];

/// The property schemas, as JSON merged into what utoipa derived (type and description kept).
fn rules() -> Vec<(&'static str, &'static str, Value)> {
    let integer = |min: i64, max: i64| json!({"minimum": min, "maximum": max});
    let mut rules = Vec::new();
    for body in ["CreateMonitor", "UpdateMonitor"] {
        rules.extend([
            (body, "name", json!({"minLength": 1, "pattern": name_pattern(false)})),
            (body, "url", json!({"minLength": 1, "maxLength": MAX_URL_CHARS})),
            (body, "method", json!({"enum": METHODS})),
            (
                body,
                "body",
                json!({"maxLength": MAX_BODY_CHARS, "pattern": NO_NUL_PATTERN}),
            ),
            (body, "interval_s", integer(MIN_INTERVAL_S, MAX_INTERVAL_S)),
            (body, "timeout_ms", integer(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)),
            (
                body,
                "body_contains",
                json!({"minLength": 1, "maxLength": MAX_MATCH_CHARS, "pattern": NO_NUL_PATTERN}),
            ),
            (body, "max_latency_ms", integer(1, MAX_TIMEOUT_MS)),
            (body, "cert_expiry_days", integer(0, MAX_CERT_EXPIRY_DAYS)),
            (body, "failures_before_down", integer(1, MAX_FAILURES_BEFORE_DOWN)),
            (body, "renotify_s", integer(0, MAX_RENOTIFY_S)),
        ]);
    }
    rules.extend([
        (
            "MonitorJsonMatch",
            "pointer",
            json!({"maxLength": MAX_POINTER_CHARS, "pattern": "^(/[^\\x00]*)?$"}),
        ),
        ("MonitorChannels", "emails", json!({"maxItems": MAX_EMAILS})),
        ("MonitorChannels", "webhook_ids", json!({"maxItems": MAX_WEBHOOKS})),
        ("UpdateStatusPage", "slug", json!({"pattern": SLUG_PATTERN})),
    ]);
    rules
}

/// Properties whose schema is written out whole (what they take is wider or narrower than the
/// Rust type utoipa sees: `serde_json::Value`).
fn replaced() -> Vec<(&'static str, &'static str, Value)> {
    let status = json!({
        "type": ["array", "null"],
        "description": "Accepted statuses: a code (200), a class (\"2xx\") or an inclusive range (\"200-204\"); default [\"2xx\"]",
        "minItems": 1,
        "maxItems": MAX_LIST,
        "items": {"oneOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"type": "string", "pattern": "^[1-5][0-9xX]{2}(-[1-5][0-9]{2})?$"}
        ]}
    });
    let maintenance = json!({
        "type": ["array", "null"],
        "description": "Windows (UTC) during which notifications are held back; checks go on",
        "maxItems": MAX_LIST,
        "items": {"oneOf": [
            {
                "type": "object",
                "description": "One-off: from start to end",
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"}
                },
                "required": ["start", "end"],
                "additionalProperties": false
            },
            {
                "type": "object",
                "description": "Weekly: on weekday from start_time for duration_s seconds",
                "properties": {
                    "weekday": {"type": "string", "enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
                    "start_time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                    "duration_s": {"type": "integer", "minimum": 1, "maximum": 604_799}
                },
                "required": ["weekday", "start_time", "duration_s"],
                "additionalProperties": false
            }
        ]}
    });
    let mut rules = Vec::new();
    for body in ["CreateMonitor", "UpdateMonitor"] {
        rules.push((body, "expected_status", status.clone()));
        rules.push((body, "maintenance", maintenance.clone()));
    }
    rules.push((
        "MonitorJsonMatch",
        "equals",
        json!({"description": "The value expected at the pointer: any JSON, compared exactly"}),
    ));
    rules
}

/// Merges `extra` into the JSON of `schema`.
fn merged(schema: &RefOr<Schema>, extra: &Value) -> Option<RefOr<Schema>> {
    let mut value = serde_json::to_value(schema).ok()?;
    let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) else {
        return None;
    };
    for (key, rule) in extra {
        target.insert(key.clone(), rule.clone());
    }
    serde_json::from_value(value).ok()
}

/// Writes [`rules`] and [`CLOSED`] into the document.
pub struct MonitorFieldRules;

impl Modify for MonitorFieldRules {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
        for (schema_name, property, rule) in rules() {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema_name) else {
                continue;
            };
            let Some(current) = object.properties.get(property) else {
                continue;
            };
            if let Some(updated) = merged(current, &rule) {
                object.properties.insert(property.to_owned(), updated);
            }
        }
        // Built rather than parsed: utoipa reads a `propertyNames` without `type` back as nothing.
        let headers = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .description(Some(
                "Extra request headers, names to values (not Host, Content-Length, Transfer-Encoding, Connection, Upgrade)",
            ))
            .max_properties(Some(MAX_LIST))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .pattern(Some("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")),
            ))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[\\t\\x20-\\x7e]*$")),
            ))
            .build();
        for body in ["CreateMonitor", "UpdateMonitor"] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) {
                object
                    .properties
                    .insert("headers".to_owned(), RefOr::T(Schema::Object(headers.clone())));
            }
        }
        for (schema_name, property, whole) in replaced() {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema_name) else {
                continue;
            };
            match serde_json::from_value::<RefOr<Schema>>(whole) {
                Ok(schema) => {
                    object.properties.insert(property.to_owned(), schema);
                }
                Err(error) => tracing::error!(schema = schema_name, property, %error, "A monitor schema does not read"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::management::openapi::document;

    #[test]
    fn the_document_states_the_monitor_rules() {
        let document = serde_json::to_value(document()).expect("json");
        let schemas = &document["components"]["schemas"];
        for name in CLOSED {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        for body in ["CreateMonitor", "UpdateMonitor"] {
            let properties = &schemas[body]["properties"];
            assert_eq!(properties["interval_s"]["minimum"], MIN_INTERVAL_S, "{body}");
            assert_eq!(properties["timeout_ms"]["maximum"], MAX_TIMEOUT_MS, "{body}");
            assert_eq!(properties["method"]["enum"], json!(METHODS), "{body}");
            assert_eq!(
                properties["expected_status"]["items"]["oneOf"][0]["type"], "integer",
                "{body}"
            );
            assert_eq!(properties["maintenance"]["maxItems"], MAX_LIST, "{body}");
            assert_eq!(
                properties["headers"]["additionalProperties"]["type"], "string",
                "{body}: {}",
                properties["headers"]
            );
        }
        assert_eq!(
            schemas["UpdateStatusPage"]["properties"]["slug"]["pattern"], SLUG_PATTERN,
            "{}",
            schemas["UpdateStatusPage"]
        );
        assert_eq!(
            schemas["UpdateStatusPage"]["properties"]["slug"]["pattern"],
            SLUG_PATTERN
        );
        let emails = &schemas["MonitorChannels"]["properties"]["emails"];
        assert_eq!(
            (&emails["maxItems"], &emails["type"]),
            (&json!(MAX_EMAILS), &json!("array")),
            "{emails}"
        );
        let pointer = &schemas["MonitorJsonMatch"]["properties"]["pointer"];
        assert_eq!(pointer["type"], "string", "{pointer}");
        let status = &document["paths"]["/v1/status/{slug}"]["get"];
        assert!(
            status.get("security").is_none(),
            "the status page needs no credentials: {status}"
        );
    }
}
