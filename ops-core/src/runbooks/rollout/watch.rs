//! Watching a stage's bake: every `look_interval`, the canary's and the stable release's
//! request counts since the last look go to the sequential judge, and the rollout aborts the
//! moment the judge rejects or a guard rail is crossed, without waiting for the bake to end.
//! A metrics source that cannot count per release makes the bake a plain wait, judged by
//! thresholds at its end as before.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::analysis::StageStart;
use super::{Analysis, RolloutConfig, RolloutMetric, Verdict};
use crate::contracts::{MetricsSource, RequestCounts, TimeWindow};
use crate::engine::StepContext;
use crate::judge::{Decision, Histogram, Interval, Look, SequentialJudge};
use crate::runbooks::common::failed;
use crate::{ErrorKind, Result};

/// What a watched bake leaves for the stage's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    /// The judge after the bake's looks; `None` when the source cannot count per release.
    pub judge: Option<SequentialJudge>,
    /// Why the bake was not watched (the source's `Unsupported`), when it was not.
    pub fallback: Option<String>,
    /// Looks taken.
    pub looks: u32,
    /// Times the bake was extended for too little traffic (`on_inconclusive = "wait"`).
    pub waits: u32,
    /// What stopped the watch early, when `on_failure = "pause"` leaves the decision to a
    /// human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// The judge's state after a stage, carried to the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    /// The judge, its evidence included.
    pub judge: SequentialJudge,
    /// The stage's closing look.
    pub last: Look,
}

/// One stage's bake, watched.
pub(super) struct Bake<'a> {
    pub(super) ctx: &'a StepContext,
    pub(super) metrics: &'a dyn MetricsSource,
    pub(super) config: &'a RolloutConfig,
    pub(super) canary: &'a str,
    pub(super) stable: &'a str,
    pub(super) start: StageStart,
    pub(super) length: Duration,
    /// The judge as the previous stage left it.
    pub(super) judge: Option<SequentialJudge>,
}

impl Bake<'_> {
    pub(super) async fn watch(self) -> Result<Watched> {
        let clock = self.ctx.clock().clone();
        let mut end = add(self.start.at, self.length)?;
        let mut judge = match self.judge.clone() {
            Some(j) => j,
            None => SequentialJudge::new(judge_config(self.config))?,
        };
        let mut waits = 0u32;
        let share = f64::from(self.start.percent) / 100.0;
        let mut stage = Guard::default();
        let (mut from, mut looks) = (self.start.at, 0u32);
        loop {
            if from >= end {
                // Too little traffic to pass: look longer, as configured.
                let short = judge.stage_canary_requests() < judge.config().min_canary_requests;
                if short
                    && self.config.on_inconclusive == super::OnInconclusive::Wait
                    && waits < self.config.max_inconclusive_waits
                {
                    waits += 1;
                    end = add(end, self.config.inconclusive_wait)?;
                    continue;
                }
                break;
            }
            let next = add(from, self.config.look_interval)?.min(end);
            if let Ok(wait) = (next - clock.now()).to_std() {
                clock.sleep(wait).await;
            }
            let window = TimeWindow::new(from, next)?;
            let canary = match self.metrics.counts(self.canary, &window).await {
                Ok(c) => c,
                Err(e) if matches!(e.kind(), ErrorKind::Unsupported { .. }) => {
                    // Nothing to watch with: the rest of the bake is a plain wait.
                    if let Ok(rest) = (end - clock.now()).to_std() {
                        clock.sleep(rest).await;
                    }
                    return Ok(Watched {
                        judge: None,
                        fallback: Some(e.to_string()),
                        looks,
                        waits,
                        stopped: None,
                    });
                }
                Err(e) => return Err(e),
            };
            let mut baseline = self.metrics.counts(self.stable, &window).await?;
            let mut canary = canary;
            // Latency compares only on one bucket layout: otherwise errors alone this look.
            let layout = |c: &RequestCounts| c.latency.as_ref().map(|h| h.bounds_ms.clone());
            if layout(&canary) != layout(&baseline) {
                (canary.latency, baseline.latency) = (None, None);
            }
            let interval = Interval {
                canary,
                baseline,
                canary_share: share,
            };
            let look = judge.observe(&interval)?;
            stage.add(&interval.canary);
            looks = looks.saturating_add(1);
            let p = self.start.percent;
            self.ctx
                .evidence(format!("look {} at {p} %", look.number), &look);
            // The evidence explains best; the guard rails catch what it has not yet seen.
            let stop = if look.decision.stops() {
                Some((format!("analysis at {p} %"), look.why))
            } else {
                stage
                    .crossed(self.config)
                    .map(|why| (format!("guard rail at {p} %"), why))
            };
            if let Some((check, why)) = stop {
                if self.config.on_failure == super::OnFailure::Pause {
                    // A human decides at the stage's gate; the watch ends here.
                    return Ok(Watched {
                        judge: Some(judge),
                        fallback: None,
                        looks,
                        waits,
                        stopped: Some(format!("{check}: {why}")),
                    });
                }
                return Err(failed(&check, why));
            }
            from = next;
        }
        Ok(Watched {
            judge: Some(judge),
            fallback: None,
            looks,
            waits,
            stopped: None,
        })
    }
}

