//! Recurring windows ("Sunday 02:00–04:00 UTC"): when maintenance may run and alerts are
//! silenced. A window opens at each occurrence of a cron pattern in a time zone and stays open
//! for a duration.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::{Schedule, ScheduleConfig};
use crate::config::{human_duration, invalid};
use crate::{Error, Result};

/// The longest window: a week (a window open longer than its period is always open).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// A recurring window, as configured.
///
/// ```toml
/// [windows.db-maintenance]
/// opens = "0 2 * * SUN"     # cron: when it opens
/// time_zone = "UTC"         # IANA name; default UTC
/// lasts = "2h"              # how long it stays open (at most a week)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// A cron pattern: each occurrence opens the window.
    pub opens: String,
    /// The IANA time zone the pattern is read in (default UTC).
    #[serde(default = "utc")]
    pub time_zone: String,
    /// How long it stays open.
    #[serde(with = "human_duration")]
    pub lasts: Duration,
}

fn utc() -> String {
    "UTC".into()
}

/// A compiled window.
///
/// ```
/// use ops_core::schedule::Window;
/// use chrono::{TimeZone, Utc};
/// let w = Window::new("db-maintenance", "0 2 * * SUN", "UTC", std::time::Duration::from_secs(7200))?;
/// let sunday_3am = Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap();
/// assert!(w.open_at(sunday_3am)?.is_some());
/// let monday = Utc.with_ymd_and_hms(2026, 12, 7, 3, 0, 0).unwrap();
/// assert_eq!(w.next_open(monday)?, Some(Utc.with_ymd_and_hms(2026, 12, 13, 2, 0, 0).unwrap()));
/// # Ok::<(), ops_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Window {
    name: String,
    config: WindowConfig,
    opens: Schedule,
    lasts: chrono::Duration,
}

/// One opening of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// When it opened.
    pub from: DateTime<Utc>,
    /// When it closes (exclusive).
    pub until: DateTime<Utc>,
}

impl Window {
    /// A window `name` opening at each occurrence of `opens` in `time_zone`, for `lasts`.
    pub fn new(name: &str, opens: &str, time_zone: &str, lasts: Duration) -> Result<Self> {
        Self::from_config(
            name,
            WindowConfig {
                opens: opens.into(),
                time_zone: time_zone.into(),
                lasts,
            },
        )
    }

    /// A window from its config, naming the field at fault.
    pub fn from_config(name: &str, config: WindowConfig) -> Result<Self> {
        crate::contracts::validate_name("schedule", "window", "window", name)?;
        if config.lasts.is_zero() || config.lasts > MAX_WINDOW {
            return Err(invalid("lasts", "from 1 s to 7 days"));
        }
        let opens = Schedule::new(ScheduleConfig {
            cron: config.opens.clone(),
            time_zone: config.time_zone.clone(),
            ..ScheduleConfig::default()
        })
        .map_err(|e| rename_field(e, "cron", "opens"))?;
        let lasts = chrono::Duration::from_std(config.lasts)
            .map_err(|_| invalid("lasts", "from 1 s to 7 days"))?;
        Ok(Self {
            name: name.into(),
            config,
            opens,
            lasts,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its config.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The opening `t` falls in, if it is open at `t`.
    pub fn open_at(&self, t: DateTime<Utc>) -> Result<Option<Opening>> {
        // Openings may overlap (a window longer than its period): any of the recent ones will
        // do, and the latest one closes last.
        let Some(from) = self.opens.last_at_or_before(t)? else {
            return Ok(None);
        };
        let until = from
            .checked_add_signed(self.lasts)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok((t < until).then_some(Opening { from, until }))
    }

    /// `t` if the window is open then, otherwise when it next opens (`None`: never again).
    pub fn next_open(&self, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        if self.open_at(t)?.is_some() {
            return Ok(Some(t));
        }
        self.opens.next_after(t)
    }

    /// "db-maintenance (0 2 * * SUN UTC, 2h)", for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} {}, {})",
            self.name,
            self.config.opens,
            self.config.time_zone,
            human_duration::format(self.config.lasts)
        )
    }
}

fn rename_field(e: Error, from: &str, to: &str) -> Error {
    match e.kind() {
        crate::ErrorKind::InvalidInput { field, reason } if field == from => {
            invalid(to, reason.clone())
        }
        _ => e,
    }
}
