//! Progressive rollout: canary (1 → 5 → 25 → 100 %) or blue-green (0 → 10 → 100 %) on any
//! [`Deployer`], with metric analysis at every stage and an automatic abort to the stable
//! release.
//!
//! Replaces the seeds' staged canary: `update-traffic --to-revisions=NEW=1,OLD=99`, wait, look
//! at the error rate and p95 latency dashboards (warn above 1 % / 500 ms, abort above 5 % /
//! 2 s), repeat at 5 % and 25 %, then 100 %; and on trouble `--to-revisions=OLD=100`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
mod analysis;
mod summary;
mod watch;

pub use analysis::{Analysis, MetricResult, Verdict};
pub use summary::{JudgedBy, RolloutSummary, StageSummary};
pub use watch::{Sequential, Watched};

use super::common::{announce_step, deploy_step, notify_step, wait_step};
use super::config::{MAX_WAIT, at_most, human_duration, invalid, ordered, positive};
use crate::contracts::{
    DeployRequest, Deployer, MetricsSource, Notification, NotificationEvent, Notifier, Release,
    Severity, TrafficSplit,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::judge::JudgeConfig;
use crate::{Error, Result};
use analysis::{StageStart, analyse};

/// Canary or blue-green.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Small, growing shares: 1 → 5 → 25 → 100 %.
    #[default]
    Canary,
    /// Deploy beside the stable release, try 10 %, then switch: 0 → 10 → 100 %.
    BlueGreen,
}

/// One traffic stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The new release's share, 0 to 100.
    pub percent: u8,
    /// How long to wait before analysing (0: no analysis at this stage).
    #[serde(with = "human_duration")]
    pub bake: Duration,
    /// A person approves before traffic goes to this stage (seed 003: before 5 % and 25 %).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve: bool,
}

impl Stage {
    /// A stage.
    pub const fn new(percent: u8, bake: Duration) -> Self {
        Self {
            percent,
            bake,
            approve: false,
        }
    }
}

/// Warning and abort levels of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Above this: reported as a warning, the rollout goes on.
    pub warn: f64,
    /// Above this: the stage fails.
    pub abort: f64,
}

/// What to do when an analysis has too little data to judge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInconclusive {
    /// Wait `inconclusive_wait` and look again, up to `max_inconclusive_waits` times, then fail.
    #[default]
    Wait,
    /// Ask a human (an approval gate) whether to go on.
    Pause,
    /// Fail the stage (and abort).
    Fail,
}

/// What to do when an analysis fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Abort: all traffic back to the stable release.
    #[default]
    Abort,
    /// Ask a human whether to go on anyway (a denial aborts).
    Pause,
}

/// The metrics a rollout analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutMetric {
    /// 5xx / all requests of the new release.
    ErrorRate,
    /// p95 latency of the new release, in ms.
    LatencyP95,
}

