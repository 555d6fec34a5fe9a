//! Rollback: all traffic to the previous healthy release (or a named one), then verify.
//!
//! Replaces the seeds' `gcloud run revisions list` → pick the last good one →
//! `update-traffic --to-revisions=GOOD=100` → `curl …/health`, and Vercel's `vercel rollback`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::{notify_step, verify_step, wait_step};
use super::config::{MAX_WAIT, at_most, human_duration, invalid};
use crate::contracts::{
    Deployer, HealthProbe, Notification, Notifier, ReleaseState, Severity, TrafficSplit,
};
use crate::engine::{
    Action, Journal, JournalFilter, Output, RunOutcome, RunReport, Runbook, Step, run_summaries,
};
use crate::{Error, ErrorKind, Result};

/// Runbook name of automatic rollbacks (the cap counts these).
pub const AUTO_ROLLBACK: &str = "auto-rollback";

/// Settings of a rollback.
///
/// ```toml
/// stabilization = "30s"          # wait before verifying (not in emergencies)
/// max_automatic_in_a_row = 3     # automatic rollbacks of one target before a human must decide
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollbackConfig {
    /// Wait before verifying (default 30 s).
    #[serde(with = "human_duration")]
    pub stabilization: Duration,
    /// Automatic rollbacks of one target in a row before refusing (default 3).
    pub max_automatic_in_a_row: u32,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        Self {
            stabilization: Duration::from_secs(30),
            max_automatic_in_a_row: 3,
        }
    }
}

impl RunbookConfig for RollbackConfig {
    fn validate(&self) -> Result<()> {
        at_most("stabilization", self.stabilization, MAX_WAIT)?;
        if self.max_automatic_in_a_row == 0 {
            return Err(invalid("max_automatic_in_a_row", "must be at least 1"));
        }
        Ok(())
    }
}

/// Where to roll back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackTo {
    /// The newest ready release older than the one serving now.
    Previous,
    /// This release.
    Release(String),
}

/// What the rollback chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackChoice {
    /// The release that was serving.
    pub from: Option<String>,
    /// The release that will.
    pub to: String,
}

/// A rollback of one target.
///
/// Without a compensation on purpose: a rollback whose verification fails stays where it is and
/// is reported, rather than flapping back to the release it left.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryDeployer;
/// use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{Rollback, RollbackConfig, RollbackTo, Procedure};
/// let d = Arc::new(MemoryDeployer::new("api"));
/// d.deploy(&DeployRequest::new("api:1")).await?;
/// d.deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("api:2") }).await?;
/// let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default()).run(&Runner::new(), Mode::Execute).await?;
/// assert!(report.is_success());
/// assert_eq!(d.current().await?.primary_release(), Some("api-00001"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Rollback {
    config: RollbackConfig,
    to: RollbackTo,
    deployer: Arc<dyn Deployer>,
    probes: Vec<Arc<dyn HealthProbe>>,
    journal: Option<Arc<dyn Journal>>,
    notifier: Option<Arc<dyn Notifier>>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manual,
    Automatic,
    Emergency,
}

impl Rollback {
    /// A rollback of `deployer`'s target to `to`, started by a person.
    pub fn new(to: RollbackTo, deployer: Arc<dyn Deployer>, config: RollbackConfig) -> Self {
        Self {
            config,
            to,
            deployer,
            probes: Vec::new(),
            journal: None,
            notifier: None,
            kind: Kind::Manual,
        }
    }

    /// Marks it automatic (started by a failed check): capped by `max_automatic_in_a_row`,
    /// counted in `journal`, which must be the one the runner records into.
    pub fn automatic(mut self, journal: Arc<dyn Journal>) -> Self {
        self.kind = Kind::Automatic;
        self.journal = Some(journal);
        self
    }

    /// Marks it an emergency: acts at once, pages before anything else is checked, no
    /// stabilisation wait and no cap; the probes still run right after the page (seed 003:
    /// `rollback:emergency`, then `curl …/health`), and a failing one fails the run.
    pub fn emergency(mut self) -> Self {
        self.kind = Kind::Emergency;
        self
    }

