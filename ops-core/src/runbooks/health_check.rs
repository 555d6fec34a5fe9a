//! Daily health check: probes, deployment, errors, database, activity → one verdict.
//!
//! Replaces the seeds' daily procedure: `curl` every health endpoint, `gcloud run services
//! describe`, `gcloud logging read 'severity>=ERROR' --freshness=24h | wc -l` against a
//! threshold, `pg_isready`, a look at recent activity, and a message to the team when anything
//! is off.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::{human_duration, invalid, ordered, positive};
use super::{Finding, RunbookConfig};
use crate::Result;
use crate::contracts::{
    Deployer, HealthProbe, HealthStatus, LogQuery, LogSeverity, LogSource, Notification, Notifier,
    Severity, TimeWindow, check_all,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step, StepContext};

/// Settings of the daily health check. Every key is optional in TOML.
///
/// ```toml
/// error_window = "24h"      # how far back to count errors
/// error_warn_above = 10     # more ERROR entries than this: warning (the seeds' threshold)
/// error_critical_above = 100
/// probe_concurrency = 8     # probes at once
/// notify = true             # message the team when not healthy
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// How far back to count errors and activity (default 24 h).
    #[serde(with = "human_duration")]
    pub error_window: Duration,
    /// More ERROR entries than this in the window is a warning (default 10).
    pub error_warn_above: u64,
    /// More than this is an error (default 100).
    pub error_critical_above: u64,
    /// Probes run at once (default 8).
    pub probe_concurrency: usize,
    /// Send a notification when the verdict is not healthy (default true).
    pub notify: bool,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            error_window: Duration::from_secs(24 * 3600),
            error_warn_above: 10,
            error_critical_above: 100,
            probe_concurrency: 8,
            notify: true,
        }
    }
}

impl RunbookConfig for HealthCheckConfig {
    fn validate(&self) -> Result<()> {
        positive("error_window", self.error_window)?;
        ordered(
            "error_warn_above",
            self.error_warn_above,
            self.error_critical_above,
        )?;
        if self.probe_concurrency == 0 {
            return Err(invalid("probe_concurrency", "must be at least 1"));
        }
        Ok(())
    }
}

/// The verdict and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSummary {
    /// The worst of the findings.
    pub verdict: HealthStatus,
    /// Every check, in order.
    pub findings: Vec<Finding>,
    /// ERROR entries in the window, when a log source was given and answered.
    pub error_count: Option<u64>,
    /// Log entries in the window, when a log source was given and answered.
    pub activity: Option<u64>,
    /// The notification severity the findings call for (`None` when healthy).
    pub severity: Option<Severity>,
}

/// The daily health check over whatever the service has: HTTP/TCP probes, a deployer, a log
/// source, a database probe, a notifier.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::{MemoryDeployer, MemoryLogSource};
/// use ops_core::contracts::HealthStatus;
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{HealthCheck, HealthCheckConfig, Procedure};
/// let check = HealthCheck::new("api", HealthCheckConfig::default())
///     .deployer(Arc::new(MemoryDeployer::new("api")))
///     .logs(Arc::new(MemoryLogSource::new("api")));
/// let ops_core::runbooks::Finished { summary, .. } = check.run(&Runner::new(), Mode::Execute).await?;
/// // Nothing deployed and no log lines: not healthy, and the summary says why.
/// assert_ne!(summary.unwrap().verdict, HealthStatus::Healthy);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HealthCheck {
    config: HealthCheckConfig,
    target: String,
    probes: Vec<Arc<dyn HealthProbe>>,
    database: Option<Arc<dyn HealthProbe>>,
    deployer: Option<Arc<dyn Deployer>>,
    logs: Option<Arc<dyn LogSource>>,
    notifier: Option<Arc<dyn Notifier>>,
}

const SERVICES: &str = "probe-services";
const DEPLOYMENT: &str = "deployment-status";
const DATABASE: &str = "database";
const ERRORS: &str = "error-count";
const ACTIVITY: &str = "recent-activity";
const VERDICT: &str = "verdict";
const NOTIFY: &str = "notify";

impl HealthCheck {
    /// A check of `target` with nothing to look at yet.
    pub fn new(target: impl Into<String>, config: HealthCheckConfig) -> Self {
        Self {
            config,
            target: target.into(),
            probes: Vec::new(),
            database: None,
            deployer: None,
            logs: None,
            notifier: None,
        }
    }

    /// Adds a service probe (HTTP, TCP, provider).
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// The database's probe.
    pub fn database(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.database = Some(probe);
        self
    }

