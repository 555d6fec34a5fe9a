//! Right-size: scale up when CPU or memory runs hot, suggest scaling down when idle, and
//! check utilisation after the change.
//!
//! Replaces seed 000's "Scale Up Resources": if CPU is above 80 %, `gcloud run services update
//! --cpu 2`; if memory is above 85 %, `--memory 4Gi`; more instances only if needed ("not
//! typical"); wait ten minutes and check again, with utilisation below 70 % as the success
//! test; below 30 %, consider downsizing. Vertical steps come from `cpu_steps` and
//! `memory_steps`; a hot resource without a step left (or without steps) adds
//! `step_instances` to the maximum instead.

mod size;

pub use size::{Change, Resource, cpu_cores, memory_bytes};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::config::{human_duration, invalid, positive};
use crate::Result;
use crate::contracts::{Deployer, Metric, MetricQuery, MetricsSource, ScaleSpec, TimeWindow};
use crate::engine::{Action, Output, RunReport, Runbook, Step};

/// Settings of right-sizing.
///
/// ```toml
/// window = "1h"                   # utilisation measured over this
/// cpu_high = 0.80                 # above: scale up
/// memory_high = 0.85              # above: scale up
/// low = 0.30                      # both below: suggest scaling down
/// cpu_steps = ["1", "2", "4"]     # vertical sizes, smallest first (none: instances only)
/// memory_steps = ["1Gi", "2Gi", "4Gi"]
/// step_instances = 1              # max instances added when no vertical step is left (0: never)
/// scale_down_automatically = false
/// settle = "10m"                  # wait after scaling, then measure over this long
/// target = 0.70                   # after the change both must be below this (seed 000)
/// min_samples = 3
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RightSizeConfig {
    /// Measurement window (default 1 h).
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// CPU utilisation above which to scale up (default 0.80).
    pub cpu_high: f64,
    /// Memory utilisation above which to scale up (default 0.85).
    pub memory_high: f64,
    /// Utilisation below which (CPU and memory) to suggest scaling down (default 0.30).
    pub low: f64,
    /// CPU sizes per instance, smallest first, in the platform's notation (default none).
    pub cpu_steps: Vec<String>,
    /// Memory sizes per instance, smallest first (default none).
    pub memory_steps: Vec<String>,
    /// Max instances added when a hot resource has no vertical step left, or removed when idle
    /// without vertical steps (default 2; 0: never change instances).
    pub step_instances: u32,
    /// Act on a scale-down instead of only suggesting it (default false).
    pub scale_down_automatically: bool,
    /// Wait after scaling, then measure over this long (default 10 min).
    #[serde(with = "human_duration")]
    pub settle: Duration,
    /// After a scale-up, CPU and memory over the settle period must both be below this, or the
    /// run fails saying so (default 0.70, seed 000's success test).
    pub target: f64,
    /// Fewer samples: no decision (default 3).
    pub min_samples: u64,
}

impl Default for RightSizeConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            cpu_high: 0.80,
            memory_high: 0.85,
            low: 0.30,
            cpu_steps: Vec::new(),
            memory_steps: Vec::new(),
            step_instances: 2,
            scale_down_automatically: false,
            settle: Duration::from_secs(600),
            target: 0.70,
            min_samples: 3,
        }
    }
}

impl RunbookConfig for RightSizeConfig {
    fn validate(&self) -> Result<()> {
        positive("window", self.window)?;
        positive("settle", self.settle)?;
        for (field, v) in [
            ("cpu_high", self.cpu_high),
            ("memory_high", self.memory_high),
            ("low", self.low),
            ("target", self.target),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(
                    field,
                    format!("{v} is not a ratio from 0 to 1 (write 80 % as 0.8)"),
                ));
            }
        }
        if self.low >= self.cpu_high.min(self.memory_high) {
            return Err(invalid("low", "must be below cpu_high and memory_high"));
        }
        if self.target <= self.low {
            return Err(invalid("target", "must be above low"));
        }
        size::check_steps("cpu_steps", &self.cpu_steps, cpu_cores)?;
        size::check_steps("memory_steps", &self.memory_steps, memory_bytes)?;
        if self.step_instances == 0 && self.cpu_steps.is_empty() && self.memory_steps.is_empty() {
            return Err(invalid(
                "step_instances",
                "0 with no cpu_steps or memory_steps leaves nothing to scale",
            ));
        }
        Ok(())
    }
}