/// Settings of a progressive rollout.
///
/// ```toml
/// strategy = "canary"                     # or "blue-green"
/// stages = [                              # default for canary; blue-green: 0, 10/30m, 100
///   { percent = 1, bake = "15m" },
///   { percent = 5, bake = "30m" },
///   { percent = 25, bake = "60m" },
///   { percent = 100, bake = "0s" },
/// ]
/// error_rate = { warn = 0.01, abort = 0.05 }
/// latency_p95_ms = { warn = 500, abort = 2000 }
/// min_requests = 100                      # fewer: inconclusive, never a pass
/// on_inconclusive = "wait"                # or "pause", "fail"
/// inconclusive_wait = "5m"
/// max_inconclusive_waits = 3
/// on_failure = "abort"                    # or "pause"
/// approve_between_stages = false         # or per stage: { percent = 5, bake = "30m", approve = true }
/// dry_run_metrics = []                    # e.g. ["latency_p95"]: evaluated, never acted on
/// hotfix_bake = "5m"                      # hotfix: straight to 100 %, one analysis
/// deploy_deadline = "10m"
/// look_interval = "1m"                    # how often a bake is judged
///
/// [judge]                                 # canary against stable, sequentially
/// alpha = 0.01                            # false aborts, for the whole rollout
/// sample_ratio_alpha = 0.001
/// error_margin = 0.0                      # 0.1: tolerate 10 % more errors
/// latency_margin = 0.0
/// latency_thresholds_ms = [250, 500, 1000, 2000]
/// min_canary_requests = 100               # per stage, to pass
/// ```
///
/// When the metrics source counts requests per release ([`MetricsSource::counts`]), each
/// bake is watched: every `look_interval` the [`crate::judge`] compares the canary with the
/// stable release, and the rollout aborts at the look that finds a regression (or when the
/// `error_rate` / `latency_p95_ms` abort levels are crossed, as guard rails). Otherwise the
/// bake is a wait and the thresholds judge the stage at its end, which the report says.
/// Every look is journaled; [`RolloutSummary`] (the run's summary) reads them back: why the
/// rollout stopped, how each stage was judged, and each look's counts and evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// Canary or blue-green.
    pub strategy: Strategy,
    /// The stages; `None` takes the strategy's default.
    pub stages: Option<Vec<Stage>>,
    /// Error-rate thresholds (ratios).
    pub error_rate: Thresholds,
    /// p95 latency thresholds (ms).
    pub latency_p95_ms: Thresholds,
    /// Fewer requests than this in a stage's window is inconclusive.
    pub min_requests: u64,
    /// What to do with too little data.
    pub on_inconclusive: OnInconclusive,
    /// How long to wait before looking again (with `wait`).
    #[serde(with = "human_duration")]
    pub inconclusive_wait: Duration,
    /// How many times to wait before failing (with `wait`).
    pub max_inconclusive_waits: u32,
    /// What to do when an analysis fails.
    pub on_failure: OnFailure,
    /// Ask a human before each next stage.
    pub approve_between_stages: bool,
    /// Metrics evaluated and reported but never acted on (trialling thresholds).
    pub dry_run_metrics: Vec<RolloutMetric>,
    /// The bake before the one analysis of a hotfix.
    #[serde(with = "human_duration")]
    pub hotfix_bake: Duration,
    /// Longest wait for the new release to become ready.
    #[serde(with = "human_duration")]
    pub deploy_deadline: Duration,
    /// How often a bake is judged.
    #[serde(with = "human_duration")]
    pub look_interval: Duration,
    /// The sequential judge.
    pub judge: JudgeConfig,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Canary,
            stages: None,
            error_rate: Thresholds {
                warn: 0.01,
                abort: 0.05,
            },
            latency_p95_ms: Thresholds {
                warn: 500.0,
                abort: 2000.0,
            },
            min_requests: 100,
            on_inconclusive: OnInconclusive::Wait,
            inconclusive_wait: Duration::from_secs(300),
            max_inconclusive_waits: 3,
            on_failure: OnFailure::Abort,
            approve_between_stages: false,
            dry_run_metrics: Vec::new(),
            hotfix_bake: Duration::from_secs(300),
            deploy_deadline: Duration::from_secs(600),
            look_interval: Duration::from_secs(60),
            judge: JudgeConfig::default(),
        }
    }
}

impl RolloutConfig {
    /// The stages in force: the configured ones or the strategy's default.
    pub fn stages(&self) -> Vec<Stage> {
        let m = |n: u64| Duration::from_secs(n * 60);
        self.stages.clone().unwrap_or_else(|| match self.strategy {
            Strategy::Canary => vec![
                Stage::new(1, m(15)),
                Stage::new(5, m(30)),
                Stage::new(25, m(60)),
                Stage::new(100, m(0)),
            ],
            Strategy::BlueGreen => vec![
                Stage::new(0, m(0)),
                Stage::new(10, m(30)),
                Stage::new(100, m(0)),
            ],
        })
    }
}

impl RunbookConfig for RolloutConfig {
    fn validate(&self) -> Result<()> {
        let stages = self.stages();
        if stages.is_empty() {
            return Err(invalid("stages", "needs at least one stage"));
        }
        for (i, s) in stages.iter().enumerate() {
            if s.percent > 100 {
                return Err(invalid(
                    &format!("stages[{i}].percent"),
                    format!("{} is over 100", s.percent),
                ));
            }
            at_most(&format!("stages[{i}].bake"), s.bake, MAX_WAIT)?;
            if i > 0 && s.percent <= stages[i - 1].percent {
                return Err(invalid(
                    &format!("stages[{i}].percent"),
                    "stages must increase",
                ));
            }
        }
        if stages.last().map(|s| s.percent) != Some(100) {
            return Err(invalid("stages", "the last stage must be 100 %"));
        }
        for (field, t) in [
            ("error_rate", self.error_rate),
            ("latency_p95_ms", self.latency_p95_ms),
        ] {
            if !(t.warn >= 0.0 && t.abort.is_finite()) {
                return Err(invalid(field, "thresholds must be finite and not negative"));
            }
            ordered(&format!("{field}.warn"), t.warn, t.abort)?;
        }
        if self.error_rate.abort > 1.0 {
            return Err(invalid("error_rate.abort", "is a ratio: at most 1"));
        }
        if self.min_requests == 0 {
            return Err(invalid(
                "min_requests",
                "must be at least 1: no data is never a pass",
            ));
        }
        positive("inconclusive_wait", self.inconclusive_wait)?;
        positive("hotfix_bake", self.hotfix_bake)?;
        positive("look_interval", self.look_interval)?;
        self.judge.validate()?;
        positive("deploy_deadline", self.deploy_deadline)
    }
}

