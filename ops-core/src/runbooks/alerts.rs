//! Threshold alerts: a table of metrics with warning and critical levels, evaluated into
//! alerts, with maintenance silences that start and expire.
//!
//! Replaces the seeds' alert tables (error rate above 1 % / 5 %, p95 latency above 500 ms / 2 s,
//! CPU above 80 % *for more than 15 minutes*, active users *below* 5 for an hour, database
//! connections above 80 / 95 % of the pool, queue depth) and "silence alerts during the
//! maintenance window". An alert that was notified and stops firing is notified as resolved.

use crate::calendar::Window;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::config::{human_duration, invalid, ordered, positive};
use crate::Result;
use crate::contracts::{
    Metric, MetricQuery, MetricReading, MetricsSource, Notification, NotificationEvent, Notifier,
    Severity, TimeWindow,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};

/// Which side of the thresholds is bad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Above the level fires (error rate, latency, CPU): `warning < critical`.
    #[default]
    Above,
    /// Below the level fires (active users, success ratio, open connections):
    /// `warning > critical`.
    Below,
}

/// The most consecutive windows one `for` duration may span (`for / window`), so a rule reads
/// at most this many windows per evaluation.
pub const MAX_HOLD_WINDOWS: u64 = 96;

/// One row of the alert table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Its name (`error-rate`, `db-connections`).
    pub rule: String,
    /// What to read: `metric = "cpu_utilisation"`, or `metric = "named"` with `name =
    /// "queue_depth"` (see [`Metric`]).
    #[serde(flatten)]
    pub metric: Metric,
    /// Which side is bad (default above).
    #[serde(default)]
    pub direction: Direction,
    /// Beyond this: a warning (a rule may have only one of the two levels, as most seed
    /// alerts do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// Beyond this: critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Over how long one reading is taken (default 5 min).
    #[serde(default = "five_minutes", with = "human_duration")]
    pub window: Duration,
    /// Fires only when every window over this long breaches (`for = "15m"`: "CPU above 80 %
    /// for more than 15 minutes"). The readings are taken over consecutive windows ending now,
    /// `ceil(for / window)` of them (at most [`MAX_HOLD_WINDOWS`]), so the judgement comes from
    /// the data and survives a restart. The severity is the mildest of those windows.
    #[serde(
        default,
        rename = "for",
        with = "human_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold: Option<Duration>,
    /// Fewer samples than this: no judgement (default 1).
    #[serde(default = "one")]
    pub min_samples: u64,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn one() -> u64 {
    1
}

impl AlertRule {
    /// A rule over the default 5-minute window.
    pub fn new(name: &str, metric: Metric, warning: f64, critical: f64) -> Self {
        Self {
            rule: name.into(),
            metric,
            direction: Direction::Above,
            warning: Some(warning),
            critical: Some(critical),
            window: five_minutes(),
            hold: None,
            min_samples: 1,
        }
    }

    /// A rule with a critical level only (seed 000: "error rate > 5 % over 10 minutes").
    pub fn critical_only(name: &str, metric: Metric, critical: f64) -> Self {
        Self {
            warning: None,
            ..Self::new(name, metric, critical, critical)
        }
    }

    /// A rule with a warning level only (seed 000: "CPU > 80 % for > 15 minutes").
    pub fn warning_only(name: &str, metric: Metric, warning: f64) -> Self {
        Self {
            critical: None,
            ..Self::new(name, metric, warning, warning)
        }
    }

    /// The same rule firing below its levels (`warning > critical`).
    pub fn below(mut self) -> Self {
        self.direction = Direction::Below;
        self
    }

    /// The same rule, firing only when it holds for `hold`.
    pub fn holding_for(mut self, hold: Duration) -> Self {
        self.hold = Some(hold);
        self
    }

