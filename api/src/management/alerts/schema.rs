//! The OpenAPI side of alert rules: the schema of [`Condition`], written out by hand, and
//! [`AlertFieldRules`], which puts the bounds of the derived bodies (`CreateAlert`,
//! `UpdateAlert`, `AlertChannels`) into the document. Both take the constants the checks in
//! [`super::rules`] use, so the document and the validators cannot drift apart.
//!
//! Why by hand: utoipa describes an internally tagged enum as `allOf` of each variant and the
//! tag, which cannot also say `additionalProperties: false`, and it cannot say per kind that
//! `error_ratio` takes `op` `above` only and no `filter.status`, or that `absent` has no `op`,
//! `threshold` or `min_events`. Here each kind is its own closed object in a `oneOf`.

use std::borrow::Cow;

use pulse_shared::event::NO_NUL_PATTERN;
use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use super::rules::{
    Condition, Kind, DEFAULT_MIN_EVENTS, MAX_COOLDOWN_S, MAX_EMAILS, MAX_FILTER_CHARS, MAX_MIN_EVENTS, MAX_RENOTIFY_S,
    MAX_WEBHOOKS, MAX_WINDOW_S, MIN_RENOTIFY_S, MIN_WINDOW_S,
};
use crate::management::fields::{email_pattern, name_pattern, MAX_EMAIL_CHARS};

fn closed() -> Option<AdditionalProperties<Schema>> {
    Some(AdditionalProperties::FreeForm(false))
}

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_FILTER_CHARS))
        .pattern(Some(NO_NUL_PATTERN))
        .description(Some(description))
}

fn integer(minimum: i64, maximum: i64, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .description(Some(description))
}

fn filter(with_status: bool) -> ObjectBuilder {
    let mut filter = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Which events count (a field left out: any); `{}` or absent: every event of the project",
        ))
        .property("event_type", text("Only events of this type"))
        .property("source", text("Only events from this source"));
    if with_status {
        filter = filter.property("status", text("Only events with this status"));
    }
    filter.additional_properties(closed())
}

fn variant(kind: Kind, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()])),
        )
        .required("kind")
        .property("filter", filter(kind != Kind::ErrorRatio))
        .property(
            "window_s",
            integer(
                MIN_WINDOW_S,
                MAX_WINDOW_S,
                "The window evaluated, in seconds, ending now",
            ),
        )
        .required("window_s")
        .additional_properties(closed())
}

impl PartialSchema for Condition {
    fn schema() -> RefOr<Schema> {
        let count = variant(Kind::Count, "Matching events in the window above (or below) threshold")
            .property(
                "op",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["above", "below"])),
            )
            .required("op")
            .property(
                "threshold",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .description(Some("A number of events")),
            )
            .required("threshold");
        let ratio = variant(
            Kind::ErrorRatio,
            "The share of matching events with status `error` above threshold, judged once at least min_events matched",
        )
        .property(
            "op",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["above"]))
                .description(Some("Only `above` (the default)")),
        )
        .property(
            "threshold",
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(0))
                .exclusive_maximum(Some(1))
                .description(Some("A share, strictly between 0 and 1")),
        )
        .required("threshold")
        .property(
            "min_events",
            integer(
                1,
                MAX_MIN_EVENTS,
                &format!("Fewer matching events than this never fire (default {DEFAULT_MIN_EVENTS})"),
            ),
        );
        let absent = variant(
            Kind::Absent,
            "No matching event in the window (a dead man's switch); it has no op, threshold or min_events",
        );
        OneOfBuilder::new()
            .description(Some("What the rule watches, by `kind`"))
            .item(count)
            .item(ratio)
            .item(absent)
            .examples([json!({
                "kind": "count",
                "filter": {"event_type": "checkout", "status": "error"},
                "window_s": 300,
                "op": "above",
                "threshold": 10
            })])
            .into()
    }
}

impl ToSchema for Condition {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AlertCondition")
    }
}

/// Bounds of the derived alert bodies, from the constants of [`super::rules`].
pub struct AlertFieldRules;

fn object_mut<'a>(openapi: &'a mut OpenApiDoc, name: &str) -> Option<&'a mut utoipa::openapi::schema::Object> {
    let components = openapi.components.as_mut()?;
    match components.schemas.get_mut(name) {
        Some(RefOr::T(Schema::Object(object))) => Some(object),
        _ => None,
    }
}

impl Modify for AlertFieldRules {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for body in ["CreateAlert", "UpdateAlert"] {
            let Some(object) = object_mut(openapi, body) else {
                continue;
            };
            // The length of a name counts after trimming, so the pattern carries it.
            object.properties.insert(
                "name".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .pattern(Some(name_pattern(false)))
                    .description(Some("1 to 200 characters after trimming"))
                    .into(),
            );
            object.properties.insert(
                "cooldown_s".into(),
                integer(
                    0,
                    MAX_COOLDOWN_S,
                    "Seconds after an incident resolves before the rule may fire again (default 300)",
                )
                .into(),
            );
            object.properties.insert(
                "renotify_s".into(),
                OneOfBuilder::new()
                    .description(Some("Seconds between reminders while firing; 0 (the default): never"))
                    .item(ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some([0])))
                    .item(integer(MIN_RENOTIFY_S, MAX_RENOTIFY_S, "Seconds"))
                    .into(),
            );
        }
        if let Some(channels) = object_mut(openapi, "AlertChannels") {
            channels.properties.insert(
                "emails".into(),
                ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(3))
                            .max_length(Some(MAX_EMAIL_CHARS))
                            .pattern(Some(email_pattern())),
                    )
                    .max_items(Some(MAX_EMAILS))
                    .description(Some("Addresses to mail; stored trimmed, lower-cased, de-duplicated"))
                    .into(),
            );
            channels.properties.insert(
                "webhook_ids".into(),
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String).format(Some(
                        utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
                    )))
                    .max_items(Some(MAX_WEBHOOKS))
                    .description(Some("Webhook endpoints of the same project"))
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_closed_object_with_the_checks_bounds() {
        let schema = serde_json::to_value(Condition::schema()).expect("json");
        let kinds = schema["oneOf"].as_array().expect("oneOf");
        assert_eq!(kinds.len(), 3);
        for kind in kinds {
            assert_eq!(kind["additionalProperties"], false, "{kind}");
            assert_eq!(kind["properties"]["window_s"]["minimum"], MIN_WINDOW_S);
            assert_eq!(kind["properties"]["window_s"]["maximum"], MAX_WINDOW_S);
            assert_eq!(kind["properties"]["filter"]["additionalProperties"], false);
        }
        assert_eq!(kinds[1]["properties"]["op"]["enum"], json!(["above"]));
        assert!(kinds[1]["properties"]["filter"]["properties"].get("status").is_none());
        assert!(kinds[2]["properties"].get("op").is_none());
        assert_eq!(kinds[0]["properties"]["kind"]["enum"], json!(["count"]));
    }
}