/// A progressive rollout of `version`.
///
/// ```
/// use ops_core::runbooks::{RolloutConfig, RunbookConfig, Strategy};
/// let c = RolloutConfig::from_toml("strategy = \"blue-green\"").unwrap();
/// assert_eq!(c.stages().iter().map(|s| s.percent).collect::<Vec<_>>(), vec![0, 10, 100]);
/// assert!(RolloutConfig::from_toml("stages = [{ percent = 50, bake = \"1m\" }, { percent = 25, bake = \"1m\" }]").is_err());
/// ```
#[derive(Clone)]
pub struct Rollout {
    config: RolloutConfig,
    version: String,
    deployer: Arc<dyn Deployer>,
    metrics: Arc<dyn MetricsSource>,
    notifier: Option<Arc<dyn Notifier>>,
    hotfix: bool,
}

impl Rollout {
    /// Rolls `version` out through `deployer`, judging stages by `metrics`.
    pub fn new(
        version: impl Into<String>,
        deployer: Arc<dyn Deployer>,
        metrics: Arc<dyn MetricsSource>,
        config: RolloutConfig,
    ) -> Self {
        Self {
            config,
            version: version.into(),
            deployer,
            metrics,
            notifier: None,
            hotfix: false,
        }
    }

    /// Skips the canary stages: straight to 100 %, one analysis after `hotfix_bake`.
    pub fn hotfix(mut self) -> Self {
        self.hotfix = true;
        self
    }