    /// A probe that must be healthy afterwards.
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// Where to report it.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let target = self.deployer.target().to_string();
        let name = match self.kind {
            Kind::Manual => "rollback",
            Kind::Automatic => AUTO_ROLLBACK,
            Kind::Emergency => "emergency-rollback",
        };
        let (d, to) = (self.deployer.clone(), self.to.clone());
        let mut rb = Runbook::new(name, &target).with_category(crate::engine::Category::Rollback);
        let chosen: Output<RollbackChoice> = rb.add_step(Step::read("choose", move |_| {
            let (d, to) = (d.clone(), to.clone());
            Ok(Action::new(
                "Deployer::releases",
                json!({ "to": to }),
                async move { choose(d.as_ref(), &to).await },
            ))
        }));
        if let (Kind::Automatic, Some(journal)) = (self.kind, self.journal.clone()) {
            let (cap, t) = (self.config.max_automatic_in_a_row, target.clone());
            rb = rb.step(Step::read("cap", move |_| {
                let (journal, t) = (journal.clone(), t.clone());
                Ok(Action::new("Journal::events", json!({ "target": t, "cap": cap }), async move {
                    let n = automatic_in_a_row(journal.as_ref(), &t).await?;
                    if n >= cap {
                        return Err(Error::new(
                            "runbook",
                            "rollback",
                            ErrorKind::Conflict { detail: format!("{n} automatic rollbacks of {t} in a row (cap {cap}): a human must decide") },
                        ));
                    }
                    Ok(n)
                }))
            }));
        }
        let (d, choice) = (self.deployer.clone(), chosen.clone());
        rb = rb.step(
            Step::mutate("shift", move |ctx| {
                let choice = ctx.get(&choice)?;
                let split = TrafficSplit::all_to(choice.to)?;
                let d = d.clone();
                Ok(Action::new(
                    "Deployer::set_traffic",
                    json!(split),
                    async move { d.set_traffic(&split).await },
                ))
            })
            .idempotent(),
        );
        if self.kind != Kind::Emergency && !self.probes.is_empty() {
            rb = rb.step(wait_step("stabilize", self.config.stabilization));
            rb = rb.step(verify_step("verify", self.probes.clone()));
        }
        if let Some(n) = self.notifier.clone() {
            let severity = if self.kind == Kind::Emergency {
                Severity::Critical
            } else {
                Severity::Warning
            };
            rb = rb.step(notify_step("notify", n, move |ctx| {
                let c = ctx.get(&chosen)?;
                let from = c.from.unwrap_or_else(|| "nothing".into());
                Ok(Notification::new(
                    severity,
                    format!("{name} of {target}: traffic moved from {from} to {}", c.to),
                )
                .field("target", &target)
                .field("to", &c.to)
                .dedup_key(format!("rollback/{target}/{}", c.to)))
            }));
        }
        if self.kind == Kind::Emergency && !self.probes.is_empty() {
            rb = rb.step(verify_step("verify", self.probes.clone()));
        }
        Ok(rb)
    }
}

impl super::Procedure for Rollback {
    type Summary = ();

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, _: &RunReport) -> Option<()> {
        Some(())
    }
}

async fn choose(d: &dyn Deployer, to: &RollbackTo) -> Result<RollbackChoice> {
    let state = d.current().await?;
    let releases = d.releases().await?;
    let from = state.primary_release().map(str::to_string);
    let to = match to {
        RollbackTo::Release(id) => {
            let r = releases.iter().find(|r| &r.id == id).ok_or_else(|| {
                Error::new(
                    "runbook",
                    "rollback",
                    ErrorKind::NotFound {
                        resource: format!("release {id}"),
                    },
                )
            })?;
            if r.state != ReleaseState::Ready {
                return Err(Error::invalid_input(
                    "runbook",
                    "rollback",
                    "release",
                    format!("{id} is not ready ({:?})", r.state),
                ));
            }
            id.clone()
        }
        RollbackTo::Previous => {
            // Releases are newest first: the previous one is the first ready release after the
            // one serving now.
            let after = from
                .as_ref()
                .and_then(|f| releases.iter().position(|r| &r.id == f))
                .map_or(0, |i| i + 1);
            releases[after.min(releases.len())..]
                .iter()
                .find(|r| r.state == ReleaseState::Ready && Some(&r.id) != from.as_ref())
                .map(|r| r.id.clone())
                .ok_or_else(|| {
                    Error::new(
                        "runbook",
                        "rollback",
                        ErrorKind::NotFound {
                            resource: "an earlier ready release".into(),
                        },
                    )
                })?
        }
    };
    Ok(RollbackChoice { from, to })
}

/// Succeeded automatic rollbacks of `target` since the last succeeded run of anything else.
async fn automatic_in_a_row(journal: &dyn Journal, target: &str) -> Result<u32> {
    let events = journal
        .events(&JournalFilter {
            target: Some(target.to_string()),
            ..Default::default()
        })
        .await?;
    let mut n = 0;
    for run in run_summaries(&events).iter().rev() {
        match (run.runbook.as_str(), run.outcome) {
            (AUTO_ROLLBACK, Some(RunOutcome::Succeeded)) => n += 1,
            (_, Some(RunOutcome::Succeeded)) => break,
            _ => {}
        }
    }
    Ok(n)
}
