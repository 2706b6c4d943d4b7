//! The JSON body extractor of the management routes: actix's `web::Json` (with the app's
//! `JsonConfig`: size limit, content type, the error envelope), insisting that the body is a
//! JSON object. serde's derived structs also accept a JSON array of the fields in order, so
//! `[null, null]` would pass as a request with every field absent (found by schemathesis);
//! here it is a 400 `INVALID_JSON` like any other malformed body.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A request body that must be a JSON object, deserialized into `T`.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// `T`, read only from a JSON object.
#[derive(Debug)]
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// An optional body read by hand (`POST .../rotate`): empty, blank or `null` is `None`,
/// otherwise it must be a JSON object like any other body.
pub fn optional_object<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Option<Object<T>>>(body)
        .map(|object| object.map(|object| object.0))
        .map_err(|error| ApiError::InvalidJson(error.to_string()))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Object<T>>::from_request(req, payload);
        Box::pin(async move { body.await.map(|json| Json(json.into_inner().0)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Named {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        role: Option<String>,
    }

    #[test]
    fn an_optional_body_is_absent_blank_null_or_an_object() {
        for absent in ["", "  \n", "null"] {
            assert_eq!(optional_object::<Named>(absent.as_bytes()).expect(absent), None);
        }
        let named = optional_object::<Named>(br#"{"name": "a"}"#).expect("object");
        assert_eq!(named.and_then(|named| named.name).as_deref(), Some("a"));
        assert!(optional_object::<Named>(br#"["a", null]"#).is_err());
    }

    #[test]
    fn only_an_object_is_a_body() {
        let object: Object<Named> = serde_json::from_str(r#"{"name": "a"}"#).expect("object");
        assert_eq!(object.0.name.as_deref(), Some("a"));
        let array = serde_json::from_str::<Object<Named>>("[null, null]").expect_err("array");
        assert!(array.to_string().contains("expected a JSON object"), "{array}");
        assert!(
            serde_json::from_str::<Object<Named>>(r#"{"nope": 1}"#).is_err(),
            "unknown fields still refused"
        );
    }
}
