//! [`RecoverDeployment`]: the Monkeytown runbook's "Event Stream Failure" procedure as one
//! call.
//!
//! | seed step | step |
//! |---|---|
//! | check the health endpoint; `kubectl logs -l app=… --tail=100 \| grep ERROR` | `diagnose` |
//! | "If disconnected: verify Redis credentials in secrets" | `secrets` (the keys named in [`RecoverConfig::required_secrets`] exist and are not empty) |
//! | "If OOM: scale up event-stream pods" | `more-memory` (the memory limit times [`RecoverConfig::memory_factor`], up to [`RecoverConfig::max_memory`]) |
//! | "If down: restart event-stream service" | `restart` (`kubectl rollout restart`) |
//! | "If persistent: `kubectl rollout undo deployment/event-stream`" | `recheck`, then `undo` ([`KubeDeployment::roll_back`]: the newest revision of another version, since a restart adds a revision of the failing one) |
//! | `kubectl rollout status` | `verify` |
//!
//! Each remedy runs only when the diagnosis calls for it, and a remedy whose rollout fails
//! (the new pods crash too) is recorded and leaves the way to `undo` open. A dry run diagnoses
//! and plans every remedy without changing anything.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use ops_core::Result;
use ops_core::contracts::{
    Deployer, HealthProbe, HealthStatus, LogQuery, LogSeverity, LogSource, ScaleSpec, SecretStore,
    TimeWindow, VersionRef,
};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::runbooks::Procedure;
use ops_core::{Error, ErrorKind};

use crate::client::PROVIDER;
use crate::rollout::problems_of;
use crate::{KubeDeployment, KubeHealth, KubeLogs, KubeSecrets};
use ops_core::config::RunbookConfig as _;
use ops_core::quantity::{bytes_of, format_bytes};

/// Settings of [`RecoverDeployment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverConfig {
    /// Newest log lines read per container (the seed's `--tail=100`).
    pub log_lines: u32,
    /// How far back the logs are read.
    #[serde(with = "ops_core::config::duration::human")]
    pub log_window: Duration,
    /// The memory limit is multiplied by this on OOM kills (2 to 8).
    pub memory_factor: u32,
    /// The largest memory limit the runbook sets (`4Gi`).
    pub max_memory: String,
    /// How long each rollout may take (the seed's recovery time objective: 5 minutes).
    #[serde(with = "ops_core::config::duration::human")]
    pub rollout_deadline: Duration,
    /// Secret keys that must exist and be non-empty (`redis/password`).
    pub required_secrets: Vec<String>,
}

impl Default for RecoverConfig {
    fn default() -> Self {
        Self {
            log_lines: 100,
            log_window: Duration::from_secs(15 * 60),
            memory_factor: 2,
            max_memory: "4Gi".into(),
            rollout_deadline: Duration::from_secs(300),
            required_secrets: Vec::new(),
        }
    }
}

impl ops_core::config::RunbookConfig for RecoverConfig {
    fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: &str| {
            Err(Error::invalid_input("runbook", "recover", field, reason))
        };
        if !(2..=8).contains(&self.memory_factor) {
            return bad("memory_factor", "must be 2 to 8");
        }
        if bytes_of(&self.max_memory).is_none_or(|b| b == 0) {
            return bad("max_memory", "a memory quantity such as 4Gi");
        }
        if self.log_lines == 0 || self.log_window.is_zero() || self.rollout_deadline.is_zero() {
            return bad(
                "log_lines",
                "log_lines, log_window and rollout_deadline must be positive",
            );
        }
        Ok(())
    }
}

/// Seed 004's numbers are under `[providers.kubernetes.recover]` in the `monkeytown` preset.
impl ops_core::presets::PresetSection for RecoverConfig {
    const SECTION: &'static str = "providers.kubernetes.recover";

    fn from_preset(preset: &ops_core::presets::Preset) -> Result<Self> {
        preset.provider("kubernetes.recover")
    }
}

/// What `diagnose` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The health report's status.
    pub status: HealthStatus,
    /// No replica available.
    pub down: bool,
    /// A pod's container was OOM-killed.
    pub oom_killed: bool,
    /// Pods in a back-off, with their reasons.
    pub back_off: Vec<String>,
    /// ERROR (or worse) lines in the window.
    pub error_lines: u64,
    /// The first of them.
    pub first_errors: Vec<String>,
    /// The container's memory limit.
    pub memory_limit: Option<String>,
}

/// What a remedy step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Remedy {
    /// The diagnosis did not call for it.
    NotNeeded,
    /// Done, as described.
    Done(String),
    /// Tried, and its rollout failed (the next remedy may still help).
    Failed(String),
}