/// CPU and memory utilisation over the window (`None`: too little data).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    /// CPU, 0 to 1.
    pub cpu: Option<f64>,
    /// Memory, 0 to 1.
    pub memory: Option<f64>,
}

/// What right-sizing decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// More CPU, memory or instances.
    ScaleUp {
        /// What changes.
        changes: Vec<Change>,
    },
    /// Less (only with `scale_down_automatically`).
    ScaleDown {
        /// What changes.
        changes: Vec<Change>,
    },
    /// Less would do; a person decides.
    SuggestScaleDown {
        /// What would change.
        changes: Vec<Change>,
    },
    /// Nothing to do.
    Steady {
        /// Why.
        reason: String,
    },
}

/// Before, decision, after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RightSizeSummary {
    /// Utilisation before.
    pub before: Utilisation,
    /// The decision.
    pub decision: Decision,
    /// Utilisation over the settle period after the change (only when something was scaled).
    pub after: Option<Utilisation>,
    /// Whether a scale-up brought CPU and memory below the target.
    pub target_met: Option<bool>,
}

/// Right-sizes one service.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::{MemoryDeployer, MemoryMetricsSource};
/// use ops_core::clock::{Clock, SystemClock};
/// use ops_core::contracts::{DeployRequest, Deployer, Metric, ScaleSpec};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{Decision, RightSize, RightSizeConfig, Procedure};
/// let d = Arc::new(MemoryDeployer::new("api"));
/// d.deploy(&DeployRequest::new("api:1")).await?;
/// d.scale(&ScaleSpec { max_instances: Some(4), ..Default::default() }).await?;
/// let m = Arc::new(MemoryMetricsSource::new("m"));
/// for i in 0..3 {
///     let at = SystemClock.now() - chrono::Duration::minutes(5 * i);
///     m.record_sample(at, None, Metric::CpuUtilisation, 0.9)?;
///     m.record_sample(at, None, Metric::MemoryUtilisation, 0.5)?;
/// }
/// let ops_core::runbooks::Finished { summary, .. } = RightSize::new(d, m, RightSizeConfig::default()).run(&Runner::new(), Mode::Execute).await?;
/// let decision = summary.unwrap().decision;
/// let Decision::ScaleUp { changes } = decision else { panic!("{decision:?}") };
/// assert_eq!((changes[0].from.as_str(), changes[0].to.as_str()), ("4", "6"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RightSize {
    config: RightSizeConfig,
    deployer: Arc<dyn Deployer>,
    metrics: Arc<dyn MetricsSource>,
}

impl RightSize {
    /// Right-sizes `deployer`'s target by `metrics`.
    pub fn new(
        deployer: Arc<dyn Deployer>,
        metrics: Arc<dyn MetricsSource>,
        config: RightSizeConfig,
    ) -> Self {
        Self {
            config,
            deployer,
            metrics,
        }
    }