    /// The same rule read over `window`.
    pub fn over(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The severity of one reading.
    pub fn judge(&self, value: f64) -> Option<Severity> {
        let beyond = |level: Option<f64>| match (self.direction, level) {
            (_, None) => false,
            (Direction::Above, Some(level)) => value > level,
            (Direction::Below, Some(level)) => value < level,
        };
        if beyond(self.critical) {
            Some(Severity::Critical)
        } else if beyond(self.warning) {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    /// How many consecutive windows are read: `ceil(for / window)`, at least one.
    fn windows_read(&self) -> u64 {
        let window = self.window.as_nanos().max(1);
        self.hold.map_or(1, |h| {
            u64::try_from(h.as_nanos().div_ceil(window))
                .unwrap_or(u64::MAX)
                .max(1)
        })
    }
}

/// Alerts held back from `from` (default: at once) until `until` (a maintenance window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// The rule silenced, or `*` for all.
    pub rule: String,
    /// When the silence starts; written ahead of a window, it mutes nothing before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// When the silence ends.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

impl Silence {
    /// Whether it holds `rule` back at `now`.
    pub fn covers(&self, rule: &str, now: DateTime<Utc>) -> bool {
        (self.rule == "*" || self.rule == rule)
            && self.from.is_none_or(|from| from <= now)
            && now < self.until
    }
}

/// Settings of the threshold alerts.
///
/// ```toml
/// [[rules]]
/// rule = "cpu"
/// metric = "cpu_utilisation"
/// warning = 0.7
/// critical = 0.9
///
/// [[rules]]
/// rule = "queue"
/// metric = "named"
/// name = "queue_depth"
/// warning = 1000
/// critical = 5000
/// window = "10m"
///
/// [[rules]]
/// rule = "active-users"
/// metric = "named"
/// name = "active_users"
/// direction = "below"
/// warning = 5
/// critical = 1
/// for = "1h"
///
/// [[silences]]
/// rule = "*"
/// from = "2026-12-06T02:00:00Z"
/// until = "2026-12-06T04:00:00Z"
/// reason = "database upgrade"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The table (default: the seeds' thresholds).
    pub rules: Vec<AlertRule>,
    /// Maintenance silences.
    pub silences: Vec<Silence>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let named = |n: &str| Metric::Named { name: n.into() };
        Self {
            rules: vec![
                AlertRule::new("error-rate", Metric::ErrorRatio, 0.01, 0.05),
                AlertRule::new(
                    "latency-p95",
                    Metric::LatencyPercentile { percentile: 95.0 },
                    500.0,
                    2000.0,
                ),
                AlertRule::new("cpu", Metric::CpuUtilisation, 0.70, 0.90),
                AlertRule::new("memory", Metric::MemoryUtilisation, 0.80, 0.95),
                AlertRule::new("db-connections", named("db_connections_ratio"), 0.80, 0.95),
                AlertRule::new("queue-depth", named("queue_depth"), 1000.0, 5000.0),
            ],
            silences: Vec::new(),
        }
    }
}

impl RunbookConfig for AlertsConfig {
    fn validate(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(invalid("rules", "needs at least one rule"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.rule.trim().is_empty() || !names.insert(r.rule.as_str()) {
                return Err(invalid(
                    &format!("rules[{i}].rule"),
                    "must be present and unique",
                ));
            }
            let field = format!("rules[{i}].warning");
            for (name, level) in [("warning", r.warning), ("critical", r.critical)] {
                if level.is_some_and(|l| !l.is_finite()) {
                    return Err(invalid(&format!("rules[{i}].{name}"), "must be a number"));
                }
            }
            match (r.direction, r.warning, r.critical) {
                (_, None, None) => {
                    return Err(invalid(
                        &field,
                        "give a warning level, a critical level, or both",
                    ));
                }
                (Direction::Above, Some(w), Some(c)) => ordered(&field, w, c)?,
                (Direction::Below, Some(w), Some(c)) => ordered(&field, c, w).map_err(|_| {
                    invalid(
                        &field,
                        format!(
                            "a rule firing below its levels needs warning {w} above critical {c}"
                        ),
                    )
                })?,
                _ => {}
            }
            positive(&format!("rules[{i}].window"), r.window)?;
            if let Some(hold) = r.hold {
                positive(&format!("rules[{i}].for"), hold)?;
                if r.windows_read() > MAX_HOLD_WINDOWS {
                    return Err(invalid(
                        &format!("rules[{i}].for"),
                        format!(
                            "spans more than {MAX_HOLD_WINDOWS} windows of {}: widen the window",
                            human_duration::format(r.window)
                        ),
                    ));
                }
            }
            let q = MetricQuery {
                metric: r.metric.clone(),
                window: TimeWindow::new(DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH)?,
                release: None,
                min_samples: 1,
            };
            q.validate()
                .map_err(|e| invalid(&format!("rules[{i}].metric"), e.to_string()))?;
            let ratio = matches!(
                r.metric,
                Metric::ErrorRatio | Metric::CpuUtilisation | Metric::MemoryUtilisation
            );
            for (name, level) in [("critical", r.critical), ("warning", r.warning)] {
                if ratio && level.is_some_and(|l| l > 1.0) {
                    return Err(invalid(
                        &format!("rules[{i}].{name}"),
                        "is a ratio: at most 1 (write 90 % as 0.9)",
                    ));
                }
            }
        }
        for (i, s) in self.silences.iter().enumerate() {
            if s.from.is_some_and(|from| from >= s.until) {
                return Err(invalid(
                    &format!("silences[{i}].from"),
                    "must be before `until`",
                ));
            }
            if s.rule != "*" && !self.rules.iter().any(|r| r.rule == s.rule) {
                return Err(invalid(
                    &format!("silences[{i}].rule"),
                    format!("no rule named {}", s.rule),
                ));
            }
        }
        Ok(())
    }
}

/// One evaluated rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule.
    pub rule: String,
    /// Warning or critical; `None` when within limits or without data.
    pub severity: Option<Severity>,
    /// The value read, when there was enough data.
    pub value: Option<f64>,
    /// Held back by a silence (the reason).
    pub silenced: Option<String>,
    /// It was notified as firing and no longer fires: notified as resolved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolved: bool,
}

/// Reads every rule's metric at `now` and judges it.
pub async fn evaluate_alerts(
    metrics: &dyn MetricsSource,
    config: &AlertsConfig,
    now: DateTime<Utc>,
) -> Result<Vec<Alert>> {
    config.validate()?;
    let mut out = Vec::with_capacity(config.rules.len());
    for r in &config.rules {
        let (value, severity) = judge_rule(metrics, r, now).await?;
        let silenced = config
            .silences
            .iter()
            .find(|s| s.covers(&r.rule, now))
            .filter(|_| severity.is_some())
            .map(|s| s.reason.clone());
        out.push(Alert {
            rule: r.rule.clone(),
            severity,
            value,
            silenced,
            resolved: false,
        });
    }
    Ok(out)
}

/// The newest window's value, and the mildest severity over the windows `for` spans (none
/// when any of them breaches nothing or has too little data).
async fn judge_rule(
    metrics: &dyn MetricsSource,
    rule: &AlertRule,
    now: DateTime<Utc>,
) -> Result<(Option<f64>, Option<Severity>)> {
    let step =
        chrono::Duration::from_std(rule.window).map_err(|_| invalid("window", "is too long"))?;
    let (mut newest, mut mildest) = (None, None);
    let mut end = now;
    for i in 0..rule.windows_read() {
        let q = MetricQuery {
            metric: rule.metric.clone(),
            window: TimeWindow::ending_at(end, rule.window)?,
            release: None,
            min_samples: rule.min_samples,
        };
        let value = match metrics.read(&q).await? {
            MetricReading::Value { value, .. } => Some(value),
            MetricReading::InsufficientData { .. } => None,
        };
        if i == 0 {
            newest = value;
        }
        let Some(severity) = value.and_then(|v| rule.judge(v)) else {
            return Ok((newest, None));
        };
        mildest = Some(mildest.map_or(severity, |m: Severity| m.min(severity)));
        end = end
            .checked_sub_signed(step)
            .ok_or_else(|| invalid("for", "reaches before the start of time"))?;
    }
    Ok((newest, mildest))
}

/// The alerts a [`ThresholdAlerts`] has notified as firing, so that it can notify each one's
/// resolution once. Clones of one `ThresholdAlerts` share it.
///
/// It lives in memory: a process that restarts forgets what it fired and sends no resolution for
/// it, unless it was saved with [`AlertMemory::firing`] and given back with
/// [`AlertMemory::remembering`].
#[derive(Debug, Default)]
pub struct AlertMemory {
    firing: Mutex<BTreeMap<String, Severity>>,
}

impl AlertMemory {
    /// Remembers `firing` rules (saved from a previous process).
    pub fn remembering(firing: impl IntoIterator<Item = (String, Severity)>) -> Self {
        Self {
            firing: Mutex::new(firing.into_iter().collect()),
        }
    }

