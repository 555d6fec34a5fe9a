//! Change control as data: maintenance windows, freezes and the "stop the line" switch, decided
//! by the [`Runner`](super::Runner) before every run that changes something.
//!
//! Switches set at run time (the line stopped, a freeze set or lifted) are journal events under
//! the reserved run id [`CHANGE_CONTROL_RUN`], each with who set it and why: every replica
//! sharing the journal sees them, and the journal is their history. Each decision on a run is
//! journaled in that run ([`super::EventKind::ChangeDecided`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Category, EventKind, Journal, JournalEvent, JournalFilter};
use crate::calendar::{Window, WindowConfig};
use crate::clock::SharedClock;
use crate::config::{RunbookConfig, invalid};
use crate::{Error, ErrorKind, Result};

/// The journal run id under which change-control switches are recorded (no run may use it).
pub const CHANGE_CONTROL_RUN: &str = "change-control";

/// What a runbook says about change control.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRules {
    /// Runs while the line is stopped or a freeze is on. `None`: rollbacks and incident
    /// procedures are emergencies, the rest are not (a rollback is never frozen).
    pub emergency: Option<bool>,
    /// Runs only inside this window.
    pub window: Option<WindowRule>,
}

/// "Runs only inside window W", and what to do outside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRule {
    /// The window's name in the [`ChangeCalendarConfig`].
    pub window: String,
    /// Outside it.
    pub outside: OutsideWindow,
}

/// What a window-only run does outside its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideWindow {
    /// Waits (holding its target's run lock) until the window opens, then decides again.
    #[default]
    Wait,
    /// Fails at once, saying when the window opens next.
    Refuse,
}

impl ChangeRules {
    /// Whether a runbook of `category` with these rules may run through freezes.
    pub fn is_emergency(&self, category: Category) -> bool {
        self.emergency
            .unwrap_or(matches!(category, Category::Rollback | Category::Incident))
    }
}

/// A freeze: no change (but emergencies) from `from` until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// Its name (a later freeze of the same name replaces it).
    pub name: String,
    /// When it begins.
    pub from: DateTime<Utc>,
    /// When it ends (exclusive).
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// Windows and planned freezes, as configured.
///
/// ```toml
/// [windows.db-maintenance]
/// opens = "0 2 * * SUN"
/// lasts = "2h"
///
/// [[freezes]]
/// name = "year-end"
/// from = "2026-12-20T00:00:00Z"
/// until = "2027-01-04T00:00:00Z"
/// reason = "year-end trading"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeCalendarConfig {
    /// Recurring windows by name.
    pub windows: BTreeMap<String, WindowConfig>,
    /// Planned freezes (set by "config" in decisions).
    pub freezes: Vec<Freeze>,
}

impl RunbookConfig for ChangeCalendarConfig {
    fn validate(&self) -> Result<()> {
        for (name, w) in &self.windows {
            Window::from_config(name, w.clone())?;
        }
        for (i, f) in self.freezes.iter().enumerate() {
            check_freeze(f).map_err(|e| match e.kind() {
                ErrorKind::InvalidInput { field, reason } => {
                    invalid(&format!("freezes[{i}].{field}"), reason.clone())
                }
                _ => e,
            })?;
        }
        Ok(())
    }
}

fn check_freeze(f: &Freeze) -> Result<()> {
    crate::contracts::validate_name("schedule", "freeze", "name", &f.name)
        .map_err(|_| invalid("name", "a non-empty name without control characters"))?;
    if f.until <= f.from {
        return Err(invalid("until", "must be after `from`"));
    }
    Ok(())
}

/// A change-control switch set at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "switch", rename_all = "snake_case")]
pub enum ChangeSwitch {
    /// Every mutating run but emergencies is refused from now on.
    LineStopped,
    /// The line runs again.
    LineRestarted,
    /// A freeze was set (or replaced).
    FreezeSet {
        /// The freeze.
        freeze: Freeze,
    },
    /// A freeze was lifted before its end.
    FreezeLifted {
        /// Its name.
        name: String,
    },
}

/// Who set a switch, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBy {
    /// Who.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// The switches in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeState {
    /// Set when the line is stopped.
    pub line_stopped: Option<SetBy>,
    /// Freezes set (planned ones from config, by "config"), whether or not they are on now.
    pub freezes: Vec<(Freeze, SetBy)>,
}

/// What change control decided about one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing stands in its way.
    Allowed,
    /// The line is stopped or a freeze is on, but the run is an emergency.
    Exempt,
    /// Outside its window: waits until it opens.
    Wait,
    /// Not now.
    Refused,
}