    /// Where to announce start, abort and completion.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn stages(&self) -> Vec<Stage> {
        if self.hotfix {
            vec![Stage::new(100, self.config.hotfix_bake)]
        } else {
            self.config.stages()
        }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let target = self.deployer.target().to_string();
        let (version, key) = (
            self.version.clone(),
            format!("rollout/{target}/{}", self.version),
        );
        let name = if self.hotfix {
            "hotfix-rollout"
        } else {
            "progressive-rollout"
        };
        let d = self.deployer.clone();
        let mut rb = Runbook::new(name, &target).with_category(crate::engine::Category::Deploy);
        let stable: Output<String> = rb.add_step(Step::read("stable", move |_| {
            let d = d.clone();
            Ok(Action::new("Deployer::current", json!({}), async move {
                let state = d.current().await?;
                state.primary_release().map(str::to_string).ok_or_else(|| {
                    Error::invalid_input(
                        "runbook",
                        "rollout",
                        "target",
                        "no release serves traffic: use deploy-and-verify for a first deploy",
                    )
                })
            }))
        }));
        if let Some(n) = self.notifier.clone() {
            let (t, v, k) = (target.clone(), version.clone(), key.clone());
            let (t2, v2, s) = (target.clone(), version.clone(), stable.clone());
            rb = rb.step(announce_step(
                n,
                key.clone(),
                move |_| {
                    Ok(
                        Notification::new(Severity::Info, format!("Rolling out {v} to {t}"))
                            .dedup_key(&k),
                    )
                },
                move |ctx| {
                    let stable = ctx.get(&s).unwrap_or_else(|_| "the stable release".into());
                    format!("Rollout of {v2} to {t2} aborted; all traffic is back on {stable}")
                },
            ));
        }
        let request = DeployRequest {
            deadline: self.config.deploy_deadline,
            ..DeployRequest::new(&version)
        };
        // Abort: all traffic to the stable release.
        let s = stable.clone();
        let deploy: Output<Release> =
            rb.add_step(deploy_step(self.deployer.clone(), request, move |ctx| {
                ctx.get(&s)
            }));
        let stages = self.stages();
        // The last stage's analysis: its judge carries into the next stage.
        let mut previous: Option<Output<Analysis>> = None;
        for (i, stage) in stages.iter().copied().enumerate() {
            let p = stage.percent;
            let (d, canary, s) = (self.deployer.clone(), deploy.clone(), stable.clone());
            let started: Output<StageStart> = rb.add_step(
                Step::mutate(format!("traffic-{p}"), move |ctx| {
                    let canary = ctx.get(&canary)?;
                    let split = TrafficSplit::new([(canary.id, p), (ctx.get(&s)?, 100 - p)])?;
                    let (d, clock) = (d.clone(), ctx.clock().clone());
                    Ok(Action::new(
                        "Deployer::set_traffic",
                        json!(split),
                        async move {
                            d.set_traffic(&split).await?;
                            // The stage starts once its split is in force: a move that rolls
                            // pods out (a replica ratio) is not judged at the old shares.
                            Ok(StageStart {
                                percent: p,
                                at: clock.now(),
                            })
                        },
                    ))
                })
                .idempotent(),
            );
            if !stage.bake.is_zero() && p == 0 {
                rb = rb.step(wait_step(&format!("bake-{p}"), stage.bake));
            } else if !stage.bake.is_zero() {
                // The bake, watched: aborts at the look that finds a regression.
                let (metrics, config) = (self.metrics.clone(), self.config.clone());
                let (canary, s, since, before) = (
                    deploy.clone(),
                    stable.clone(),
                    started.clone(),
                    previous.clone(),
                );
                let bake = stage.bake;
                let watched: Output<Watched> = rb.add_step(
                    Step::mutate(format!("bake-{p}"), move |ctx| {
                        let (canary, stable) = (ctx.get(&canary)?, ctx.get(&s)?);
                        let start = ctx.get(&since)?;
                        // The evidence carries over from a stage that passed; after a human
                        // overrode a failed one, the next stage starts afresh.
                        let judge = match &before {
                            Some(a) => ctx
                                .get(a)?
                                .sequential
                                .filter(|s| s.last.decision == crate::judge::Decision::Pass)
                                .map(|s| s.judge),
                            None => None,
                        };
                        let (metrics, config, ctx) = (metrics.clone(), config.clone(), ctx.clone());
                        Ok(Action::new(
                            "MetricsSource::counts",
                            json!({ "release": canary.id, "baseline": stable, "percent": p }),
                            async move {
                                watch::Bake {
                                    ctx: &ctx,
                                    metrics: metrics.as_ref(),
                                    config: &config,
                                    canary: &canary.id,
                                    stable: &stable,
                                    start,
                                    length: bake,
                                    judge,
                                }
                                .watch()
                                .await
                            },
                        ))
                    })
                    .idempotent(),
                );
                let (metrics, config) = (self.metrics.clone(), self.config.clone());
                let canary = deploy.clone();
                let analysis: Output<Analysis> =
                    rb.add_step(Step::read(format!("analyze-{p}"), move |ctx| {
                        let canary = ctx.get(&canary)?;
                        let start = ctx.get(&started)?;
                        let watched = ctx.get(&watched)?;
                        let (metrics, config, ctx) = (metrics.clone(), config.clone(), ctx.clone());
                        Ok(Action::new(
                            "MetricsSource::read",
                            json!({ "release": canary.id, "percent": p }),
                            async move {
                                match watched.judge.clone() {
                                    Some(judge) => {
                                        watch::close_stage(
                                            &ctx,
                                            metrics.as_ref(),
                                            &config,
                                            &canary.id,
                                            start,
                                            watched,
                                            judge,
                                        )
                                        .await
                                    }
                                    None => {
                                        analyse(&ctx, metrics.as_ref(), &config, &canary.id, start)
                                            .await
                                    }
                                }
                            },
                        ))
                    }));
                previous = Some(analysis.clone());
                rb = rb.gate_if(
                    format!("confirm-{p}"),
                    format!("The analysis at {p} % needs a decision: go on?"),
                    move |ctx| Ok(ctx.get(&analysis)?.needs_human),
                );
            }
            let next_approved = stages.get(i + 1).is_some_and(|s| s.approve);
            if (self.config.approve_between_stages || next_approved) && i + 1 < stages.len() {
                let next = stages[i + 1].percent;
                rb = rb.gate(
                    format!("approve-{next}"),
                    format!("Go to {next} % of traffic on {version}?"),
                );
            }
        }
        if let Some(n) = self.notifier.clone() {
            rb = rb.step(notify_step("announce-result", n, move |ctx| {
                let canary = ctx.get(&deploy)?;
                Ok(Notification::new(
                    Severity::Info,
                    format!(
                        "Rolled out {version} to {target}: {} takes all traffic",
                        canary.id
                    ),
                )
                .event(NotificationEvent::Resolve)
                .dedup_key(&key))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for Rollout {
    type Summary = RolloutSummary;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    /// How each stage was judged and why the rollout went on or stopped.
    fn summary(&self, report: &RunReport) -> Option<RolloutSummary> {
        Some(RolloutSummary::from_report(report))
    }
}
