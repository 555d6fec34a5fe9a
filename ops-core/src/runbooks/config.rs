//! Runbook configuration: TOML with documented defaults, human durations, and validation
//! that names the field at fault.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// A runbook's configuration.
pub trait RunbookConfig: DeserializeOwned + Default {
    /// Rejects values that parse but make no sense (stages not increasing, thresholds out of
    /// range), naming the field.
    fn validate(&self) -> Result<()>;

    /// Parses TOML (missing keys take their defaults) and validates.
    ///
    /// ```
    /// use ops_core::runbooks::{HealthCheckConfig, RunbookConfig};
    /// let c = HealthCheckConfig::from_toml("error_window = \"12h\"").unwrap();
    /// assert_eq!(c.error_window.as_secs(), 12 * 3600);
    /// let err = HealthCheckConfig::from_toml("error_window = \"-5m\"").unwrap_err();
    /// assert!(err.to_string().contains("error_window"));
    /// ```
    fn from_toml(text: &str) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| invalid("toml", e.message()))?;
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            invalid(
                if path == "." { "toml" } else { &path },
                e.inner().message(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }
}

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid_input("runbook-config", "load", field, reason)
}

/// The longest wait, window, bake, cadence or deadline a runbook config accepts: 366 days.
/// Fields that hold an age or a retention say so and take up to [`MAX_AGE`].
pub const MAX_WAIT: Duration = Duration::from_secs(366 * 86_400);

/// The longest age or retention a config accepts (secret ages, data retention), and the longest
/// duration [`human_duration::parse`] reads at all: 100 years.
pub const MAX_AGE: Duration = Duration::from_secs(36_525 * 86_400);

/// `InvalidInput` unless `0 < d ≤` [`MAX_WAIT`].
pub(crate) fn positive(field: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        Err(invalid(field, "must be positive"))
    } else {
        at_most(field, d, MAX_WAIT)
    }
}

/// `InvalidInput` unless `0 < d ≤` [`MAX_AGE`].
pub(crate) fn positive_age(field: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        Err(invalid(field, "must be positive"))
    } else {
        at_most(field, d, MAX_AGE)
    }
}

/// `InvalidInput` unless `d ≤ max` (zero allowed).
pub(crate) fn at_most(field: &str, d: Duration, max: Duration) -> Result<()> {
    if d > max {
        Err(invalid(
            field,
            format!(
                "{} is longer than the limit of {}",
                human_duration::format(d),
                human_duration::format(max)
            ),
        ))
    } else {
        Ok(())
    }
}

/// `InvalidInput` unless `stem` can start a backup name in every store: 1 to 64 bytes of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-` (so no path, no traversal, no whitespace).
pub(crate) fn name_stem(field: &str, stem: &str) -> Result<()> {
    match crate::contracts::plain_name_problem(stem, 64) {
        Some(r) => Err(invalid(field, r)),
        None if stem.starts_with('-') => Err(invalid(field, "must not start with '-'")),
        None => Ok(()),
    }
}

/// `InvalidInput` unless `warn < critical`.
pub(crate) fn ordered<T: PartialOrd + std::fmt::Display>(
    field: &str,
    warn: T,
    critical: T,
) -> Result<()> {
    if warn < critical {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("warning level {warn} must be below critical level {critical}"),
        ))
    }
}

/// Serde for durations written for people: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`, or a
/// number of seconds. Negative and malformed values, and anything longer than [`MAX_AGE`]
/// (100 years), are rejected; each config field then applies its own bound (most are at most
/// [`MAX_WAIT`], 366 days).
pub mod human_duration {
    use std::time::Duration;