    /// The rules notified as firing and not resolved since, with their last severity.
    pub fn firing(&self) -> Vec<(String, Severity)> {
        self.lock()
            .iter()
            .map(|(rule, s)| (rule.clone(), *s))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Severity>> {
        // Each update is one insert or remove: a panicked holder leaves a consistent map.
        self.firing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks as resolved the remembered alerts whose newest reading no longer breaches (a rule
/// without data is not judged, so it is not resolved either).
fn mark_resolved(alerts: &mut [Alert], config: &AlertsConfig, memory: &AlertMemory) {
    let firing = memory.lock();
    for (a, r) in alerts.iter_mut().zip(&config.rules) {
        a.resolved = firing.contains_key(&a.rule)
            && a.severity.is_none()
            && a.value.is_some_and(|v| r.judge(v).is_none());
    }
}

/// Silences the firing alerts while a window is open.
fn silence_in_windows(alerts: &mut [Alert], windows: &[Window], now: DateTime<Utc>) -> Result<()> {
    for w in windows {
        let Some(open) = w.open_at(now)? else {
            continue;
        };
        let why = format!(
            "maintenance window {} until {}",
            w.describe(),
            open.until.format("%Y-%m-%d %H:%M UTC")
        );
        for a in alerts
            .iter_mut()
            .filter(|a| a.severity.is_some() && a.silenced.is_none())
        {
            a.silenced = Some(why.clone());
        }
    }
    Ok(())
}

/// Evaluates the table and notifies the alerts that fire and are not silenced.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryMetricsSource;
/// use ops_core::clock::{Clock, SystemClock};
/// use ops_core::contracts::{Metric, Severity};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{AlertsConfig, ThresholdAlerts, Procedure};
/// let m = Arc::new(MemoryMetricsSource::new("m"));
/// m.record_sample(SystemClock.now() - chrono::Duration::minutes(1), None, Metric::CpuUtilisation, 0.93)?;
/// let ops_core::runbooks::Finished { summary: alerts, .. } = ThresholdAlerts::new("api", m, AlertsConfig::default()).run(&Runner::new(), Mode::Execute).await?;
/// let cpu = alerts.unwrap().into_iter().find(|a| a.rule == "cpu").unwrap();
/// assert_eq!(cpu.severity, Some(Severity::Critical));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ThresholdAlerts {
    config: AlertsConfig,
    target: String,
    metrics: Arc<dyn MetricsSource>,
    notifier: Option<Arc<dyn Notifier>>,
    windows: Vec<Window>,
    memory: Arc<AlertMemory>,
}

impl ThresholdAlerts {
    /// Alerts for `target` from `metrics`.
    pub fn new(
        target: impl Into<String>,
        metrics: Arc<dyn MetricsSource>,
        config: AlertsConfig,
    ) -> Self {
        Self {
            config,
            target: target.into(),
            metrics,
            notifier: None,
            windows: Vec::new(),
            memory: Arc::default(),
        }
    }

    /// Uses `memory` for what was fired (to share it between instances, or restore it).
    pub fn memory(mut self, memory: Arc<AlertMemory>) -> Self {
        self.memory = memory;
        self
    }

    /// Where firing alerts go.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Silences every alert while one of `windows` is open (the maintenance windows of the
    /// change calendar, [`crate::schedule::ChangeControl::windows`]).
    pub fn silence_during(mut self, windows: impl IntoIterator<Item = Window>) -> Self {
        self.windows.extend(windows);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let (metrics, config) = (self.metrics.clone(), self.config.clone());
        let windows = self.windows.clone();
        let memory = self.memory.clone();
        let mut rb = Runbook::new("threshold-alerts", &self.target)
            .with_category(crate::engine::Category::Check);
        let evaluated: Output<Vec<Alert>> = rb.add_step(Step::read("evaluate", move |ctx| {
            let (metrics, config, now) = (metrics.clone(), config.clone(), ctx.clock().now());
            let (windows, memory) = (windows.clone(), memory.clone());
            Ok(Action::new(
                "MetricsSource::read",
                json!({ "rules": config.rules.len() }),
                async move {
                    let mut alerts = evaluate_alerts(metrics.as_ref(), &config, now).await?;
                    silence_in_windows(&mut alerts, &windows, now)?;
                    mark_resolved(&mut alerts, &config, &memory);
                    Ok(alerts)
                },
            ))
        }));
        if let Some(n) = self.notifier.clone() {
            let (target, memory) = (self.target.clone(), self.memory.clone());
            rb = rb.step(Step::mutate("notify", move |ctx| {
                let alerts = ctx.get(&evaluated)?;
                let to_send: Vec<Alert> = alerts
                    .into_iter()
                    .filter(|a| (a.severity.is_some() && a.silenced.is_none()) || a.resolved)
                    .collect();
                let (n, target, memory) = (n.clone(), target.clone(), memory.clone());
                let names: Vec<String> = to_send.iter().map(|a| a.rule.clone()).collect();
                Ok(Action::new(
                    "Notifier::send",
                    json!({ "alerts": names }),
                    async move {
                        for a in &to_send {
                            n.send(&alert_notification(&target, a, &memory)).await?;
                            // Remembered only once sent: a failed send is retried next time.
                            match a.severity {
                                Some(s) => memory.lock().insert(a.rule.clone(), s),
                                None => memory.lock().remove(&a.rule),
                            };
                        }
                        Ok(to_send.len())
                    },
                ))
            }));
        }
        Ok(rb)
    }
}

/// A firing alert as a trigger, a resolved one as the resolution of the same dedup key.
fn alert_notification(target: &str, a: &Alert, memory: &AlertMemory) -> Notification {
    let value = a.value.map_or("n/a".into(), |v| format!("{v:.4}"));
    let key = format!("alert/{target}/{}", a.rule);
    match a.severity {
        Some(severity) => {
            Notification::new(severity, format!("{target}: {} is {severity}", a.rule))
                .field("value", value)
                .dedup_key(key)
        }
        None => {
            let was = memory
                .lock()
                .get(&a.rule)
                .copied()
                .unwrap_or(Severity::Warning);
            Notification::new(was, format!("{target}: {} is resolved", a.rule))
                .event(NotificationEvent::Resolve)
                .field("value", value)
                .dedup_key(key)
        }
    }
}

impl super::Procedure for ThresholdAlerts {
    type Summary = Vec<Alert>;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Vec<Alert>> {
        report.output("evaluate")
    }
}