/// The Event Stream Failure procedure over one Deployment.
#[derive(Clone)]
pub struct RecoverDeployment {
    deployment: KubeDeployment,
    logs: KubeLogs,
    secrets: Option<KubeSecrets>,
    config: RecoverConfig,
}

impl RecoverDeployment {
    /// Recovers `deployment`, reading `logs` (its pods' logs).
    pub fn new(deployment: KubeDeployment, logs: KubeLogs, config: RecoverConfig) -> Self {
        Self {
            deployment,
            logs,
            secrets: None,
            config,
        }
    }

    /// Where [`RecoverConfig::required_secrets`] are looked up.
    pub fn secrets(mut self, secrets: KubeSecrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    async fn diagnose(&self) -> Result<Diagnosis> {
        let report = KubeHealth::new(self.deployment.clone()).check().await?;
        let d = self.deployment.get().await?;
        let mut back_off = Vec::new();
        let mut oom_killed = false;
        for rs in self.deployment.replica_sets(&d).await? {
            if rs.status.as_ref().is_none_or(|s| s.replicas == 0) {
                continue;
            }
            for pod in self.deployment.pods_of(&rs).await? {
                for p in problems_of(&pod) {
                    oom_killed |= p.oom_killed;
                    if p.is_fatal() {
                        back_off.push(p.to_string());
                    }
                }
            }
        }
        let clock = self.deployment.client().clock().clone();
        let now = clock.now();
        let window =
            TimeWindow::ending_at(now + chrono::Duration::seconds(1), self.config.log_window)?;
        let logs = self.logs.clone().tail_lines(self.config.log_lines);
        let page = logs
            .query_page(&LogQuery::new(window).min_severity(LogSeverity::Error))
            .await?;
        let memory_limit = d
            .spec
            .as_ref()
            .and_then(|s| {
                s.template
                    .spec
                    .as_ref()?
                    .containers
                    .first()?
                    .resources
                    .as_ref()?
                    .limits
                    .as_ref()?
                    .get("memory")
                    .cloned()
            })
            .map(|q| q.0);
        Ok(Diagnosis {
            status: report.status,
            down: d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
                == 0,
            oom_killed,
            back_off,
            error_lines: page.entries.len() as u64,
            first_errors: page
                .entries
                .iter()
                .take(5)
                .map(|e| ops_core::redact::redact_text(&e.message))
                .collect(),
            memory_limit,
        })
    }

    fn more_memory(&self, limit: Option<&str>) -> Result<String> {
        let current = limit.and_then(bytes_of).unwrap_or(256 << 20);
        let max = bytes_of(&self.config.max_memory).unwrap_or(u64::MAX);
        if current >= max {
            return Err(Error::new(
                PROVIDER,
                "recover",
                ErrorKind::VerificationFailed {
                    check: "memory".into(),
                    detail: format!("already at the largest limit, {}", self.config.max_memory),
                },
            ));
        }
        let next = current
            .saturating_mul(u64::from(self.config.memory_factor))
            .min(max);
        Ok(format_bytes(next))
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let target = self.deployment.target().to_string();
        let mut rb = Runbook::new("recover-deployment", &target).with_category(Category::Incident);
        let me = Arc::new(self.clone());
        let m = me.clone();
        let diagnosis: Output<Diagnosis> = rb.add_step(Step::read("diagnose", move |_| {
            let m = m.clone();
            Ok(Action::new(
                "KubeHealth::check + KubeLogs::query_page",
                json!({"tail": m.config.log_lines}),
                async move { m.diagnose().await },
            ))
        }));
        if !self.config.required_secrets.is_empty() {
            let m = me.clone();
            rb = rb.step(Step::read("secrets", move |_| {
                let m = m.clone();
                let names = m.config.required_secrets.clone();
                Ok(Action::new(
                    "SecretStore::read",
                    json!({"secrets": names}),
                    async move {
                        let store = m.secrets.clone().ok_or_else(|| {
                            Error::invalid_input(
                                "runbook",
                                "recover",
                                "required_secrets",
                                "give RecoverDeployment::secrets a store",
                            )
                        })?;
                        for name in &names {
                            let read = store.read(name, &VersionRef::Latest).await?;
                            if read.value.is_empty() {
                                return Err(Error::new(
                                    PROVIDER,
                                    "recover",
                                    ErrorKind::VerificationFailed {
                                        check: format!("secret {name}"),
                                        detail: "is empty".into(),
                                    },
                                ));
                            }
                        }
                        Ok(names)
                    },
                ))
            }));
        }
        let (m, diag) = (me.clone(), diagnosis.clone());
        let memory: Output<Remedy> = rb.add_step(Step::mutate("more-memory", move |ctx| {
            let d = ctx.get(&diag)?;
            let m = m.clone();
            let next = d
                .oom_killed
                .then(|| m.more_memory(d.memory_limit.as_deref()))
                .transpose()?;
            Ok(Action::new(
                "Deployer::scale",
                json!({"memory": next}),
                async move {
                    let Some(next) = next else {
                        return Ok(Remedy::NotNeeded);
                    };
                    let spec = ScaleSpec {
                        memory: Some(next.clone()),
                        ..ScaleSpec::default()
                    };
                    Ok(match m.deployment.scale(&spec).await {
                        Ok(_) => Remedy::Done(format!("memory limit raised to {next}")),
                        Err(e) if matches!(e.kind(), ErrorKind::VerificationFailed { .. }) => {
                            Remedy::Failed(e.to_string())
                        }
                        Err(e) => return Err(e),
                    })
                },
            ))
        }));
        let (m, diag, mem) = (me.clone(), diagnosis.clone(), memory.clone());
        rb = rb.step(Step::mutate("restart", move |ctx| {
            let d = ctx.get(&diag)?;
            let memory_helped = matches!(ctx.get(&mem)?, Remedy::Done(_));
            let needed = (d.down || !d.back_off.is_empty()) && !memory_helped;
            let m = m.clone();
            Ok(Action::new(
                "KubeDeployment::restart",
                json!({"needed": needed}),
                async move {
                    if !needed {
                        return Ok(Remedy::NotNeeded);
                    }
                    Ok(
                        match m.deployment.restart(m.config.rollout_deadline).await {
                            Ok(r) => Remedy::Done(format!("restarted as {}", r.id)),
                            Err(e) if matches!(e.kind(), ErrorKind::VerificationFailed { .. }) => {
                                Remedy::Failed(e.to_string())
                            }
                            Err(e) => return Err(e),
                        },
                    )
                },
            ))
        }));
        let m = me.clone();
        let recheck: Output<HealthStatus> = rb.add_step(Step::read("recheck", move |_| {
            let m = m.clone();
            Ok(Action::new("KubeHealth::check", json!({}), async move {
                Ok(KubeHealth::new(m.deployment.clone()).check().await?.status)
            }))
        }));
        let m = me.clone();
        rb = rb.step(Step::mutate("undo", move |ctx| {
            let now = ctx.get(&recheck)?;
            // The failure persists: after the remedies, the service is still not healthy.
            let needed = now != HealthStatus::Healthy;
            let m = m.clone();
            Ok(Action::new(
                "KubeDeployment::roll_back",
                json!({"needed": needed}),
                async move {
                    if !needed {
                        return Ok(Remedy::NotNeeded);
                    }
                    let r = m.deployment.roll_back(m.config.rollout_deadline).await?;
                    Ok(Remedy::Done(format!(
                        "rolled back to {} ({})",
                        r.id, r.version
                    )))
                },
            ))
        }));
        let m = me.clone();
        // Planned, not run, in a dry run that planned remedies: it checks what they made of
        // the service.
        rb = rb.step(
            Step::read("verify", move |_| {
                let m = m.clone();
                Ok(Action::new("KubeHealth::check", json!({}), async move {
                    let report = KubeHealth::new(m.deployment.clone()).check().await?;
                    if report.status != HealthStatus::Healthy {
                        let why: Vec<String> = report
                            .checks
                            .iter()
                            .filter(|c| c.status != HealthStatus::Healthy)
                            .map(|c| format!("{}: {}", c.name, c.detail))
                            .collect();
                        return Err(Error::new(
                            PROVIDER,
                            "recover",
                            ErrorKind::VerificationFailed {
                                check: format!("health of {}", m.deployment.target()),
                                detail: why.join("; "),
                            },
                        ));
                    }
                    Ok(report.status)
                }))
            })
            .verifies_changes(),
        );
        Ok(rb)
    }
}

/// What a finished run says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// Each remedy step and what it did.
    pub remedies: Vec<(String, Remedy)>,
}

impl Procedure for RecoverDeployment {
    type Summary = Recovery;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Recovery> {
        let diagnosis = report.output::<Diagnosis>("diagnose")?;
        let remedies = ["more-memory", "restart", "undo"]
            .iter()
            .filter_map(|s| Some((s.to_string(), report.output::<Remedy>(s)?)))
            .collect();
        Some(Recovery {
            diagnosis,
            remedies,
        })
    }
}
