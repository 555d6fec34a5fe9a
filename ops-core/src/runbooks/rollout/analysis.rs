//! Judging a stage: the canary's error rate and p95 latency over the stage so far, against the
//! warn and abort thresholds, waiting for data when there is too little.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{OnFailure, OnInconclusive, RolloutConfig, RolloutMetric, Thresholds};
use crate::contracts::{Metric, MetricQuery, MetricReading, MetricsSource, TimeWindow};
use crate::engine::StepContext;
use crate::runbooks::common::failed;
use crate::{ErrorKind, Result};

/// How one metric or one stage judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within the warning level.
    Pass,
    /// Above warning, below abort.
    Warn,
    /// Too little data to judge.
    Inconclusive,
    /// Above the abort level.
    Fail,
}

/// One metric's reading at a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// Which.
    pub metric: RolloutMetric,
    /// Its value, when there was enough data.
    pub value: Option<f64>,
    /// Samples behind it.
    pub samples: u64,
    /// Its verdict.
    pub verdict: Verdict,
    /// Evaluated only: does not count towards the stage's verdict.
    pub dry_run: bool,
    /// The source cannot measure it (its `Unsupported` reason: Prometheus without a latency
    /// query, Vercel's request log without durations): reported, and it counts towards no
    /// verdict. A stage the source can measure nothing of is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
}

/// A stage's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The stage's share.
    pub percent: u8,
    /// The worst verdict of the metrics that count.
    pub verdict: Verdict,
    /// Every metric.
    pub metrics: Vec<MetricResult>,
    /// Extra waits for data.
    pub waits: u32,
    /// Whether a human must decide (pause policies).
    pub needs_human: bool,
    /// The sequential judge after this stage, when the bake was watched (carried into the
    /// next stage's evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<super::watch::Sequential>,
}

/// When a stage's traffic share took effect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StageStart {
    pub(super) percent: u8,
    pub(super) at: DateTime<Utc>,
}

fn judge(value: f64, t: Thresholds) -> Verdict {
    if value > t.abort {
        Verdict::Fail
    } else if value > t.warn {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

pub(super) async fn measure(
    metrics: &dyn MetricsSource,
    config: &RolloutConfig,
    release: &str,
    window: TimeWindow,
) -> Result<Vec<MetricResult>> {
    let mut out = Vec::new();
    let mut unsupported = None;
    for (metric, query, t) in [
        (
            RolloutMetric::ErrorRate,
            Metric::ErrorRatio,
            config.error_rate,
        ),
        (
            RolloutMetric::LatencyP95,
            Metric::LatencyPercentile { percentile: 95.0 },
            config.latency_p95_ms,
        ),
    ] {
        let q = MetricQuery {
            metric: query,
            window,
            release: Some(release.to_string()),
            min_samples: config.min_requests,
        };
        let dry_run = config.dry_run_metrics.contains(&metric);
        let (value, samples, verdict) = match metrics.read(&q).await {
            Ok(MetricReading::Value { value, samples }) => (Some(value), samples, judge(value, t)),
            Ok(MetricReading::InsufficientData { samples, .. }) => {
                (None, samples, Verdict::Inconclusive)
            }
            Err(e) if matches!(e.kind(), ErrorKind::Unsupported { .. }) => {
                out.push(MetricResult {
                    metric,
                    value: None,
                    samples: 0,
                    verdict: Verdict::Inconclusive,
                    dry_run,
                    unsupported: Some(e.to_string()),
                });
                unsupported = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        out.push(MetricResult {
            metric,
            value,
            samples,
            verdict,
            dry_run,
            unsupported: None,
        });
    }
    match unsupported {
        Some(e) if out.iter().all(|m| m.unsupported.is_some()) => Err(e),
        _ => Ok(out),
    }
}

/// Whether a reading counts towards a stage's verdict.
pub(super) fn counts(m: &MetricResult) -> bool {
    !m.dry_run && m.unsupported.is_none()
}

pub(super) async fn analyse(
    ctx: &StepContext,
    metrics: &dyn MetricsSource,
    config: &RolloutConfig,
    release: &str,
    start: StageStart,
) -> Result<Analysis> {
    let clock = ctx.clock();
    let mut waits = 0;
    loop {
        let window = TimeWindow::new(start.at, clock.now())?;
        let results = measure(metrics, config, release, window).await?;
        let verdict = results
            .iter()
            .filter(|m| counts(m))
            .map(|m| m.verdict)
            .max()
            .unwrap_or(Verdict::Pass);
        for m in &results {
            ctx.evidence(format!("{:?} at {} %", m.metric, start.percent), m);
        }
        let describe = || {
            results
                .iter()
                .map(|m| {
                    format!(
                        "{:?}={}",
                        m.metric,
                        m.value.map_or("n/a".into(), |v| format!("{v:.4}"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let analysis = |needs_human| Analysis {
            percent: start.percent,
            verdict,
            metrics: results.clone(),
            waits,
            needs_human,
            sequential: None,
        };
        match verdict {
            Verdict::Pass | Verdict::Warn => return Ok(analysis(false)),
            Verdict::Fail => {
                return match config.on_failure {
                    OnFailure::Abort => Err(failed(
                        &format!("analysis at {} %", start.percent),
                        describe(),
                    )),
                    OnFailure::Pause => Ok(analysis(true)),
                };
            }
            Verdict::Inconclusive => match config.on_inconclusive {
                OnInconclusive::Wait if waits < config.max_inconclusive_waits => {
                    waits += 1;
                    clock.sleep(config.inconclusive_wait).await;
                }
                OnInconclusive::Pause => return Ok(analysis(true)),
                _ => {
                    return Err(failed(
                        &format!("analysis at {} %", start.percent),
                        format!(
                            "too little traffic to judge after {waits} extra waits ({})",
                            describe()
                        ),
                    ));
                }
            },
        }
    }
}
