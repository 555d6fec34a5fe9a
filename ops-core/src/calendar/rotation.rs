//! An on-call rotation: people take turns, handing off at each occurrence of a cron pattern,
//! with overrides (holidays, swaps) and business hours. Answers
//! [`OnCallSource`] from its config alone.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::{Schedule, ScheduleConfig};
use super::window::{Window, WindowConfig};
use crate::config::{RunbookConfig, invalid};
use crate::contracts::{OnCallShift, OnCallSource};
use crate::{Error, Result};

/// The most hand-offs between a rotation's start and the instant asked about (about 19 years
/// of daily hand-offs); move `starts` forward past that.
pub const MAX_HAND_OFFS: usize = 7_000;

/// Someone on call instead of the scheduled person, for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Who is on call instead.
    pub person: String,
    /// From when.
    pub from: DateTime<Utc>,
    /// Until when (exclusive).
    pub until: DateTime<Utc>,
    /// Why ("alice on holiday").
    pub reason: String,
}

/// A rotation, as configured.
///
/// ```toml
/// people = ["alice", "bob", "carol"]
/// hand_off = "0 9 * * MON"                # each occurrence hands over to the next person
/// time_zone = "Europe/Berlin"
/// starts = "2026-11-30T08:00:00Z"         # people[0] is on call from here to the next hand-off
/// business_hours = { opens = "0 9 * * MON", time_zone = "Europe/Berlin", lasts = "104h" }
///
/// [[overrides]]
/// person = "dave"
/// from = "2026-12-24T00:00:00Z"
/// until = "2026-12-27T00:00:00Z"
/// reason = "bob away over Christmas"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// Who takes turns, in order.
    pub people: Vec<String>,
    /// A cron pattern: each occurrence hands over to the next person.
    pub hand_off: String,
    /// The IANA time zone `hand_off` (and nothing else) is read in; default UTC.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// When the first shift (of `people[0]`) begins.
    pub starts: DateTime<Utc>,
    /// When the team is at work (the seeds: Monday 09:00 to Friday 17:00).
    #[serde(default)]
    pub business_hours: Option<WindowConfig>,
    /// Overrides; where two overlap, the later in the list wins.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

fn utc() -> String {
    "UTC".into()
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            people: Vec::new(),
            hand_off: "0 9 * * MON".into(),
            time_zone: utc(),
            starts: DateTime::<Utc>::UNIX_EPOCH,
            business_hours: None,
            overrides: Vec::new(),
        }
    }
}

impl RunbookConfig for RotationConfig {
    fn validate(&self) -> Result<()> {
        Rotation::new(self.clone()).map(|_| ())
    }
}

/// A compiled rotation.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::calendar::{Rotation, RotationConfig};
/// use ops_core::contracts::OnCallSource;
/// let rotation = Rotation::new(RotationConfig {
///     people: vec!["alice".into(), "bob".into()],
///     hand_off: "0 9 * * MON".into(),
///     starts: "2026-11-30T09:00:00Z".parse().unwrap(),
///     ..RotationConfig::default()
/// })?;
/// let shift = rotation.on_call("2026-12-08T03:00:00Z".parse().unwrap()).await?;
/// assert_eq!((shift.primary.as_str(), shift.secondary.as_deref()), ("bob", Some("alice")));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Rotation {
    config: RotationConfig,
    hand_off: Schedule,
    business_hours: Option<Window>,
}

impl Rotation {
    /// Checks a config, naming the field at fault.
    pub fn new(config: RotationConfig) -> Result<Self> {
        if config.people.is_empty() {
            return Err(invalid("people", "name at least one person"));
        }
        for (i, p) in config.people.iter().enumerate() {
            check_person(&format!("people[{i}]"), p)?;
            if config.people[..i].contains(p) {
                return Err(invalid(
                    &format!("people[{i}]"),
                    format!("{p} is listed twice"),
                ));
            }
        }
        for (i, o) in config.overrides.iter().enumerate() {
            check_person(&format!("overrides[{i}].person"), &o.person)?;
            if o.until <= o.from {
                return Err(invalid(
                    &format!("overrides[{i}].until"),
                    "must be after `from`",
                ));
            }
        }
        let hand_off = Schedule::new(ScheduleConfig {
            cron: config.hand_off.clone(),
            time_zone: config.time_zone.clone(),
            ..ScheduleConfig::default()
        })
        .map_err(|e| match e.kind() {
            crate::ErrorKind::InvalidInput { field, reason } if field == "cron" => {
                invalid("hand_off", reason.clone())
            }
            _ => e,
        })?;
        let business_hours = config
            .business_hours
            .clone()
            .map(|w| Window::from_config("business-hours", w))
            .transpose()?;
        Ok(Self {
            config,
            hand_off,
            business_hours,
        })
    }

    /// Its config.
    pub fn config(&self) -> &RotationConfig {
        &self.config
    }

    /// The scheduled shift at `at` (before overrides): its index from the start, its bounds.
    fn scheduled(&self, at: DateTime<Utc>) -> Result<(usize, DateTime<Utc>, DateTime<Utc>)> {
        if at < self.config.starts {
            return Err(Error::invalid_input(
                "calendar",
                "on_call",
                "at",
                format!("the rotation starts at {}", self.config.starts),
            ));
        }
        let (mut index, mut from) = (0usize, self.config.starts);
        loop {
            let Some(next) = self.hand_off.next_after(from)? else {
                return Ok((index, from, DateTime::<Utc>::MAX_UTC));
            };
            if next > at {
                return Ok((index, from, next));
            }
            index += 1;
            if index > MAX_HAND_OFFS {
                return Err(Error::invalid_input(
                    "calendar",
                    "on_call",
                    "starts",
                    format!(
                        "more than {MAX_HAND_OFFS} hand-offs since the rotation started: move `starts` forward"
                    ),
                ));
            }
            from = next;
        }
    }

    /// The shift in force at `at`.
    pub fn shift_at(&self, at: DateTime<Utc>) -> Result<OnCallShift> {
        let (index, mut from, mut until) = self.scheduled(at)?;
        let people = &self.config.people;
        let scheduled = &people[index % people.len()];
        let next = &people[(index + 1) % people.len()];
        let business_hours = match &self.business_hours {
            Some(w) => w.open_at(at)?.is_some(),
            None => false,
        };
        let over = self
            .config
            .overrides
            .iter()
            .rev()
            .find(|o| o.from <= at && at < o.until);
        let (primary, overridden) = match over {
            Some(o) => {
                from = from.max(o.from);
                until = until.min(o.until);
                (
                    o.person.clone(),
                    Some(format!("{} (instead of {scheduled})", o.reason)),
                )
            }
            None => (scheduled.clone(), None),
        };
        let secondary = [next, scheduled]
            .into_iter()
            .find(|p| **p != primary)
            .cloned();
        Ok(OnCallShift {
            primary,
            secondary,
            from,
            until,
            business_hours,
            overridden,
        })
    }
}

fn check_person(field: &str, p: &str) -> Result<()> {
    if p.trim().is_empty() || p.len() > 255 || p.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "a name of 1 to 255 characters without control characters",
        ));
    }
    Ok(())
}

#[async_trait]
impl OnCallSource for Rotation {
    async fn on_call(&self, at: DateTime<Utc>) -> Result<OnCallShift> {
        self.shift_at(at)
    }
}