/// The judge's config with the metrics on trial (`dry_run_metrics`) left out of it.
fn judge_config(config: &RolloutConfig) -> crate::judge::JudgeConfig {
    let mut judge = config.judge.clone();
    if config.dry_run_metrics.contains(&RolloutMetric::LatencyP95) {
        judge.latency_thresholds_ms.clear();
    }
    judge
}

/// The stage's analysis from a watched bake: the judge closes the stage; the thresholds'
/// readings over the stage are reported beside it (and decide nothing).
pub(super) async fn close_stage(
    ctx: &StepContext,
    metrics: &dyn MetricsSource,
    config: &RolloutConfig,
    release: &str,
    start: StageStart,
    watched: Watched,
    mut judge: SequentialJudge,
) -> Result<Analysis> {
    let percent = start.percent;
    let last = judge.end_stage();
    ctx.evidence(format!("stage {percent} % closed"), &last);
    let window = TimeWindow::new(start.at, ctx.clock().now())?;
    let mut readings = super::analysis::measure(metrics, config, release, window).await?;
    for m in &mut readings {
        ctx.evidence(format!("{:?} at {percent} %", m.metric), &*m);
        // The judge decides; the thresholds' verdicts are for the report.
        m.dry_run = true;
    }
    let verdict = match last.decision {
        // A guard rail stopped the watch (on_failure = "pause"): not a pass either.
        Decision::Pass | Decision::Continue if watched.stopped.is_some() => Verdict::Fail,
        Decision::Pass | Decision::Continue => Verdict::Pass,
        Decision::Inconclusive => Verdict::Inconclusive,
        Decision::Fail | Decision::Invalid => Verdict::Fail,
    };
    let analysis = |needs_human| Analysis {
        percent,
        verdict,
        metrics: readings.clone(),
        waits: watched.waits,
        needs_human,
        sequential: Some(Sequential {
            judge: judge.clone(),
            last: last.clone(),
        }),
    };
    match verdict {
        Verdict::Pass | Verdict::Warn => Ok(analysis(false)),
        Verdict::Inconclusive if config.on_inconclusive == super::OnInconclusive::Pause => {
            Ok(analysis(true))
        }
        Verdict::Inconclusive => Err(failed(
            &format!("analysis at {percent} %"),
            format!(
                "too little traffic to judge after {} extra waits ({})",
                watched.waits, last.why
            ),
        )),
        Verdict::Fail if config.on_failure == super::OnFailure::Pause => Ok(analysis(true)),
        Verdict::Fail => Err(failed(&format!("analysis at {percent} %"), last.why)),
    }
}

/// The absolute guard rails of the seeds (error rate and p95 latency abort levels), over the
/// stage so far, once it has `min_requests` canary requests.
#[derive(Debug, Default)]
struct Guard {
    requests: u64,
    errors: u64,
    latency: Option<Histogram>,
}

impl Guard {
    fn add(&mut self, c: &RequestCounts) {
        self.requests = self.requests.saturating_add(c.requests);
        self.errors = self.errors.saturating_add(c.errors);
        if let Some(h) = &c.latency {
            match &mut self.latency {
                Some(sum) if sum.bounds_ms == h.bounds_ms => {
                    for (s, n) in sum.counts.iter_mut().zip(&h.counts) {
                        *s = s.saturating_add(*n);
                    }
                }
                Some(_) => {}
                None => self.latency = Some(h.clone()),
            }
        }
    }

    fn crossed(&self, config: &RolloutConfig) -> Option<String> {
        if self.requests < config.min_requests {
            return None;
        }
        let on_trial = |m| config.dry_run_metrics.contains(&m);
        let rate = self.errors as f64 / self.requests as f64;
        if rate > config.error_rate.abort && !on_trial(RolloutMetric::ErrorRate) {
            return Some(format!(
                "error rate {:.2} % ({} of {}) is over the abort level {:.2} %",
                100.0 * rate,
                self.errors,
                self.requests,
                100.0 * config.error_rate.abort
            ));
        }
        if on_trial(RolloutMetric::LatencyP95) {
            return None;
        }
        let p95 = self.latency.as_ref().and_then(p95_at_least)?;
        (p95 > config.latency_p95_ms.abort).then(|| {
            format!(
                "p95 latency is over {p95} ms, above the abort level {} ms",
                config.latency_p95_ms.abort
            )
        })
    }
}

/// A lower bound on the p95: the lower edge of the bucket holding the 95th percentile.
fn p95_at_least(h: &Histogram) -> Option<f64> {
    let total = h.total().ok()?;
    if total == 0 {
        return None;
    }
    let rank = (total as f64 * 0.95).ceil() as u64;
    let mut seen = 0u64;
    for (i, n) in h.counts.iter().enumerate() {
        seen = seen.saturating_add(*n);
        if seen >= rank {
            return Some(match i.checked_sub(1) {
                Some(below) => h.bounds_ms.get(below).copied()?,
                None => 0.0,
            });
        }
    }
    None
}

fn add(at: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .ok_or_else(|| crate::Error::invalid_input("runbook", "rollout", "bake", "too long"))
}