/// A decision, journaled in the run it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDecision {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule that decided: "line stopped", "freeze year-end", "window db-maintenance", or
    /// "no rule applies".
    pub rule: String,
    /// Who set that rule (`config` for configured ones), if anyone.
    pub set_by: Option<String>,
    /// Why the rule was set, or why the run waits.
    pub reason: Option<String>,
    /// When the rule stops applying: the freeze ends, the window opens (or closes, when open).
    pub until: Option<DateTime<Utc>>,
}

impl ChangeDecision {
    fn allowed(rule: impl Into<String>, until: Option<DateTime<Utc>>) -> Self {
        Self {
            verdict: Verdict::Allowed,
            rule: rule.into(),
            set_by: None,
            reason: None,
            until,
        }
    }

    /// One line: "refused: freeze year-end set by alice (year-end trading) until …".
    pub fn describe(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Allowed => "allowed",
            Verdict::Exempt => "exempt (emergency)",
            Verdict::Wait => "waits",
            Verdict::Refused => "refused",
        };
        let mut s = format!("{verdict}: {}", self.rule);
        if let Some(by) = &self.set_by {
            s.push_str(&format!(" set by {by}"));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(" ({r})"));
        }
        if let Some(u) = self.until {
            s.push_str(&format!(" until {}", u.format("%Y-%m-%d %H:%M UTC")));
        }
        s
    }
}

/// Windows, freezes and the stop-the-line switch, shared by every runner given it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::clock::system_clock;
/// use ops_core::engine::{Category, MemoryJournal};
/// use ops_core::schedule::{ChangeCalendarConfig, ChangeControl, ChangeRules, Verdict};
/// let journal = Arc::new(MemoryJournal::new());
/// let control = ChangeControl::new(ChangeCalendarConfig::default(), journal, system_clock())?;
/// control.stop_the_line("alice", "payments are double-charging").await?;
/// let deploy = control.decide(&ChangeRules::default(), Category::Deploy).await?;
/// assert_eq!(deploy.verdict, Verdict::Refused);
/// assert_eq!(deploy.set_by.as_deref(), Some("alice"));
/// let rollback = control.decide(&ChangeRules::default(), Category::Rollback).await?;
/// assert_eq!(rollback.verdict, Verdict::Exempt);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChangeControl {
    windows: BTreeMap<String, Window>,
    planned: Vec<Freeze>,
    journal: Arc<dyn Journal>,
    clock: SharedClock,
}

impl std::fmt::Debug for ChangeControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeControl")
            .field("windows", &self.windows.keys().collect::<Vec<_>>())
            .field("planned", &self.planned)
            .finish_non_exhaustive()
    }
}

impl ChangeControl {
    /// Change control over `config`, its switches kept in `journal`, on `clock`.
    pub fn new(
        config: ChangeCalendarConfig,
        journal: Arc<dyn Journal>,
        clock: SharedClock,
    ) -> Result<Self> {
        config.validate()?;
        let windows = config
            .windows
            .iter()
            .map(|(n, w)| Ok((n.clone(), Window::from_config(n, w.clone())?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            windows,
            planned: config.freezes,
            journal,
            clock,
        })
    }

    /// The window named `name`.
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.get(name)
    }

