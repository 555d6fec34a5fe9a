//! Emergency shutdown: stop serving, disable exposed secret versions, capture evidence,
//! page, and write the incident report.
//!
//! Replaces the seeds' `gcloud run services update SERVICE --max-instances=0` (or `vercel
//! remove`), `gcloud secrets versions disable`, `gcloud logging read … > evidence.txt`, the
//! page to on-call and the incident write-up.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::failed;
use super::config::{human_duration, invalid, positive};
use crate::Result;
use crate::contracts::{
    Deployer, LogQuery, LogSeverity, LogSource, Notification, Notifier, SecretStore, ServiceState,
    Severity, TimeWindow,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step, StepContext};

/// Settings of an emergency shutdown.
///
/// ```toml
/// evidence_window = "1h"     # how far back to capture error logs
/// max_log_entries = 200      # at most this many entries in the evidence
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How far back to capture error logs (default 1 h).
    #[serde(with = "human_duration")]
    pub evidence_window: Duration,
    /// At most this many log entries (default 200).
    pub max_log_entries: u32,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            evidence_window: Duration::from_secs(3600),
            max_log_entries: 200,
        }
    }
}

impl RunbookConfig for ShutdownConfig {
    fn validate(&self) -> Result<()> {
        positive("evidence_window", self.evidence_window)?;
        if !(1..=1000).contains(&self.max_log_entries) {
            return Err(invalid("max_log_entries", "must be 1 to 1000"));
        }
        Ok(())
    }
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
        }
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
        let mut logged: Option<Output<usize>> = None;
        if let Some(logs) = self.logs.clone() {
            let c = self.config.clone();
            logged = Some(rb.add_step(Step::read("capture-logs", move |ctx| {
                let (logs, ctx2) = (logs.clone(), ctx.clone());
                let window = TimeWindow::ending_at(ctx.clock().now(), c.evidence_window)?;
                let q = LogQuery {
                    page_size: c.max_log_entries,
                    ..LogQuery::new(window).min_severity(LogSeverity::Error)
                };
                Ok(Action::new(
                    "LogSource::query_page",
                    json!({ "window": window, "min_severity": "ERROR" }),
                    async move {
                        let page = logs.query_page(&q).await?;
                        ctx2.evidence("recent error logs", &page.entries);
                        Ok(page.entries.len())
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
    logged: Option<Output<usize>>,
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
    if let Some(n) = evidence.logged.as_ref().and_then(|o| ctx.get(o).ok()) {
        md.push_str(&format!(
            "\n## Evidence\n\n- {n} ERROR entries captured into the run report\n"
        ));
    }
    md.push_str("\n## Follow-up\n\n- [ ] Root cause\n- [ ] Rotate the disabled secrets\n- [ ] Restore service\n");
    md
}