    fn measure_step(&self, name: &str, over: Duration) -> Step {
        let (metrics, c) = (self.metrics.clone(), self.config.clone());
        Step::read(name, move |ctx| {
            let (metrics, c) = (metrics.clone(), c.clone());
            let window = TimeWindow::ending_at(ctx.clock().now(), over)?;
            Ok(Action::new(
                "MetricsSource::read",
                json!({ "window": window }),
                async move {
                    let read = |metric| {
                        let q = MetricQuery {
                            metric,
                            window,
                            release: None,
                            min_samples: c.min_samples,
                        };
                        let m = metrics.clone();
                        async move { m.read(&q).await.map(|r| r.value()) }
                    };
                    Ok(Utilisation {
                        cpu: read(Metric::CpuUtilisation).await?,
                        memory: read(Metric::MemoryUtilisation).await?,
                    })
                },
            ))
        })
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut rb = Runbook::new("right-size", self.deployer.target())
            .with_category(crate::engine::Category::Maintenance);
        let before: Output<Utilisation> =
            rb.add_step(self.measure_step("measure-before", self.config.window));
        let (d, c) = (self.deployer.clone(), self.config.clone());
        let decision: Output<Decision> = rb.add_step(Step::read("decide", move |ctx| {
            let before = ctx.get(&before)?;
            let (d, c) = (d.clone(), c.clone());
            Ok(Action::new("Deployer::current", json!({}), async move {
                let current = d.current().await?.scale.unwrap_or_default();
                Ok(decide(&c, before, &current))
            }))
        }));
        let d = self.deployer.clone();
        let decided = decision.clone();
        let scaled: Output<bool> = rb.add_step(
            Step::mutate("scale", move |ctx| {
                let decision = ctx.get(&decided)?;
                let d = d.clone();
                let changes = match decision {
                    Decision::ScaleUp { changes } | Decision::ScaleDown { changes } => changes,
                    _ => {
                        return Ok(Action::new(
                            "none",
                            json!({ "decision": decision }),
                            async { Ok(false) },
                        ));
                    }
                };
                let spec = size::spec_of(&changes);
                Ok(Action::new("Deployer::scale", json!(spec), async move {
                    d.scale(&spec).await?;
                    Ok(true)
                }))
            })
            .idempotent(),
        );
        let settle = self.config.settle;
        let was_scaled = scaled.clone();
        rb = rb.step(Step::read("settle", move |ctx| {
            let scaled = ctx.get(&was_scaled)?;
            let clock = ctx.clock().clone();
            Ok(Action::new(
                "wait",
                json!({ "seconds": if scaled { settle.as_secs() } else { 0 } }),
                async move {
                    if scaled {
                        clock.sleep(settle).await;
                    }
                    Ok(scaled)
                },
            ))
        }));
        // Measured over the settle period only: the hour before the change says nothing of it.
        let after: Output<Utilisation> = rb.add_step(self.measure_step("measure-after", settle));
        let target = self.config.target;
        rb = rb.step(Step::read("check-target", move |ctx| {
            let scaled_up =
                matches!(ctx.get(&decision)?, Decision::ScaleUp { .. }) && ctx.get(&scaled)?;
            let after = ctx.get(&after)?;
            Ok(Action::new(
                "check",
                json!({ "target": target }),
                async move {
                    if !scaled_up {
                        return Ok(None);
                    }
                    let over: Vec<String> = [("CPU", after.cpu), ("memory", after.memory)]
                        .into_iter()
                        .filter_map(|(what, v)| match v {
                            Some(v) if v < target => None,
                            Some(v) => Some(format!("{what} at {:.0} %", v * 100.0)),
                            None => Some(format!("{what} unknown")),
                        })
                        .collect();
                    if over.is_empty() {
                        Ok(Some(true))
                    } else {
                        Err(super::common::failed(
                            "utilisation below target after scaling",
                            format!(
                                "{} after scaling (target below {:.0} %): scale further",
                                over.join(", "),
                                target * 100.0
                            ),
                        ))
                    }
                },
            ))
        }));
        Ok(rb)
    }
}

impl super::Procedure for RightSize {
    type Summary = RightSizeSummary;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<RightSizeSummary> {
        match (
            report.output("measure-before"),
            report.output::<Decision>("decide"),
        ) {
            (Some(before), Some(decision)) => {
                let scaled = report.output::<bool>("scale").unwrap_or(false);
                let failed = report.steps.iter().any(|st| {
                    st.name == "check-target" && st.status == crate::engine::StepStatus::Failed
                });
                let target_met = if failed {
                    Some(false)
                } else {
                    report.output::<Option<bool>>("check-target").flatten()
                };
                Some(RightSizeSummary {
                    before,
                    decision,
                    after: if scaled {
                        report.output("measure-after")
                    } else {
                        None
                    },
                    target_met,
                })
            }
            _ => None,
        }
    }
}

fn decide(c: &RightSizeConfig, u: Utilisation, current: &ScaleSpec) -> Decision {
    let (Some(cpu), Some(memory)) = (u.cpu, u.memory) else {
        return Decision::Steady {
            reason: "too little utilisation data to decide".into(),
        };
    };
    let (cpu_hot, memory_hot) = (cpu > c.cpu_high, memory > c.memory_high);
    if cpu_hot || memory_hot {
        let changes = size::up(c, current, cpu_hot, memory_hot);
        return if changes.is_empty() {
            Decision::Steady {
                reason: format!(
                    "CPU {:.0} % / memory {:.0} % is hot, but no step is left: no larger size \
                     configured, and no max instances to raise",
                    cpu * 100.0,
                    memory * 100.0
                ),
            }
        } else {
            Decision::ScaleUp { changes }
        };
    }
    if cpu < c.low && memory < c.low {
        let changes = size::down(c, current);
        if !changes.is_empty() {
            return if c.scale_down_automatically {
                Decision::ScaleDown { changes }
            } else {
                Decision::SuggestScaleDown { changes }
            };
        }
    }
    Decision::Steady {
        reason: format!(
            "CPU {:.0} % and memory {:.0} % are within limits",
            cpu * 100.0,
            memory * 100.0
        ),
    }
}
