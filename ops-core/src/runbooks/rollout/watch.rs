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
use crate::judge::evidence::AboveLevelEvidence;
use crate::judge::{Decision, Interval, Look, SequentialJudge};
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
        let mut stage = Guard::new(self.config);
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
                    // Nothing to watch with: the rest of the bake is a plain wait, and the
                    // thresholds judge at its end. Said in the report, not silently.
                    self.ctx.evidence(
                        format!("judged by thresholds at {} %", self.start.percent),
                        e.to_string(),
                    );
                    tracing::warn!(percent = self.start.percent, reason = %e, "the metrics source cannot count per release: judging the stage by thresholds at the end of its bake");
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
            stage.add(&interval.canary, self.config);
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
/// stage so far, tested sequentially like the comparison: a guard rail trips when the evidence
/// that the canary's error rate is above the abort level (or that more than 5 % of its
/// requests are slower than the p95 abort level) reaches `1/`[`GUARD_ALPHA`]. A few unlucky
/// requests at the start of a stage do not trip it, however often it looks.
#[derive(Debug)]
struct Guard {
    requests: u64,
    errors: u64,
    slow: u64,
    timed: u64,
    error_evidence: AboveLevelEvidence,
    latency_evidence: AboveLevelEvidence,
}

/// The chance a guard rail trips, in one stage, on a canary within its levels.
pub const GUARD_ALPHA: f64 = 0.001;

impl Guard {
    fn new(config: &RolloutConfig) -> Self {
        Self {
            requests: 0,
            errors: 0,
            slow: 0,
            timed: 0,
            error_evidence: AboveLevelEvidence::new(config.error_rate.abort),
            latency_evidence: AboveLevelEvidence::new(0.05),
        }
    }

    fn add(&mut self, c: &RequestCounts, config: &RolloutConfig) {
        self.requests = self.requests.saturating_add(c.requests);
        self.errors = self.errors.saturating_add(c.errors);
        self.error_evidence.observe(c.requests, c.errors);
        if let Some(h) = &c.latency {
            let (total, slow) = (
                h.total().unwrap_or(0),
                h.slower_than(config.latency_p95_ms.abort),
            );
            self.timed = self.timed.saturating_add(total);
            self.slow = self.slow.saturating_add(slow);
            self.latency_evidence.observe(total, slow);
        }
    }

    fn crossed(&self, config: &RolloutConfig) -> Option<String> {
        let on_trial = |m| config.dry_run_metrics.contains(&m);
        let bound = (1.0 / GUARD_ALPHA).ln();
        let log10 = |ln: f64| ln / std::f64::consts::LN_10;
        if self.error_evidence.log_evidence() >= bound && !on_trial(RolloutMetric::ErrorRate) {
            return Some(format!(
                "error rate {:.2} % ({} of {}) is above the abort level {:.2} %, evidence 10^{:.1}",
                100.0 * self.errors as f64 / self.requests.max(1) as f64,
                self.errors,
                self.requests,
                100.0 * config.error_rate.abort,
                log10(self.error_evidence.log_evidence())
            ));
        }
        if self.latency_evidence.log_evidence() >= bound && !on_trial(RolloutMetric::LatencyP95) {
            return Some(format!(
                "p95 latency is above the abort level {} ms ({} of {} requests slower), evidence 10^{:.1}",
                config.latency_p95_ms.abort,
                self.slow,
                self.timed,
                log10(self.latency_evidence.log_evidence())
            ));
        }
        None
    }
}

fn add(at: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .ok_or_else(|| crate::Error::invalid_input("runbook", "rollout", "bake", "too long"))
}
