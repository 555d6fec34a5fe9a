//! The escalation matrix: which level is told about an incident, of which priorities, and when
//! — at once, when nobody acknowledges it in time, when it stays unresolved, or when a metric
//! crosses a line while it is open.
//!
//! A notification router's escalation levels become such rules with
//! `ops_notify::NotifyRouter::incident_response`, so one matrix drives both.
//!
//! ```toml
//! [[escalation]]              # seeds 000 and 001: critical goes straight to leadership
//! level = "leadership"
//! priorities = ["P0"]
//! when = "declared"
//!
//! [[escalation]]              # seed 003: L2 after 15 minutes without an acknowledgement
//! level = "senior"
//! when = "unacknowledged"
//! after = "15m"
//!
//! [[escalation]]              # seed 000: cannot resolve in 1 hour → team lead
//! level = "team-lead"
//! when = "unresolved"
//! after = "1h"
//!
//! [[escalation]]              # seed 000: cost exceeds $500/day → finance
//! level = "finance"
//! when = "metric"
//! metric = "named"
//! name = "daily_cost_usd"
//! above = 500
//! window = "24h"
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::super::config::{MAX_WAIT, at_most, human_duration, invalid, positive};
use crate::Result;
use crate::contracts::{
    Incident, Metric, MetricQuery, MetricReading, MetricsSource, Priority, TimeWindow,
};

/// When a level is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case")]
pub enum Trigger {
    /// As soon as the incident is declared.
    Declared,
    /// Nobody acknowledged it this long after it was declared.
    Unacknowledged {
        /// How long.
        #[serde(with = "human_duration")]
        after: Duration,
    },
    /// It is still open this long after it was declared, acknowledged or not.
    Unresolved {
        /// How long.
        #[serde(with = "human_duration")]
        after: Duration,
    },
    /// While it is open, `metric` over `window` reads above `above`.
    Metric {
        /// What to read (`metric = "named"`, `name = "daily_cost_usd"`).
        #[serde(flatten)]
        metric: Metric,
        /// The line.
        above: f64,
        /// Over how long.
        #[serde(with = "human_duration")]
        window: Duration,
    },
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRule {
    /// The level told (a name given to [`super::IncidentResponse::level`]).
    pub level: String,
    /// The priorities it applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<Priority>,
    /// When.
    #[serde(flatten)]
    pub when: Trigger,
}

impl EscalationRule {
    /// A rule for every priority.
    pub fn new(level: impl Into<String>, when: Trigger) -> Self {
        Self {
            level: level.into(),
            priorities: Vec::new(),
            when,
        }
    }

    /// The same rule, for `priorities` only.
    pub fn only(mut self, priorities: impl IntoIterator<Item = Priority>) -> Self {
        self.priorities = priorities.into_iter().collect();
        self
    }

    /// Whether it applies to `priority`.
    pub fn applies_to(&self, priority: Priority) -> bool {
        self.priorities.is_empty() || self.priorities.contains(&priority)
    }

    /// Checks durations and the metric; `at` is the rule's field path.
    pub(super) fn validate(&self, at: &str) -> Result<()> {
        if self.level.trim().is_empty() {
            return Err(invalid(&format!("{at}.level"), "must name a level"));
        }
        match &self.when {
            Trigger::Declared => Ok(()),
            Trigger::Unacknowledged { after } | Trigger::Unresolved { after } => {
                positive(&format!("{at}.after"), *after)?;
                at_most(&format!("{at}.after"), *after, MAX_WAIT)
            }
            Trigger::Metric {
                metric,
                above,
                window,
            } => {
                positive(&format!("{at}.window"), *window)?;
                at_most(&format!("{at}.window"), *window, MAX_WAIT)?;
                if !above.is_finite() {
                    return Err(invalid(&format!("{at}.above"), "must be a number"));
                }
                let q = MetricQuery {
                    metric: metric.clone(),
                    window: TimeWindow::new(DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH)?,
                    release: None,
                    min_samples: 1,
                };
                q.validate()
                    .map_err(|e| invalid(&format!("{at}.metric"), e.to_string()))
            }
        }
    }

    /// Why the level is told now, or `None` if not (yet). Only metric rules read anything.
    pub(super) async fn fires(
        &self,
        inc: &Incident,
        now: DateTime<Utc>,
        metrics: Option<&dyn MetricsSource>,
    ) -> Result<Option<String>> {
        let since = |after: &Duration| {
            chrono::Duration::from_std(*after)
                .ok()
                .is_some_and(|after| now - inc.declared_at >= after)
        };
        Ok(match &self.when {
            Trigger::Declared => Some("declared".into()),
            Trigger::Unacknowledged { after } if inc.acknowledged.is_none() && since(after) => {
                Some(format!(
                    "not acknowledged within {}",
                    human_duration::format(*after)
                ))
            }
            Trigger::Unresolved { after } if since(after) => Some(format!(
                "not resolved within {}",
                human_duration::format(*after)
            )),
            Trigger::Metric {
                metric,
                above,
                window,
            } => {
                let Some(metrics) = metrics else {
                    return Ok(None);
                };
                let q = MetricQuery {
                    metric: metric.clone(),
                    window: TimeWindow::ending_at(now, *window)?,
                    release: None,
                    min_samples: 1,
                };
                match metrics.read(&q).await? {
                    MetricReading::Value { value, .. } if value > *above => Some(format!(
                        "{} at {value} over {} (above {above})",
                        metric_name(metric),
                        human_duration::format(*window)
                    )),
                    _ => None,
                }
            }
            _ => None,
        })
    }
}

fn metric_name(m: &Metric) -> String {
    match m {
        Metric::Named { name } => name.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The ladder used when no matrix is configured: level `i` is told when nobody acknowledged
/// within `i` response times of the incident's priority.
pub(super) fn default_ladder(levels: &[String], response_time: Duration) -> Vec<EscalationRule> {
    levels
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, name)| {
            let after = response_time.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
            EscalationRule::new(name.clone(), Trigger::Unacknowledged { after })
        })
        .collect()
}
