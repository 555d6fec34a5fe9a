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
        let config: Self = from_toml(text)?;
        config.validate()?;
        Ok(config)
    }
}

/// Parses TOML into any config (a runbook's, a provider's), naming the field at fault in the
/// `InvalidInput` error.
///
/// ```
/// use ops_core::http::HttpConfig;
/// let err = ops_core::config::from_toml::<HttpConfig>("read_timeout = \"soon\"").unwrap_err();
/// assert!(err.to_string().contains("read_timeout"));
/// ```
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T> {
    let de = toml::Deserializer::parse(text).map_err(|e| invalid("toml", e.message()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        invalid(
            if path == "." { "toml" } else { &path },
            e.inner().message(),
        )
    })
}

/// Deserializes an already parsed TOML table (a preset with overrides laid over it), naming the
/// field at fault like [`from_toml`].
pub fn from_toml_table<T: DeserializeOwned>(table: toml::Table) -> Result<T> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        invalid(
            if path == "." { "toml" } else { &path },
            e.inner().message(),
        )
    })
}

/// A variable lookup: `std::env::var` in [`from_env`](Env::from_env) constructors, a map in
/// tests, so a config's environment reading is tested without touching the process's
/// environment.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reading a provider's settings from environment variables, the same way in every provider:
/// an unset or blank variable is missing, a missing required one is an `InvalidInput` error
/// that names it and says what it holds.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    provider: &'static str,
    lookup: Lookup<'a>,
}

impl<'a> Env<'a> {
    /// `provider`'s variables, read through `lookup`.
    pub fn new(provider: &'static str, lookup: Lookup<'a>) -> Self {
        Self { provider, lookup }
    }

    /// The process environment.
    pub fn from_env(provider: &'static str) -> Env<'static> {
        Env {
            provider,
            lookup: &|k| std::env::var(k).ok(),
        }
    }

    /// `var`, if set and not blank.
    pub fn optional(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// `var`, or an error naming it and `what` it should hold.
    ///
    /// ```
    /// use ops_core::config::Env;
    /// let env = Env::new("slack", &|k| (k == "SLACK_CHANNEL").then(|| "C01".to_string()));
    /// assert_eq!(env.required("SLACK_CHANNEL", "the channel id").unwrap(), "C01");
    /// let err = env.required("SLACK_BOT_TOKEN", "a bot token (xoxb-…)").unwrap_err();
    /// assert!(err.to_string().contains("SLACK_BOT_TOKEN"));
    /// ```
    pub fn required(&self, var: &str, what: &str) -> Result<String> {
        self.optional(var).ok_or_else(|| {
            Error::invalid_input(self.provider, "config", var, format!("set {var} to {what}"))
        })
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
