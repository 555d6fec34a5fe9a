//! Configuration shared by runbooks and providers: TOML with documented defaults, durations
//! written for people, bounds, and validation that names the field at fault. Below the
//! runbooks in the layer order, so providers (a notification router, maintenance windows, query
//! sets) load their configs without reaching up into the runbooks.

pub mod duration;

pub use duration::human as human_duration;

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
/// duration [`duration::human::parse`] reads at all: 100 years.
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
