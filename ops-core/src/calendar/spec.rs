//! When a runbook runs: a cron pattern in a time zone, with jitter, a deadline, and what to do
//! about occurrences missed while nothing was running and runs that are still going.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{RunbookConfig, human_duration, invalid};
use crate::{Error, Result};

/// What to do when an occurrence comes while the previous run is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Do not start it; journal it as skipped.
    #[default]
    Skip,
    /// Start it once the running one ends (if its deadline has not passed by then).
    Queue,
    /// Cancel the running one (its compensations run) and start the new one.
    CancelRunning,
}

/// What to do with occurrences whose deadline passed while no scheduler ran (the machine was
/// down, every replica was). Whatever is not run is journaled as missed, never dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// Run the latest missed occurrence once (unless one on time runs anyway), as anacron does.
    #[default]
    Once,
    /// Run every missed occurrence, oldest first, up to `catch_up_limit` (the latest ones).
    All,
    /// Run none.
    Skip,
}

/// A schedule, as configured.
///
/// ```toml
/// cron = "30 2 * * SUN"          # minute hour day-of-month month day-of-week (L, W, # allowed)
/// time_zone = "Europe/Berlin"    # IANA name; default UTC
/// jitter = "5m"                  # start up to 5 min late, the same delay on every replica
/// deadline = "1h"                # not started by then: missed (default: the next occurrence)
/// overlap = "skip"               # or "queue", "cancel-running"
/// catch_up = "once"              # or "all", "skip"
/// catch_up_limit = 24            # with "all": at most this many missed occurrences run
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A cron pattern (5 fields, or 6 with seconds first; `@daily` and friends). Day of week
    /// 0–7 (Sunday is 0 and 7); `L` (last), `W` (nearest weekday), `#` (nth weekday).
    pub cron: String,
    /// The IANA time zone the pattern is read in. Occurrences in a DST gap run at the first
    /// instant after it; a time repeated by DST runs once.
    pub time_zone: String,
    /// Up to this much delay added to each start, derived from the schedule's name and the
    /// occurrence, so every replica computes the same start. Spreads load; default none.
    #[serde(with = "human_duration")]
    pub jitter: Duration,
    /// How long after its time an occurrence may still start; `None`: until the next one.
    #[serde(with = "human_duration::option")]
    pub deadline: Option<Duration>,
    /// When the previous run is still going.
    pub overlap: Overlap,
    /// Occurrences missed while no scheduler ran.
    pub catch_up: CatchUp,
    /// With `catch_up = "all"`: the most missed occurrences run, the latest ones. Default 24.
    pub catch_up_limit: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            cron: "@daily".into(),
            time_zone: "UTC".into(),
            jitter: Duration::ZERO,
            deadline: None,
            overlap: Overlap::Skip,
            catch_up: CatchUp::Once,
            catch_up_limit: 24,
        }
    }
}

/// The most missed occurrences `catch_up = "all"` may run.
pub const MAX_CATCH_UP: u32 = 1000;
/// The longest jitter and deadline.
pub const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

impl RunbookConfig for ScheduleConfig {
    fn validate(&self) -> Result<()> {
        Schedule::new(self.clone()).map(|_| ())
    }
}

/// A compiled schedule: the config, its parsed pattern and time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: ScheduleConfig,
    cron: croner::Cron,
    zone: chrono_tz::Tz,
    /// Occurrences fall this much before the pattern's times (announcements ahead of them).
    lead: chrono::Duration,
}

/// The occurrences a tick must act on: those to run, those missed, and how far it decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Occurrences to run now, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// Occurrences that will not run (deadline passed, not caught up), oldest first.
    pub missed: Vec<DateTime<Utc>>,
    /// Every occurrence up to this instant is decided (in `run` or `missed`, or before
    /// `since`); the next tick starts after it.
    pub through: DateTime<Utc>,
}

