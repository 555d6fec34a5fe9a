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

/// `InvalidInput` unless `d` is positive.
pub(crate) fn positive(field: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        Err(invalid(field, "must be positive"))
    } else {
        Ok(())
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
/// number of seconds. Negative and malformed values are rejected.
pub mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `"1h30m"`-style text.
    ///
    /// ```
    /// use ops_core::runbooks::human_duration::parse;
    /// assert_eq!(parse("1h30m").unwrap().as_secs(), 5400);
    /// assert_eq!(parse("250ms").unwrap().as_millis(), 250);
    /// assert!(parse("-5m").is_err() && parse("5 parsecs").is_err() && parse("").is_err());
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
            let n: f64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{t:?}: bad number"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let secs = match &rest[..unit_len] {
                "ms" => n / 1000.0,
                "s" | "" => n,
                "m" => n * 60.0,
                "h" => n * 3600.0,
                "d" => n * 86_400.0,
                "w" => n * 604_800.0,
                other => {
                    return Err(format!(
                        "{t:?}: unknown unit {other:?} (use ms, s, m, h, d, w)"
                    ));
                }
            };
            rest = &rest[unit_len..];
            total += Duration::try_from_secs_f64(secs).map_err(|e| format!("{t:?}: {e}"))?;
        }
        Ok(total)
    }

    /// Writes the shortest exact form (`"90m"` → `"1h30m"`).
    pub fn format(d: Duration) -> String {
        if d.subsec_millis() > 0 || d.is_zero() {
            return if d.as_secs() == 0 {
                format!("{}ms", d.as_millis())
            } else {
                format!("{}s", d.as_secs_f64())
            };
        }
        let mut s = d.as_secs();
        let mut out = String::new();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= size {
                out.push_str(&format!("{}{unit}", s / size));
                s %= size;
            }
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
            Raw::Secs(n) if n >= 0.0 => {
                Duration::try_from_secs_f64(n).map_err(serde::de::Error::custom)
            }
            Raw::Secs(n) => Err(serde::de::Error::custom(format!("{n} is negative"))),
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
