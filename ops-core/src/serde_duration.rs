//! Serde for `std::time::Duration` as fractional seconds (`1.5`), the form reports and journals
//! use.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serializes as seconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Deserializes from seconds; rejects negative, NaN and infinite values.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| serde::de::Error::custom(format!("not a valid duration in seconds: {secs}")))
}