impl Schedule {
    /// Parses and checks a config, naming the field at fault.
    pub fn new(config: ScheduleConfig) -> Result<Self> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(config.cron.trim())
            .map_err(|e| invalid("cron", format!("{:?}: {e}", config.cron)))?;
        let zone: chrono_tz::Tz = config.time_zone.parse().map_err(|_| {
            invalid(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone (e.g. \"UTC\", \"Europe/Berlin\")",
                    config.time_zone
                ),
            )
        })?;
        for (field, d) in [
            ("jitter", Some(config.jitter)),
            ("deadline", config.deadline),
        ] {
            if d.is_some_and(|d| d > MAX_DELAY) {
                return Err(invalid(field, "at most 366 days"));
            }
        }
        if config.deadline.is_some_and(|d| d.is_zero()) {
            return Err(invalid("deadline", "must be positive"));
        }
        if config.catch_up_limit == 0 || config.catch_up_limit > MAX_CATCH_UP {
            return Err(invalid(
                "catch_up_limit",
                format!("from 1 to {MAX_CATCH_UP}"),
            ));
        }
        let schedule = Self {
            config,
            cron,
            zone,
            lead: chrono::Duration::zero(),
        };
        // A pattern that never matches (31 February) is a config error, not a silent no-op.
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if probe
            .and_then(|t| schedule.next_after(t).ok().flatten())
            .is_none()
        {
            return Err(invalid(
                "cron",
                format!("{:?} never matches a date", schedule.config.cron),
            ));
        }
        Ok(schedule)
    }

    /// A schedule from a cron pattern in a time zone, with the other settings' defaults.
    pub fn cron(pattern: &str, time_zone: &str) -> Result<Self> {
        Self::new(ScheduleConfig {
            cron: pattern.into(),
            time_zone: time_zone.into(),
            ..ScheduleConfig::default()
        })
    }

    /// Its config.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The same occurrences, `lead` earlier, each with a deadline of `lead` (an announcement
    /// that would come after what it announces is missed instead); jitter is dropped.
    pub fn earlier_by(&self, lead: Duration) -> Result<Self> {
        if lead.is_zero() || lead > MAX_DELAY {
            return Err(invalid("lead", "from 1 s to 366 days"));
        }
        let lead_chrono =
            chrono::Duration::from_std(lead).map_err(|_| invalid("lead", "too long"))?;
        let mut s = self.clone();
        s.lead = self.lead + lead_chrono;
        s.config.jitter = Duration::ZERO;
        s.config.deadline = Some(lead);
        Ok(s)
    }

    /// How much earlier than the pattern's times its occurrences fall (zero but for
    /// [`earlier_by`](Self::earlier_by)).
    pub fn lead(&self) -> Duration {
        self.lead.to_std().unwrap_or(Duration::ZERO)
    }

    /// The first occurrence strictly after `t`; `None` when there is none left (a pattern
    /// limited to past years, or beyond the year 9999).
    pub fn next_after(&self, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let Some(t) = t.checked_add_signed(self.lead) else {
            return Ok(None);
        };
        let local = t.with_timezone(&self.zone);
        match self.cron.find_next_occurrence(&local, false) {
            Ok(next) => Ok(next.with_timezone(&Utc).checked_sub_signed(self.lead)),
            Err(croner::errors::CronError::TimeSearchLimitExceeded) => Ok(None),
            Err(e) => Err(Error::invalid_input(
                "schedule",
                "next_after",
                "cron",
                e.to_string(),
            )),
        }
    }

    /// The last occurrence at or before `t`; `None` when there is none (a pattern limited to
    /// later years, or before the year 1).
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let Some(t) = t.checked_add_signed(self.lead) else {
            return Ok(None);
        };
        let local = t.with_timezone(&self.zone);
        match self.cron.find_previous_occurrence(&local, true) {
            Ok(prev) => Ok(prev.with_timezone(&Utc).checked_sub_signed(self.lead)),
            Err(croner::errors::CronError::TimeSearchLimitExceeded) => Ok(None),
            Err(e) => Err(Error::invalid_input(
                "schedule",
                "last_at_or_before",
                "cron",
                e.to_string(),
            )),
        }
    }

    /// When an occurrence starts: its time plus its jitter, which depends only on `name`
    /// and the occurrence, so every replica agrees.
    pub fn start_of(&self, name: &str, occurrence: DateTime<Utc>) -> DateTime<Utc> {
        let jitter = self.config.jitter.as_millis() as u64;
        if jitter == 0 {
            return occurrence;
        }
        let key = name
            .bytes()
            .chain(occurrence.timestamp().to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let delay = chrono::Duration::milliseconds((key % jitter) as i64);
        occurrence.checked_add_signed(delay).unwrap_or(occurrence)
    }

    /// The last instant an occurrence may start: its time plus `deadline`, or the next
    /// occurrence when no deadline is set (and, with jitter, never before its own start).
    pub fn deadline_of(&self, name: &str, occurrence: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let end = match self.config.deadline {
            Some(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| occurrence.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            None => self
                .next_after(occurrence)?
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        Ok(end.max(self.start_of(name, occurrence)))
    }

    /// What a tick at `now` must do with the occurrences after `since`, looking at no more
    /// than `max` of them (a later tick goes on from [`Due::through`]).
    ///
    /// An occurrence whose start (with jitter) is still ahead waits, and so do all after it.
    /// One whose deadline has not passed runs; the others were missed while no scheduler
    /// ran and the catch-up policy picks which of them run anyway.
    pub fn due(
        &self,
        name: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Due> {
        let (mut on_time, mut late) = (Vec::new(), Vec::new());
        let mut through = since;
        let mut cursor = since;
        while on_time.len() + late.len() < max {
            let Some(o) = self.next_after(cursor)? else {
                break;
            };
            if o > now || self.start_of(name, o) > now {
                break;
            }
            if now <= self.deadline_of(name, o)? {
                on_time.push(o);
            } else {
                late.push(o);
            }
            (cursor, through) = (o, o);
        }
        let limit = self.config.catch_up_limit as usize;
        let caught_up = match self.config.catch_up {
            CatchUp::Skip => 0,
            CatchUp::Once if on_time.is_empty() => late.len().min(1),
            CatchUp::Once => 0,
            CatchUp::All => late.len().min(limit),
        };
        let missed = late.len() - caught_up;
        let mut run: Vec<_> = late.split_off(missed);
        run.extend(on_time);
        Ok(Due {
            run,
            missed: late,
            through,
        })
    }
}
