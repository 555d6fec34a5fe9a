//! Right-size: scale up when CPU or memory runs hot, suggest scaling down when idle, and
//! report utilisation before and after.
//!
//! Replaces the seeds' "if CPU stays above 80 % or memory above 85 %, `gcloud run services
//! update --max-instances=N+2`; below 30 %, consider lowering it", and the check ten minutes
//! later.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::config::{human_duration, invalid, positive};
use crate::contracts::{Deployer, Metric, MetricQuery, MetricsSource, ScaleSpec, TimeWindow};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::{Error, Result};

/// Settings of right-sizing.
///
/// ```toml
/// window = "1h"                   # utilisation measured over this
/// cpu_high = 0.80                 # above: scale up
/// memory_high = 0.85              # above: scale up
/// low = 0.30                      # both below: suggest scaling down
/// step_instances = 2              # max instances added (or removed)
/// scale_down_automatically = false
/// settle = "10m"                  # wait after scaling before measuring again
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
    /// Instances added or removed per decision (default 2).
    pub step_instances: u32,
    /// Act on a scale-down instead of only suggesting it (default false).
    pub scale_down_automatically: bool,
    /// Wait after scaling before measuring again (default 10 min).
    #[serde(with = "human_duration")]
    pub settle: Duration,
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
            step_instances: 2,
            scale_down_automatically: false,
            settle: Duration::from_secs(600),
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
        if self.step_instances == 0 {
            return Err(invalid("step_instances", "must be at least 1"));
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
    /// Raise max instances.
    ScaleUp {
        /// Max instances before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Lower max instances (only with `scale_down_automatically`).
    ScaleDown {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Lowering would do; a person decides.
    SuggestScaleDown {
        /// Current max instances.
        from: u32,
        /// Suggested.
        to: u32,
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
    /// Utilisation after the settle period (only when something was scaled).
    pub after: Option<Utilisation>,
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
/// assert_eq!(summary.unwrap().decision, Decision::ScaleUp { from: 4, to: 6 });
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

    fn measure_step(&self, name: &str) -> Step {
        let (metrics, c) = (self.metrics.clone(), self.config.clone());
        Step::read(name, move |ctx| {
            let (metrics, c) = (metrics.clone(), c.clone());
            let window = TimeWindow::ending_at(ctx.clock().now(), c.window)?;
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
        let before: Output<Utilisation> = rb.add_step(self.measure_step("measure-before"));
        let (d, c) = (self.deployer.clone(), self.config.clone());
        let decision: Output<Decision> = rb.add_step(Step::read("decide", move |ctx| {
            let before = ctx.get(&before)?;
            let (d, c) = (d.clone(), c.clone());
            Ok(Action::new("Deployer::current", json!({}), async move {
                let max = d
                    .current()
                    .await?
                    .scale
                    .and_then(|s| s.max_instances)
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "runbook",
                            "right-size",
                            "max_instances",
                            "the service has no max instances set: set one first",
                        )
                    })?;
                Ok(decide(&c, before, max))
            }))
        }));
        let d = self.deployer.clone();
        let scaled: Output<bool> = rb.add_step(
            Step::mutate("scale", move |ctx| {
                let decision = ctx.get(&decision)?;
                let d = d.clone();
                let to = match decision {
                    Decision::ScaleUp { to, .. } | Decision::ScaleDown { to, .. } => to,
                    _ => {
                        return Ok(Action::new(
                            "none",
                            json!({ "decision": decision }),
                            async { Ok(false) },
                        ));
                    }
                };
                let spec = ScaleSpec {
                    max_instances: Some(to),
                    ..Default::default()
                };
                Ok(Action::new("Deployer::scale", json!(spec), async move {
                    d.scale(&spec).await?;
                    Ok(true)
                }))
            })
            .idempotent(),
        );
        let settle = self.config.settle;
        rb = rb.step(Step::read("settle", move |ctx| {
            let scaled = ctx.get(&scaled)?;
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
        rb = rb.step(self.measure_step("measure-after"));
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
                Some(RightSizeSummary {
                    before,
                    decision,
                    after: if scaled {
                        report.output("measure-after")
                    } else {
                        None
                    },
                })
            }
            _ => None,
        }
    }
}

fn decide(c: &RightSizeConfig, u: Utilisation, max: u32) -> Decision {
    let (Some(cpu), Some(memory)) = (u.cpu, u.memory) else {
        return Decision::Steady {
            reason: "too little utilisation data to decide".into(),
        };
    };
    if cpu > c.cpu_high || memory > c.memory_high {
        return Decision::ScaleUp {
            from: max,
            to: max.saturating_add(c.step_instances),
        };
    }
    if cpu < c.low && memory < c.low && max > 1 {
        let to = max.saturating_sub(c.step_instances).max(1);
        return if c.scale_down_automatically {
            Decision::ScaleDown { from: max, to }
        } else {
            Decision::SuggestScaleDown { from: max, to }
        };
    }
    Decision::Steady {
        reason: format!(
            "CPU {:.0} % and memory {:.0} % are within limits",
            cpu * 100.0,
            memory * 100.0
        ),
    }
}
