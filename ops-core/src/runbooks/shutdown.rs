//! Emergency shutdown: stop serving, confirm nothing runs, disable exposed secret versions,
//! capture evidence, page, and write the incident report.
//!
//! Replaces the seeds' `gcloud run services update SERVICE --max-instances=0` (or `vercel
//! remove`), "verify the service is scaled to zero", `gcloud secrets versions disable`,
//! `gcloud logging read … --limit 5000 > evidence.txt`, the page to on-call and the incident
//! write-up.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::failed;
use super::config::{human_duration, invalid, positive};
use crate::Result;
use crate::contracts::{
    Deployer, LogEntry, LogQuery, LogSeverity, LogSource, Metric, MetricQuery, MetricReading,
    MetricsSource, Notification, Notifier, SecretStore, ServiceState, Severity, TimeWindow,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step, StepContext};
use crate::poll::{Every, Polled, poll_until};

/// The most log entries the evidence keeps.
pub const MAX_EVIDENCE_ENTRIES: u32 = 10_000;
/// The most pages of logs read for the evidence; a window holding more is reported as cut.
pub const MAX_EVIDENCE_PAGES: usize = 50;

/// Settings of an emergency shutdown.
///
/// ```toml
/// evidence_window = "1h"           # how far back to capture logs
/// max_log_entries = 5000           # the newest this many entries are kept (seed 000)
/// evidence_min_severity = "DEFAULT" # every severity (default "ERROR")
/// confirm_within = "5m"            # how long the instances may take to reach zero
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How far back to capture logs (default 1 h).
    #[serde(with = "human_duration")]
    pub evidence_window: Duration,
    /// The newest this many log entries are kept (default 200, at most
    /// [`MAX_EVIDENCE_ENTRIES`]).
    pub max_log_entries: u32,
    /// Only entries at least this severe (default `ERROR`; `DEFAULT` keeps every line).
    pub evidence_min_severity: LogSeverity,
    /// How long the instance count may take to reach zero after the stop (default 5 min); see
    /// [`EmergencyShutdown::confirm_stopped`].
    #[serde(with = "human_duration")]
    pub confirm_within: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            evidence_window: Duration::from_secs(3600),
            max_log_entries: 200,
            evidence_min_severity: LogSeverity::Error,
            confirm_within: Duration::from_secs(300),
        }
    }
}

impl RunbookConfig for ShutdownConfig {
    fn validate(&self) -> Result<()> {
        positive("evidence_window", self.evidence_window)?;
        positive("confirm_within", self.confirm_within)?;
        if !(1..=MAX_EVIDENCE_ENTRIES).contains(&self.max_log_entries) {
            return Err(invalid(
                "max_log_entries",
                format!("must be 1 to {MAX_EVIDENCE_ENTRIES}"),
            ));
        }
        Ok(())
    }
}

/// What the instance metric said after the stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StopConfirmation {
    /// No instance runs: the metric read zero, or reported no instance at all.
    Stopped {
        /// The last reading (`None`: no series, which is how a platform reports no instances).
        reading: Option<f64>,
    },
    /// A dry run stops nothing, so there is nothing to confirm.
    Planned,
}

/// The logs captured as evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedLogs {
    /// Entries kept (the newest).
    pub kept: usize,
    /// Entries read and dropped as older than the newest `max_log_entries`.
    pub dropped: usize,
    /// Even the window's last part held more than [`MAX_EVIDENCE_PAGES`] pages: entries newer
    /// than those read are missing.
    pub cut: bool,
}

/// What disabling the secret versions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledSecrets {
    /// `secret@version` disabled.
    pub disabled: Vec<String>,
    /// `(secret@version, error)` that could not be.
    pub failed: Vec<(String, String)>,
}

/// A store and the `(secret, version)` pairs to disable in it.
type SecretsToDisable = (Arc<dyn SecretStore>, Vec<(String, String)>);

/// An emergency shutdown of one service.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryDeployer;
/// use ops_core::contracts::{DeployRequest, Deployer};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{EmergencyShutdown, ShutdownConfig, Procedure};
/// let d = Arc::new(MemoryDeployer::new("api"));
/// d.deploy(&DeployRequest::new("api:1")).await?;
/// let ops_core::runbooks::Finished { report, summary: incident } = EmergencyShutdown::new("data leak", d.clone(), ShutdownConfig::default())
///     .run(&Runner::new(), Mode::Execute).await?;
/// assert!(report.is_success() && !d.current().await?.serving);
/// assert!(incident.unwrap().contains("data leak"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmergencyShutdown {
    config: ShutdownConfig,
    reason: String,
    deployer: Arc<dyn Deployer>,
    secrets: Option<SecretsToDisable>,
    logs: Option<Arc<dyn LogSource>>,
    notifier: Option<Arc<dyn Notifier>>,
    confirm: Option<(Arc<dyn MetricsSource>, Metric)>,
}

