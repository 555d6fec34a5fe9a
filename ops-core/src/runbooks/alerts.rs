//! Threshold alerts: a table of metrics with warning and critical levels, evaluated into
//! alerts, with maintenance silences that expire.
//!
//! Replaces the seeds' alert table (error rate above 1 % / 5 %, p95 latency above 500 ms / 2 s,
//! CPU above 70 / 90 %, memory above 80 / 95 %, database connections above 80 / 95 % of the
//! pool, queue depth) and "silence alerts during the maintenance window".

use crate::calendar::Window;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::config::{human_duration, invalid, ordered, positive};
use crate::Result;
use crate::contracts::{
    Metric, MetricQuery, MetricReading, MetricsSource, Notification, Notifier, Severity, TimeWindow,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};

/// One row of the alert table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Its name (`error-rate`, `db-connections`).
    pub rule: String,
    /// What to read: `metric = "cpu_utilisation"`, or `metric = "named"` with `name =
    /// "queue_depth"` (see [`Metric`]).
    #[serde(flatten)]
    pub metric: Metric,
    /// Above this: a warning.
    pub warning: f64,
    /// Above this: critical.
    pub critical: f64,
    /// Over how long (default 5 min).
    #[serde(default = "five_minutes", with = "human_duration")]
    pub window: Duration,
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
            warning,
            critical,
            window: five_minutes(),
            min_samples: 1,
        }
    }
}

/// Alerts held back until `until` (a maintenance window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// The rule silenced, or `*` for all.
    pub rule: String,
    /// When the silence ends.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
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
/// [[silences]]
/// rule = "*"
/// until = "2026-12-01T06:00:00Z"
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
            ordered(&format!("rules[{i}].warning"), r.warning, r.critical)?;
            positive(&format!("rules[{i}].window"), r.window)?;
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
            if ratio && r.critical > 1.0 {
                return Err(invalid(
                    &format!("rules[{i}].critical"),
                    "is a ratio: at most 1 (write 90 % as 0.9)",
                ));
            }
        }
        for (i, s) in self.silences.iter().enumerate() {
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
        let q = MetricQuery {
            metric: r.metric.clone(),
            window: TimeWindow::ending_at(now, r.window)?,
            release: None,
            min_samples: r.min_samples,
        };
        let value = match metrics.read(&q).await? {
            MetricReading::Value { value, .. } => Some(value),
            MetricReading::InsufficientData { .. } => None,
        };
        let severity = value.and_then(|v| {
            if v > r.critical {
                Some(Severity::Critical)
            } else if v > r.warning {
                Some(Severity::Warning)
            } else {
                None
            }
        });
        let silenced = config
            .silences
            .iter()
            .find(|s| (s.rule == "*" || s.rule == r.rule) && now < s.until)
            .filter(|_| severity.is_some())
            .map(|s| s.reason.clone());
        out.push(Alert {
            rule: r.rule.clone(),
            severity,
            value,
            silenced,
        });
    }
    Ok(out)
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
        }
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
        let mut rb = Runbook::new("threshold-alerts", &self.target)
            .with_category(crate::engine::Category::Check);
        let evaluated: Output<Vec<Alert>> = rb.add_step(Step::read("evaluate", move |ctx| {
            let (metrics, config, now) = (metrics.clone(), config.clone(), ctx.clock().now());
            let windows = windows.clone();
            Ok(Action::new(
                "MetricsSource::read",
                json!({ "rules": config.rules.len() }),
                async move {
                    let mut alerts = evaluate_alerts(metrics.as_ref(), &config, now).await?;
                    silence_in_windows(&mut alerts, &windows, now)?;
                    Ok(alerts)
                },
            ))
        }));
        if let Some(n) = self.notifier.clone() {
            let target = self.target.clone();
            rb = rb.step(Step::mutate("notify", move |ctx| {
                let alerts = ctx.get(&evaluated)?;
                let firing: Vec<Alert> = alerts
                    .into_iter()
                    .filter(|a| a.severity.is_some() && a.silenced.is_none())
                    .collect();
                let (n, target) = (n.clone(), target.clone());
                let names: Vec<String> = firing.iter().map(|a| a.rule.clone()).collect();
                Ok(Action::new(
                    "Notifier::send",
                    json!({ "alerts": names }),
                    async move {
                        for a in &firing {
                            let severity = a.severity.unwrap_or(Severity::Warning);
                            let note = Notification::new(
                                severity,
                                format!("{target}: {} is {severity}", a.rule),
                            )
                            .field("value", a.value.map_or("n/a".into(), |v| format!("{v:.4}")))
                            .dedup_key(format!("alert/{target}/{}", a.rule));
                            n.send(&note).await?;
                        }
                        Ok(firing.len())
                    },
                ))
            }));
        }
        Ok(rb)
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