    /// The deployer whose state to check.
    pub fn deployer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.deployer = Some(deployer);
        self
    }

    /// The log source to count errors and activity in.
    pub fn logs(mut self, logs: Arc<dyn LogSource>) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Where to send the verdict when not healthy.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut checks = Vec::new();
        if !self.probes.is_empty() {
            let (probes, n) = (self.probes.clone(), self.config.probe_concurrency);
            checks.push(Step::read(SERVICES, move |_| {
                let probes = probes.clone();
                Ok(Action::new(
                    "HealthProbe::check",
                    json!({ "probes": probes.len() }),
                    async move {
                        Ok(CheckOutput::of(
                            check_all(&probes, n)
                                .await
                                .into_iter()
                                .zip(&probes)
                                .map(|(r, p)| probe_finding(p.name(), r))
                                .collect(),
                        ))
                    },
                ))
            }));
        }
        if let Some(d) = self.deployer.clone() {
            checks.push(Step::read(DEPLOYMENT, move |_| {
                let d = d.clone();
                Ok(Action::new(
                    "Deployer::current",
                    json!({ "target": d.target() }),
                    async move { Ok(CheckOutput::of(vec![deployment_finding(d.current().await)])) },
                ))
            }));
        }
        if let Some(db) = self.database.clone() {
            checks.push(Step::read(DATABASE, move |_| {
                let db = db.clone();
                Ok(Action::new(
                    "HealthProbe::check",
                    json!({ "probe": db.name() }),
                    async move {
                        Ok(CheckOutput::of(vec![probe_finding(
                            "database",
                            db.check().await,
                        )]))
                    },
                ))
            }));
        }
        if let Some(logs) = self.logs.clone() {
            let config = self.config.clone();
            let l2 = logs.clone();
            checks.push(Step::read(ERRORS, move |ctx| {
                let (logs, config) = (logs.clone(), config.clone());
                let window = window(ctx, config.error_window)?;
                Ok(Action::new(
                    "LogSource::count",
                    json!({ "min_severity": "ERROR", "window": window }),
                    async move {
                        let q = LogQuery::new(window).min_severity(LogSeverity::Error);
                        let cap = config.error_critical_above.saturating_mul(10).max(1000);
                        let count = logs.count(&q, cap).await;
                        Ok(CheckOutput {
                            count: count.as_ref().ok().copied(),
                            findings: vec![error_finding(&config, count)],
                        })
                    },
                ))
            }));
            let length = self.config.error_window;
            checks.push(Step::read(ACTIVITY, move |ctx| {
                let logs = l2.clone();
                let window = window(ctx, length)?;
                Ok(Action::new(
                    "LogSource::count",
                    json!({ "window": window }),
                    async move {
                        let count = logs.count(&LogQuery::new(window), 1_000_000).await;
                        Ok(CheckOutput {
                            count: count.as_ref().ok().copied(),
                            findings: vec![activity_finding(count)],
                        })
                    },
                ))
            }));
        }
        if checks.is_empty() {
            return Err(invalid(
                "health_check",
                "nothing to check: give at least one probe, deployer, database or log source",
            ));
        }
        // The checks run side by side; each produces a `CheckOutput`.
        let outputs: Vec<Output<CheckOutput>> =
            checks.iter().map(|s| Output::of(s.name())).collect();
        let mut rb = Runbook::new("daily-health-check", &self.target)
            .with_category(crate::engine::Category::Check)
            .parallel(checks);
        let verdict: Output<HealthSummary> = rb.add_step(Step::read(VERDICT, move |ctx| {
            let summary = summarize(ctx, &outputs);
            Ok(Action::new(
                "summarize",
                json!({}),
                async move { Ok(summary) },
            ))
        }));
        if let (Some(notifier), true) = (self.notifier.clone(), self.config.notify) {
            let target = self.target.clone();
            rb = rb.step(Step::mutate(NOTIFY, move |ctx| {
                let summary = ctx.get(&verdict)?;
                let Some(severity) = summary.severity else {
                    return Ok(Action::new("none: healthy", json!({}), async {
                        Ok("not sent")
                    }));
                };
                let note = notification(&target, &summary, severity);
                let notifier = notifier.clone();
                Ok(Action::new(
                    "Notifier::send",
                    json!({ "severity": severity, "title": note.title }),
                    async move { notifier.send(&note).await },
                ))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for HealthCheck {
    type Summary = HealthSummary;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<HealthSummary> {
        report.output(VERDICT)
    }
}

/// What each check step outputs: its findings, and the number it counted (errors, log
/// entries) when it counts one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckOutput {
    findings: Vec<Finding>,
    count: Option<u64>,
}

impl CheckOutput {
    fn of(findings: Vec<Finding>) -> Self {
        Self {
            findings,
            count: None,
        }
    }
}

fn window(ctx: &StepContext, length: Duration) -> Result<TimeWindow> {
    TimeWindow::ending_at(ctx.clock().now(), length)
}

fn probe_finding(name: &str, report: Result<crate::contracts::HealthReport>) -> Finding {
    match report {
        Ok(r) => {
            let failing: Vec<String> = r
                .checks
                .iter()
                .filter(|c| c.status != HealthStatus::Healthy)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            let detail = if failing.is_empty() {
                format!("{} checks passed", r.checks.len())
            } else {
                failing.join("; ")
            };
            Finding::new(name, r.status, detail)
        }
        Err(e) => Finding::new(
            name,
            HealthStatus::Unhealthy,
            format!("could not probe: {e}"),
        ),
    }
}

fn deployment_finding(state: Result<crate::contracts::ServiceState>) -> Finding {
    const CHECK: &str = "deployment";
    match state {
        Err(e) => Finding::new(
            CHECK,
            HealthStatus::Degraded,
            format!("could not read the deployment: {e}"),
        ),
        Ok(s) if !s.serving => Finding::new(CHECK, HealthStatus::Unhealthy, "not serving traffic"),
        Ok(s) => match s.primary_release() {
            None => Finding::new(CHECK, HealthStatus::Unhealthy, "no release takes traffic"),
            Some(primary) => {
                let split = s
                    .traffic
                    .iter()
                    .map(|t| format!("{} {}%", t.release, t.percent))
                    .collect::<Vec<_>>()
                    .join(", ");
                Finding::new(
                    CHECK,
                    HealthStatus::Healthy,
                    format!("serving: {split}; primary {primary}"),
                )
            }
        },
    }
}

fn error_finding(config: &HealthCheckConfig, count: Result<u64>) -> Finding {
    const CHECK: &str = "errors";
    let window = human_duration::format(config.error_window);
    match count {
        Err(e) => Finding::new(
            CHECK,
            HealthStatus::Degraded,
            format!("could not count errors: {e}"),
        ),
        Ok(n) if n > config.error_critical_above => Finding::new(
            CHECK,
            HealthStatus::Unhealthy,
            format!(
                "{n} errors in {window} (critical above {})",
                config.error_critical_above
            ),
        ),
        Ok(n) if n > config.error_warn_above => Finding::new(
            CHECK,
            HealthStatus::Degraded,
            format!(
                "{n} errors in {window} (warning above {})",
                config.error_warn_above
            ),
        ),
        Ok(n) => Finding::new(
            CHECK,
            HealthStatus::Healthy,
            format!("{n} errors in {window}"),
        ),
    }
}

fn activity_finding(count: Result<u64>) -> Finding {
    const CHECK: &str = "activity";
    match count {
        Err(e) => Finding::new(
            CHECK,
            HealthStatus::Degraded,
            format!("could not read activity: {e}"),
        ),
        Ok(0) => Finding::new(
            CHECK,
            HealthStatus::Degraded,
            "no log entries in the window: is the service running?",
        ),
        Ok(n) => Finding::new(
            CHECK,
            HealthStatus::Healthy,
            format!("{n} log entries in the window"),
        ),
    }
}

fn summarize(ctx: &StepContext, outputs: &[Output<CheckOutput>]) -> HealthSummary {
    let mut findings = Vec::new();
    let (mut error_count, mut activity) = (None, None);
    for output in outputs {
        let step = output.step();
        let out = ctx.get(output).unwrap_or_else(|e| {
            CheckOutput::of(vec![Finding::new(
                step,
                HealthStatus::Unhealthy,
                e.to_string(),
            )])
        });
        match step {
            ERRORS => error_count = out.count,
            ACTIVITY => activity = out.count,
            _ => {}
        }
        findings.extend(out.findings);
    }
    let verdict = findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    // Down services, deployment or database page someone; many errors are an error; anything
    // degraded is a warning.
    let critical = findings
        .iter()
        .any(|f| f.status == HealthStatus::Unhealthy && f.check != "errors");
    let severity = match verdict {
        HealthStatus::Healthy => None,
        HealthStatus::Unhealthy if critical => Some(Severity::Critical),
        HealthStatus::Unhealthy => Some(Severity::Error),
        HealthStatus::Degraded => Some(Severity::Warning),
    };
    HealthSummary {
        verdict,
        findings,
        error_count,
        activity,
        severity,
    }
}

fn notification(target: &str, s: &HealthSummary, severity: Severity) -> Notification {
    let body = s
        .findings
        .iter()
        .map(|f| format!("- **{}**: {} — {}", f.check, f.status, f.detail))
        .collect::<Vec<_>>()
        .join("\n");
    let mut n = Notification::new(
        severity,
        format!("Daily health check: {target} is {}", s.verdict),
    )
    .body(body)
    .field("target", target)
    .field("verdict", s.verdict.to_string())
    .dedup_key(format!("health-check/{target}"));
    if let Some(e) = s.error_count {
        n = n.field("errors", e.to_string());
    }
    n
}