impl EmergencyShutdown {
    /// Stops `deployer`'s target because of `reason`.
    pub fn new(
        reason: impl Into<String>,
        deployer: Arc<dyn Deployer>,
        config: ShutdownConfig,
    ) -> Self {
        Self {
            config,
            reason: reason.into(),
            deployer,
            secrets: None,
            logs: None,
            notifier: None,
            confirm: None,
        }
    }

    /// After the stop, waits (up to `confirm_within`) until `metric` of `metrics` — the
    /// platform's running-instance count, `ops_gcp::monitoring::INSTANCE_COUNT` on Cloud Run —
    /// reads zero over the last minute, and fails the run if it does not: a stopped ingress with
    /// instances still running is not a shutdown. No series at all counts as zero instances.
    pub fn confirm_stopped(mut self, metrics: Arc<dyn MetricsSource>, metric: Metric) -> Self {
        self.confirm = Some((metrics, metric));
        self
    }

    /// Secret versions (`(secret, version)`) to disable in `store`.
    pub fn disable_secrets(
        mut self,
        store: Arc<dyn SecretStore>,
        versions: Vec<(String, String)>,
    ) -> Self {
        self.secrets = Some((store, versions));
        self
    }

    /// Where to capture error logs from.
    pub fn logs(mut self, logs: Arc<dyn LogSource>) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Who to page.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        if self.reason.trim().is_empty() {
            return Err(invalid("reason", "say why the service is being shut down"));
        }
        let target = self.deployer.target().to_string();
        let d = self.deployer.clone();
        // The state before anything changes is the first piece of evidence.
        let mut rb = Runbook::new("emergency-shutdown", &target)
            .with_category(crate::engine::Category::Incident);
        let state: Output<ServiceState> = rb.add_step(Step::read("capture-state", move |ctx| {
            let (d, ctx) = (d.clone(), ctx.clone());
            Ok(Action::new("Deployer::current", json!({}), async move {
                let state = d.current().await?;
                ctx.evidence("deployment state before shutdown", &state);
                Ok(state)
            }))
        }));
        let d = self.deployer.clone();
        rb = rb.step(
            Step::mutate("stop-serving", move |_| {
                let d = d.clone();
                Ok(Action::new(
                    "Deployer::stop_serving",
                    json!({}),
                    async move { d.stop_serving().await },
                ))
            })
            .idempotent(),
        );
        let mut confirmed: Option<Output<StopConfirmation>> = None;
        if let Some((metrics, metric)) = self.confirm.clone() {
            let within = self.config.confirm_within;
            confirmed = Some(rb.add_step(Step::read("confirm-stopped", move |ctx| {
                let (metrics, metric, ctx) = (metrics.clone(), metric.clone(), ctx.clone());
                Ok(Action::new(
                    "MetricsSource::read",
                    json!({ "metric": metric, "within": human_duration::format(within) }),
                    async move { confirm_stopped(&ctx, metrics.as_ref(), metric, within).await },
                ))
            })));
        }
        let mut disabled: Option<Output<DisabledSecrets>> = None;
        if let Some((store, versions)) = self.secrets.clone() {
            disabled = Some(
                rb.add_step(
                    Step::mutate("disable-secrets", move |_| {
                        let (store, versions) = (store.clone(), versions.clone());
                        let names: Vec<String> =
                            versions.iter().map(|(s, v)| format!("{s}@{v}")).collect();
                        Ok(Action::new(
                            "SecretStore::disable_version",
                            json!({ "versions": names }),
                            async move {
                                // Every version is tried: one failure must not leave the others enabled.
                                let mut out = DisabledSecrets::default();
                                for (secret, version) in &versions {
                                    match store.disable_version(secret, version).await {
                                        Ok(_) => out.disabled.push(format!("{secret}@{version}")),
                                        Err(e) => out
                                            .failed
                                            .push((format!("{secret}@{version}"), e.to_string())),
                                    }
                                }
                                Ok(out)
                            },
                        ))
                    })
                    .idempotent(),
                ),
            );
        }
        let mut logged: Option<Output<CapturedLogs>> = None;
        if let Some(logs) = self.logs.clone() {
            let c = self.config.clone();
            logged = Some(rb.add_step(Step::read("capture-logs", move |ctx| {
                let (logs, ctx2) = (logs.clone(), ctx.clone());
                let window = TimeWindow::ending_at(ctx.clock().now(), c.evidence_window)?;
                let q = LogQuery {
                    page_size: c.max_log_entries.min(1000),
                    ..LogQuery::new(window).min_severity(c.evidence_min_severity)
                };
                let keep = c.max_log_entries;
                Ok(Action::new(
                    "LogSource::query_page",
                    json!({ "window": window, "min_severity": c.evidence_min_severity, "keep": keep }),
                    async move {
                        let (entries, captured) = newest_entries(logs.as_ref(), q, keep).await?;
                        ctx2.evidence("recent logs", &entries);
                        Ok(captured)
                    },
                ))
            })));
        }
        if let Some(n) = self.notifier.clone() {
            let (reason, t, secrets) = (self.reason.clone(), target.clone(), disabled.clone());
            rb = rb.step(Step::mutate("page", move |ctx| {
                // Disabling may have failed as a whole: the page goes out regardless.
                let disabled = secrets.as_ref().and_then(|o| ctx.get(o).ok());
                let mut note = Notification::new(
                    Severity::Critical,
                    format!("EMERGENCY: {t} has been shut down"),
                )
                .body(format!("Reason: {reason}"))
                .field("target", &t)
                .dedup_key(format!("emergency/{t}"));
                if let Some(d) = disabled {
                    note = note
                        .field("secrets disabled", d.disabled.len().to_string())
                        .field("secrets failed", d.failed.len().to_string());
                }
                let n = n.clone();
                Ok(Action::new(
                    "Notifier::send",
                    json!({ "severity": "critical", "title": note.title }),
                    async move { n.send(&note).await },
                ))
            }));
        }
        let (reason, t) = (self.reason.clone(), target.clone());
        let evidence = Evidence {
            disabled: disabled.clone(),
            state,
            logged,
            confirmed,
        };
        rb = rb.step(Step::read("incident-report", move |ctx| {
            let report = incident_report(ctx, &evidence, &t, &reason);
            Ok(Action::new(
                "write incident report",
                json!({}),
                async move { Ok(report) },
            ))
        }));
        if let Some(disabled) = disabled {
            rb = rb.step(Step::read("confirm-secrets", move |ctx| {
                let d = ctx.get(&disabled)?;
                Ok(Action::new("check", json!({}), async move {
                    if d.failed.is_empty() {
                        Ok(d.disabled.len())
                    } else {
                        let list = d
                            .failed
                            .iter()
                            .map(|(v, e)| format!("{v}: {e}"))
                            .collect::<Vec<_>>()
                            .join("; ");
                        Err(failed("secrets disabled", list))
                    }
                }))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for EmergencyShutdown {
    type Summary = String;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<String> {
        report.output("incident-report")
    }
}

/// The outputs the incident report is written from; each may be missing (a failed step).
struct Evidence {
    disabled: Option<Output<DisabledSecrets>>,
    state: Output<ServiceState>,
    logged: Option<Output<CapturedLogs>>,
    confirmed: Option<Output<StopConfirmation>>,
}

/// Polls the instance metric over the last minute until it reads zero (or has no series).
async fn confirm_stopped(
    ctx: &StepContext,
    metrics: &dyn MetricsSource,
    metric: Metric,
    within: Duration,
) -> Result<StopConfirmation> {
    if ctx.is_dry_run() {
        return Ok(StopConfirmation::Planned);
    }
    let clock = ctx.clock().clone();
    let read = || {
        let (metric, clock) = (metric.clone(), clock.clone());
        async move {
            let q = MetricQuery {
                metric,
                window: TimeWindow::ending_at(clock.now(), Duration::from_secs(60))?,
                release: None,
                min_samples: 1,
            };
            metrics.read(&q).await
        }
    };
    let first = read().await?;
    let polled = poll_until(
        clock.as_ref(),
        within,
        Every::growing(Duration::from_secs(10), Duration::from_secs(60)),
        first,
        |reading| {
            Ok(match reading {
                MetricReading::Value { value, .. } if *value <= 0.0 => Some(Some(*value)),
                MetricReading::Value { .. } => None,
                MetricReading::InsufficientData { .. } => Some(None),
            })
        },
        |_| read(),
    )
    .await?;
    match polled {
        Polled::Done(reading) => Ok(StopConfirmation::Stopped { reading }),
        Polled::TimedOut(last) => {
            let running = match last {
                MetricReading::Value { value, .. } => format!("{value:.1}"),
                MetricReading::InsufficientData { .. } => "an unknown number of".into(),
            };
            Err(failed(
                "instances stopped",
                format!(
                    "{running} instances still running {} after the stop",
                    human_duration::format(within)
                ),
            ))
        }
    }
}

/// The most times the evidence window is halved towards its end when it holds too many pages.
const MAX_WINDOW_HALVINGS: u32 = 6;

/// Keeps the newest `keep` entries of the window. Sources page oldest first, so a window holding
/// more than [`MAX_EVIDENCE_PAGES`] pages is read again over its later half (up to
/// [`MAX_WINDOW_HALVINGS`] times): the newest entries are the evidence that matters.
async fn newest_entries(
    logs: &dyn LogSource,
    q: LogQuery,
    keep: u32,
) -> Result<(Vec<LogEntry>, CapturedLogs)> {
    let mut window = q.window;
    for halving in 0.. {
        let (entries, captured) = newest_in(
            logs,
            LogQuery {
                window,
                ..q.clone()
            },
            keep,
        )
        .await?;
        if !captured.cut || halving == MAX_WINDOW_HALVINGS {
            return Ok((entries, captured));
        }
        window.start = window.start + (window.end - window.start) / 2;
    }
    unreachable!("the loop returns by its last halving")
}

/// Pages through the window oldest first and keeps the newest `keep` entries.
async fn newest_in(
    logs: &dyn LogSource,
    mut q: LogQuery,
    keep: u32,
) -> Result<(Vec<LogEntry>, CapturedLogs)> {
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let mut newest = std::collections::VecDeque::with_capacity(keep.min(1024));
    let mut captured = CapturedLogs::default();
    for page_number in 1.. {
        let page = logs.query_page(&q).await?;
        for entry in page.entries {
            if newest.len() == keep {
                newest.pop_front();
                captured.dropped = captured.dropped.saturating_add(1);
            }
            newest.push_back(entry);
        }
        match page.next_page_token {
            Some(token) if page_number < MAX_EVIDENCE_PAGES => q.page_token = Some(token),
            Some(_) => {
                captured.cut = true;
                break;
            }
            None => break,
        }
    }
    captured.kept = newest.len();
    Ok((newest.into(), captured))
}

fn incident_report(ctx: &StepContext, evidence: &Evidence, target: &str, reason: &str) -> String {
    let mut md = format!(
        "# Incident: emergency shutdown of `{target}`\n\n- **When:** {}\n- **Run:** `{}`\n- **Reason:** {reason}\n\n## Actions\n\n",
        ctx.clock().now().to_rfc3339(),
        ctx.run_id()
    );
    let planned = ctx.is_dry_run();
    md.push_str(if planned {
        "- (dry run) serving would be stopped\n"
    } else {
        "- Serving stopped\n"
    });
    if let Some(c) = evidence.confirmed.as_ref().and_then(|o| ctx.get(o).ok())
        && let StopConfirmation::Stopped { reading } = c
    {
        md.push_str(&match reading {
            Some(v) => format!("- Instances confirmed stopped (instance count {v})\n"),
            None => "- Instances confirmed stopped (no instance reported)\n".into(),
        });
    }
    if let Some(d) = evidence.disabled.as_ref().and_then(|o| ctx.get(o).ok()) {
        for s in &d.disabled {
            md.push_str(&format!("- Secret version `{s}` disabled\n"));
        }
        for (s, e) in &d.failed {
            md.push_str(&format!("- **FAILED** to disable `{s}`: {e}\n"));
        }
    }
    if let Ok(state) = ctx.get(&evidence.state) {
        let split = state
            .traffic
            .iter()
            .map(|a| format!("{} {}%", a.release, a.percent))
            .collect::<Vec<_>>()
            .join(", ");
        md.push_str(&format!(
            "\n## State before shutdown\n\n- Serving: {}\n- Traffic: {split}\n",
            state.serving
        ));
    }
    if let Some(c) = evidence.logged.as_ref().and_then(|o| ctx.get(o).ok()) {
        md.push_str(&format!(
            "\n## Evidence\n\n- The newest {} log entries captured into the run report",
            c.kept
        ));
        if c.cut {
            md.push_str(&format!(
                " (even the window's last part held more than {MAX_EVIDENCE_PAGES} pages: \
                 the newest are missing)"
            ));
        }
        md.push('\n');
    }
    md.push_str("\n## Follow-up\n\n- [ ] Root cause\n- [ ] Rotate the disabled secrets\n- [ ] Restore service\n");
    md
}
