//! Deploy and verify: deploy, stabilise, probe, watch the error logs, roll back on any failure.
//!
//! Replaces the seeds' `gcloud run deploy …`, `sleep 30`, `curl …/health`, `gcloud logging read
//! 'severity>=ERROR' --freshness=5m`, and — when any of it fails — `gcloud run services
//! update-traffic --to-revisions=PREVIOUS=100`, with a message to the team before and after.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::{
    announce_step, deploy_step, notify_step, verify_step, wait_step, watch_errors,
};
use super::config::{human_duration, invalid, positive};
use crate::contracts::{
    DeployRequest, Deployer, HealthProbe, InitialTraffic, LogSource, Notification,
    NotificationEvent, Notifier, Release, ServiceState, Severity,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::{Error, Result};

/// Settings of deploy-and-verify.
///
/// ```toml
/// stabilization = "30s"   # wait after the deploy before probing
/// error_watch = "5m"      # watch the new release's ERROR logs this long
/// error_poll = "30s"      # how often to look during the watch
/// max_errors = 0          # more ERROR entries than this fails the deploy
/// deploy_deadline = "10m" # longest wait for the new release to become ready
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployVerifyConfig {
    /// Wait after the deploy before probing (default 30 s).
    #[serde(with = "human_duration")]
    pub stabilization: Duration,
    /// How long to watch the error logs (default 5 min).
    #[serde(with = "human_duration")]
    pub error_watch: Duration,
    /// How often to look during the watch (default 30 s).
    #[serde(with = "human_duration")]
    pub error_poll: Duration,
    /// ERROR entries tolerated (default 0).
    pub max_errors: u64,
    /// Longest wait for the release to become ready (default 10 min).
    #[serde(with = "human_duration")]
    pub deploy_deadline: Duration,
}

impl Default for DeployVerifyConfig {
    fn default() -> Self {
        Self {
            stabilization: Duration::from_secs(30),
            error_watch: Duration::from_secs(300),
            error_poll: Duration::from_secs(30),
            max_errors: 0,
            deploy_deadline: Duration::from_secs(600),
        }
    }
}

impl RunbookConfig for DeployVerifyConfig {
    fn validate(&self) -> Result<()> {
        positive("stabilization", self.stabilization)?;
        positive("error_watch", self.error_watch)?;
        positive("error_poll", self.error_poll)?;
        if self.error_poll > self.error_watch {
            return Err(invalid(
                "error_poll",
                "must not be longer than error_watch (the watch would never look)",
            ));
        }
        positive("deploy_deadline", self.deploy_deadline)
    }
}

/// Where the deploy started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployStart {
    /// The service before the deploy.
    pub state: ServiceState,
    /// When the deploy started.
    pub at: DateTime<Utc>,
}

/// Deploys `version` with all traffic, verifies it, and rolls traffic back to the previous
/// release on any failure (the deploy step's compensation), notifying before and after.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryDeployer;
/// use ops_core::contracts::{DeployRequest, Deployer};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig, Procedure};
/// let deployer = Arc::new(MemoryDeployer::new("api"));
/// deployer.deploy(&DeployRequest::new("api:1.0")).await?;
/// let run = DeployAndVerify::new("api:1.1", deployer.clone(), DeployVerifyConfig::default());
/// let report = run.run(&Runner::new(), Mode::Execute).await?;
/// assert!(report.is_success());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeployAndVerify {
    config: DeployVerifyConfig,
    version: String,
    deployer: Arc<dyn Deployer>,
    probes: Vec<Arc<dyn HealthProbe>>,
    logs: Option<Arc<dyn LogSource>>,
    notifier: Option<Arc<dyn Notifier>>,
}

impl DeployAndVerify {
    /// Deploys `version` through `deployer`.
    pub fn new(
        version: impl Into<String>,
        deployer: Arc<dyn Deployer>,
        config: DeployVerifyConfig,
    ) -> Self {
        Self {
            config,
            version: version.into(),
            deployer,
            probes: Vec::new(),
            logs: None,
            notifier: None,
        }
    }

    /// A probe that must be healthy after the deploy.
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// The logs to watch for the new release's errors.
    pub fn logs(mut self, logs: Arc<dyn LogSource>) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Where to announce start and result.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let target = self.deployer.target().to_string();
        let version = self.version.clone();
        let key = format!("deploy/{target}/{version}");
        let d = self.deployer.clone();
        let mut rb = Runbook::new("deploy-and-verify", &target)
            .with_category(crate::engine::Category::Deploy);
        let current: Output<DeployStart> = rb.add_step(Step::read("current", move |ctx| {
            let (d, at) = (d.clone(), ctx.clock().now());
            Ok(Action::new("Deployer::current", json!({}), async move {
                Ok(DeployStart {
                    state: d.current().await?,
                    at,
                })
            }))
        }));
        if let Some(n) = self.notifier.clone() {
            let (t, v, k) = (target.clone(), version.clone(), key.clone());
            let (t2, v2, start) = (target.clone(), version.clone(), current.clone());
            rb = rb.step(announce_step(
                n,
                key.clone(),
                move |_| {
                    Ok(
                        Notification::new(Severity::Info, format!("Deploying {v} to {t}"))
                            .dedup_key(&k),
                    )
                },
                move |ctx| {
                    let back = ctx
                        .get(&start)
                        .ok()
                        .and_then(|s| s.state.primary_release().map(str::to_string))
                        .unwrap_or_else(|| "nothing".into());
                    format!("Deploy of {v2} to {t2} failed; traffic is back on {back}")
                },
            ));
        }
        let request = DeployRequest {
            traffic: InitialTraffic::All,
            deadline: self.config.deploy_deadline,
            ..DeployRequest::new(&version)
        };
        let start = current.clone();
        let deploy: Output<Release> =
            rb.add_step(deploy_step(self.deployer.clone(), request, move |ctx| {
                ctx.get(&start)?
                    .state
                    .primary_release()
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "runbook",
                            "rollback",
                            "previous",
                            "the service had no serving release to roll back to",
                        )
                    })
            }));
        rb = rb.step(wait_step("stabilize", self.config.stabilization));
        if !self.probes.is_empty() {
            rb = rb.step(verify_step("health", self.probes.clone()));
        }
        if let Some(logs) = self.logs.clone() {
            let (c, deploy, current) = (self.config.clone(), deploy.clone(), current.clone());
            rb = rb.step(Step::read("watch-errors", move |ctx| {
                let release = ctx.get(&deploy)?;
                let start = ctx.get(&current)?;
                let (logs, clock, c) = (logs.clone(), ctx.clock().clone(), c.clone());
                Ok(Action::new(
                    "LogSource::count",
                    json!({ "release": release.id, "min_severity": "ERROR", "watch_seconds": c.error_watch.as_secs() }),
                    async move { watch_errors(logs.as_ref(), &clock, &release.id, start.at, c.error_watch, c.error_poll, c.max_errors).await },
                ))
            }));
        }
        if let Some(n) = self.notifier.clone() {
            rb = rb.step(notify_step("announce-result", n, move |ctx| {
                let release = ctx.get(&deploy)?;
                Ok(Notification::new(
                    Severity::Info,
                    format!("Deployed {version} to {target} as {}", release.id),
                )
                .event(NotificationEvent::Resolve)
                .dedup_key(&key))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for DeployAndVerify {
    type Summary = ();

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, _: &RunReport) -> Option<()> {
        Some(())
    }
}