    /// Every window.
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.values()
    }

    /// Stops the line: every mutating run but emergencies is refused until
    /// [`restart_the_line`](Self::restart_the_line).
    pub async fn stop_the_line(&self, by: &str, reason: &str) -> Result<()> {
        self.set(ChangeSwitch::LineStopped, by, reason).await
    }

    /// Restarts the line.
    pub async fn restart_the_line(&self, by: &str, reason: &str) -> Result<()> {
        self.set(ChangeSwitch::LineRestarted, by, reason).await
    }

    /// Sets (or replaces) a freeze.
    pub async fn freeze(&self, freeze: Freeze, by: &str) -> Result<()> {
        check_freeze(&freeze)?;
        let reason = freeze.reason.clone();
        self.set(ChangeSwitch::FreezeSet { freeze }, by, &reason)
            .await
    }

    /// Lifts the freeze `name` (set at run time or planned in config) before its end.
    pub async fn lift_freeze(&self, name: &str, by: &str, reason: &str) -> Result<()> {
        let state = self.state().await?;
        if !state.freezes.iter().any(|(f, _)| f.name == name) {
            return Err(Error::new(
                "schedule",
                "lift_freeze",
                ErrorKind::NotFound {
                    resource: format!("freeze {name}"),
                },
            ));
        }
        self.set(ChangeSwitch::FreezeLifted { name: name.into() }, by, reason)
            .await
    }

    async fn set(&self, switch: ChangeSwitch, by: &str, reason: &str) -> Result<()> {
        for (field, value) in [("by", by), ("reason", reason)] {
            if value.trim().is_empty() {
                return Err(Error::invalid_input(
                    "schedule",
                    "change-control",
                    field,
                    "say who sets it and why",
                ));
            }
        }
        let seq = self.switches().await?.len() as u64;
        let event = JournalEvent {
            seq,
            run_id: CHANGE_CONTROL_RUN.into(),
            runbook: CHANGE_CONTROL_RUN.into(),
            target: "*".into(),
            at: self.clock.now(),
            kind: EventKind::ChangeControlSet {
                switch,
                by: by.into(),
                reason: reason.into(),
            },
        };
        tracing::warn!(by, reason, switch = ?event.kind, "change control set");
        self.journal.append(&event).await
    }

    async fn switches(&self) -> Result<Vec<JournalEvent>> {
        self.journal
            .events(&JournalFilter::run(CHANGE_CONTROL_RUN))
            .await
    }

    /// The switches in force, replayed from the journal over the planned freezes.
    pub async fn state(&self) -> Result<ChangeState> {
        let mut state = ChangeState {
            line_stopped: None,
            freezes: self
                .planned
                .iter()
                .map(|f| {
                    let set = SetBy {
                        by: "config".into(),
                        at: f.from,
                        reason: f.reason.clone(),
                    };
                    (f.clone(), set)
                })
                .collect(),
        };
        for e in self.switches().await? {
            let EventKind::ChangeControlSet { switch, by, reason } = e.kind else {
                continue;
            };
            let set = SetBy {
                by,
                at: e.at,
                reason,
            };
            match switch {
                ChangeSwitch::LineStopped => state.line_stopped = Some(set),
                ChangeSwitch::LineRestarted => state.line_stopped = None,
                ChangeSwitch::FreezeSet { freeze } => {
                    state.freezes.retain(|(f, _)| f.name != freeze.name);
                    state.freezes.push((freeze, set));
                }
                ChangeSwitch::FreezeLifted { name } => {
                    state.freezes.retain(|(f, _)| f.name != name)
                }
            }
        }
        Ok(state)
    }

    /// Decides now whether a mutating runbook of `category` with `rules` may run.
    ///
    /// In order: the stopped line, then a freeze in force (both refuse all but emergencies),
    /// then the runbook's window (outside it: wait or refuse, as the rule says).
    pub async fn decide(&self, rules: &ChangeRules, category: Category) -> Result<ChangeDecision> {
        let now = self.clock.now();
        let state = self.state().await?;
        let emergency = rules.is_emergency(category);
        let blocked = |rule: String, set: &SetBy, until: Option<DateTime<Utc>>| ChangeDecision {
            verdict: if emergency {
                Verdict::Exempt
            } else {
                Verdict::Refused
            },
            rule,
            set_by: Some(set.by.clone()),
            reason: Some(set.reason.clone()),
            until,
        };
        if let Some(set) = &state.line_stopped {
            return Ok(blocked("line stopped".into(), set, None));
        }
        if let Some((f, set)) = state
            .freezes
            .iter()
            .find(|(f, _)| f.from <= now && now < f.until)
        {
            return Ok(blocked(format!("freeze {}", f.name), set, Some(f.until)));
        }
        let Some(rule) = &rules.window else {
            return Ok(ChangeDecision::allowed("no rule applies", None));
        };
        let window = self.windows.get(&rule.window).ok_or_else(|| {
            Error::invalid_input(
                "schedule",
                "change-control",
                "window",
                format!(
                    "no window {:?} is configured (configured: {:?})",
                    rule.window,
                    self.windows.keys().collect::<Vec<_>>()
                ),
            )
        })?;
        if let Some(open) = window.open_at(now)? {
            return Ok(ChangeDecision::allowed(
                format!("window {}", window.name()),
                Some(open.until),
            ));
        }
        let next = window.next_open(now)?;
        Ok(ChangeDecision {
            verdict: match (rule.outside, next) {
                (OutsideWindow::Wait, Some(_)) => Verdict::Wait,
                _ => Verdict::Refused,
            },
            rule: format!("window {}", window.name()),
            set_by: Some("config".into()),
            reason: Some(format!("runs only inside {}", window.describe())),
            until: next,
        })
    }
}