    use super::MAX_AGE;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `"1h30m"`-style text.
    ///
    /// ```
    /// use ops_core::runbooks::human_duration::parse;
    /// assert_eq!(parse("1h30m").unwrap().as_secs(), 5400);
    /// assert_eq!(parse("250ms").unwrap().as_millis(), 250);
    /// assert!(parse("-5m").is_err() && parse("5 parsecs").is_err() && parse("").is_err());
    /// assert!(parse("10000000000000000000s10000000000000000000s").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!("{t:?} is negative"));
        }
        if t.is_empty() {
            return Err("empty duration".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("{t:?} is not a duration like 30s, 5m, 1h30m, 7d"));
            }
            let number = &rest[..digits];
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_nanos: u64 = match &rest[..unit_len] {
                "ms" => 1_000_000,
                "s" | "" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => 86_400_000_000_000,
                "w" => 604_800_000_000_000,
                other => {
                    return Err(format!(
                        "{t:?}: unknown unit {other:?} (use ms, s, m, h, d, w)"
                    ));
                }
            };
            rest = &rest[unit_len..];
            let part = part_duration(number, unit_nanos).ok_or_else(|| too_long(t))?;
            let part = part.map_err(|()| format!("{t:?}: bad number {number:?}"))?;
            total = total
                .checked_add(part)
                .filter(|d| *d <= MAX_AGE)
                .ok_or_else(|| too_long(t))?;
        }
        Ok(total)
    }

    /// `number` units of `unit_nanos`: exact for whole numbers, rounded to the nanosecond for
    /// fractions. `None` when it is beyond [`MAX_AGE`], `Some(Err)` when it is not a number.
    fn part_duration(number: &str, unit_nanos: u64) -> Option<Result<Duration, ()>> {
        let max_nanos = MAX_AGE.as_nanos();
        if !number.contains('.') {
            // Leading zeros aside, more than 30 digits is beyond any bound.
            let digits = number.trim_start_matches('0');
            if digits.len() > 30 {
                return None;
            }
            let n: u128 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            let nanos = n.checked_mul(u128::from(unit_nanos))?;
            return (nanos <= max_nanos).then(|| Ok(nanos_to_duration(nanos)));
        }
        let n: f64 = match number.parse() {
            Ok(n) => n,
            Err(_) => return Some(Err(())),
        };
        let nanos = (n * unit_nanos as f64).round();
        if !nanos.is_finite() || nanos > max_nanos as f64 {
            return None;
        }
        // In range: below 2^62, so the cast is exact enough and cannot wrap.
        Some(Ok(nanos_to_duration(nanos as u128)))
    }

    fn nanos_to_duration(nanos: u128) -> Duration {
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder is below 10^9, so it fits in u32.
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    fn too_long(t: &str) -> String {
        format!("{t:?} is longer than the limit of {}", format(MAX_AGE))
    }

    fn from_secs(n: f64) -> Result<Duration, String> {
        if n.is_nan() || n < 0.0 {
            return Err(format!("{n} is negative or not a number"));
        }
        match Duration::try_from_secs_f64(n) {
            Ok(d) if d <= MAX_AGE => Ok(d),
            _ => Err(too_long(&n.to_string())),
        }
    }

    /// Writes the shortest exact form (`"90m"` → `"1h30m"`, `"1500ms"` → `"1s500ms"`); what it
    /// writes, [`parse`] reads back to the same duration.
    pub fn format(d: Duration) -> String {
        if d.is_zero() {
            return "0s".into();
        }
        let mut out = String::new();
        let mut s = d.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= size {
                out.push_str(&format!("{}{unit}", s / size));
                s %= size;
            }
        }
        let nanos = d.subsec_nanos();
        if nanos.is_multiple_of(1_000_000) {
            if nanos > 0 {
                out.push_str(&format!("{}ms", nanos / 1_000_000));
            }
        } else {
            // Below a millisecond: fractional milliseconds, exact to the nanosecond.
            let ms = format!("{}.{:06}", nanos / 1_000_000, nanos % 1_000_000);
            out.push_str(ms.trim_end_matches('0'));
            out.push_str("ms");
        }
        out
    }

    /// Serializes as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Deserializes from text or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
            Raw::Secs(n) => from_secs(n).map_err(serde::de::Error::custom),
        }
    }

    /// The same for an optional duration (`#[serde(default, with = "human_duration::option")]`).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes as text, or nothing.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        /// Deserializes text or seconds, or nothing.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(deserialize_with = "super::deserialize")] Duration);
            Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
        }
    }
}
