//! Whole numbers in JSON bodies. JSON Schema (and so OpenAPI 3.1) calls `1369.0` an integer,
//! and JavaScript clients send it that way; serde's integer types refuse it. [`Whole`] takes an
//! integer, or a float with no fractional part, and converts it to the target type, refusing
//! anything out of its range. `option` and `present` are the `deserialize_with` helpers for
//! optional fields (`present` tells an explicit `null` from an absent field).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// A whole number read as `T` (`i32`, `i64`, `u64`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<i128>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeVisitor(PhantomData))
    }
}

struct WholeVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> WholeVisitor<T> {
    fn convert<E: de::Error>(value: i128, unexpected: Unexpected<'_>) -> Result<Whole<T>, E> {
        T::try_from(value)
            .map(Whole)
            .map_err(|_| E::invalid_value(unexpected, &"a whole number in range"))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for WholeVisitor<T> {
    type Value = Whole<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Self::convert(value.into(), Unexpected::Signed(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Self::convert(value.into(), Unexpected::Unsigned(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // Every f64 below 2^64 in magnitude fits an i128; the target type bounds it further.
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 18_446_744_073_709_551_616.0 {
            Self::convert(value as i128, Unexpected::Float(value))
        } else {
            Err(E::invalid_type(Unexpected::Float(value), &self))
        }
    }
}

/// `#[serde(default, deserialize_with = "pulse_shared::whole::option")]` on an `Option<T>`.
pub fn option<'de, D: Deserializer<'de>, T: TryFrom<i128>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|whole| whole.0))
}

/// `#[serde(default, deserialize_with = "pulse_shared::whole::present")]` on an
/// `Option<Option<T>>`: absent is `None` (from `default`), `null` is `Some(None)`.
pub fn present<'de, D: Deserializer<'de>, T: TryFrom<i128>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    option(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: TryFrom<i128>>(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str::<Whole<T>>(json).map(|whole| whole.0)
    }

    #[test]
    fn integers_and_integral_floats_are_whole_numbers() {
        assert_eq!(read::<i32>("1369").expect("integer"), 1369);
        assert_eq!(read::<i32>("1369.0").expect("integral float"), 1369);
        assert_eq!(read::<i64>("-2e3").expect("exponent"), -2000);
        assert_eq!(read::<u64>("18446744073709551615").expect("u64::MAX"), u64::MAX);
    }

    #[test]
    fn fractions_other_types_and_out_of_range_values_are_refused() {
        for bad in ["1.5", "\"7\"", "true", "null", "[1]", "1e300"] {
            assert!(read::<i64>(bad).is_err(), "{bad}");
        }
        assert!(read::<i32>("2147483648").is_err());
        assert!(read::<u64>("-1").is_err());
        let message = read::<i32>("1.5").expect_err("fraction").to_string();
        assert!(message.contains("whole number"), "{message}");
    }

    #[test]
    fn optional_fields_tell_null_from_absent() {
        #[derive(serde::Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "present")]
            limit: Option<Option<i32>>,
            #[serde(default, deserialize_with = "option")]
            days: Option<i32>,
        }
        let absent: Patch = serde_json::from_str("{}").expect("empty");
        assert_eq!((absent.limit, absent.days), (None, None));
        let null: Patch = serde_json::from_str(r#"{"limit": null, "days": 7.0}"#).expect("null");
        assert_eq!((null.limit, null.days), (Some(None), Some(7)));
    }
}
