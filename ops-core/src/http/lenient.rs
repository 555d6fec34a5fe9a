//! Field decoders for replies that are valid but inconvenient: a described field sent as
//! `null` where a client wants its default, and a whole number sent in a JSON number form
//! that serde's integers refuse (`1.7e12`, `1763888400000.0`), which a description typed only
//! as `number` permits.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct Deployment {
//!     #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
//!     alias: Vec<String>,
//!     #[serde(default, deserialize_with = "ops_core::http::lenient::opt_whole_number")]
//!     created: Option<i64>,
//! }
//! let d: Deployment = serde_json::from_str(r#"{"alias": null, "created": 1.7e12}"#).unwrap();
//! assert!(d.alias.is_empty());
//! assert_eq!(d.created, Some(1_700_000_000_000));
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// `null` (or a missing field, with `#[serde(default)]`) reads as `T::default()`.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Any JSON number as an `i64`: integers as they are, other forms rounded toward zero. A
/// number outside the `i64` range is an error, not a wrapped value.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    to_i64(serde_json::Number::deserialize(d)?).map_err(D::Error::custom)
}

/// [`whole_number`] for an optional (or `null`) field.
pub fn opt_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(to_i64)
        .transpose()
        .map_err(D::Error::custom)
}

/// [`whole_number`] for a count: `null` and negative numbers read as 0.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(opt_whole_number(d)?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// A protobuf `int64` as proto3's JSON mapping writes it, a decimal string (`"-12"`), or
/// leniently as a JSON number. Text that is not a whole number in range is an error.
pub fn int64_text<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(serde_json::Number),
    }
    match Either::deserialize(d)? {
        Either::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("{t:?} is not an int64"))),
        Either::Number(n) => to_i64(n).map_err(D::Error::custom),
    }
}

/// i64::MAX as f64 rounds up to 2^63, which is itself out of range.
const LIMIT: f64 = 9_223_372_036_854_775_808.0;

fn to_i64(n: serde_json::Number) -> Result<i64, String> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.trunc() >= -LIMIT && f.trunc() < LIMIT => {
            Ok(f.trunc() as i64)
        }
        _ => Err(format!("the number {n} is not a whole number within ±2^63")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Deserialize)]
    struct W {
        #[serde(deserialize_with = "whole_number")]
        n: i64,
    }

    fn read(json: &str) -> Result<i64, serde_json::Error> {
        serde_json::from_str::<W>(json).map(|w| w.n)
    }

    #[test]
    fn integers_floats_and_exponents_read_as_whole_numbers() {
        assert_eq!(read(r#"{"n": 1763888400000}"#).unwrap(), 1_763_888_400_000);
        assert_eq!(
            read(r#"{"n": 1763888400000.0}"#).unwrap(),
            1_763_888_400_000
        );
        assert_eq!(read(r#"{"n": 1.5}"#).unwrap(), 1);
        assert_eq!(read(r#"{"n": -1.5}"#).unwrap(), -1);
        assert_eq!(read(r#"{"n": 1.7e12}"#).unwrap(), 1_700_000_000_000);
        assert!(read(r#"{"n": 1e19}"#).is_err());
        assert!(read(r#"{"n": 18446744073709551615}"#).is_err());
        assert!(read(r#"{"n": "12"}"#).is_err());
    }

    proptest! {
        #[test]
        fn any_number_reads_or_errs_without_panic(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let text = serde_json::Number::from_f64(f).unwrap().to_string();
            let json = format!(r#"{{"n": {text}}}"#);
            // What serde_json's (best-effort) float parser reads the text as: with more than 15
            // significant digits it can be one unit in the last place off the printed value.
            let f: f64 = serde_json::from_str(&text).unwrap();
            match read(&json) {
                Ok(n) => prop_assert_eq!(n, f.trunc() as i64),
                Err(_) => prop_assert!(f.trunc() >= LIMIT || f.trunc() < -LIMIT),
            }
        }
    }
}
