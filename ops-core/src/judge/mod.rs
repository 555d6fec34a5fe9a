//! The canary judge: a sequential, canary-versus-baseline test that may look as often as it
//! likes and still keeps its false-abort rate below `α` for the whole rollout.
//!
//! Pure arithmetic over counts (no I/O, no clock): a rollout feeds it, at every look, the
//! requests, errors and latency histograms each arm served since the previous look, and the
//! traffic share the split gave the canary. It answers, per look, whether to go on, abort, or
//! distrust the data, with every number behind the answer.
//!
//! # The tests
//! - **Errors.** Conditional on the errors both arms had in an interval, each error is the
//!   canary's with a probability set by the two error rates and the traffic share. Against
//!   the null "the canary's error rate is at most `1 + error_margin` times the baseline's", a
//!   mixture of likelihood ratios over how much worse it might be
//!   ([`evidence::RateRatioEvidence`]) is a test supermartingale: by Ville's inequality it
//!   ever reaches `1/α` with probability at most `α`, however many looks and stages there are.
//!   The evidence carries across stages (1 → 5 → 25 %): each stage adds to it.
//! - **Latency.** The same test on "slower than T" for each configured threshold `T` (counted
//!   from the two histograms, so the whole distribution's tail is compared, not one
//!   percentile), averaged over the thresholds: an average of e-processes is an e-process.
//! - **Sample ratio.** Whether the canary really got the share the split gives it
//!   ([`evidence::SampleRatioEvidence`]), under its own `sample_ratio_alpha`. When it did not,
//!   routing is broken and the analysis is [`Decision::Invalid`]: no comparison is trusted.
//!
//! `alpha` is split equally between the compared metrics (errors, and latency when thresholds
//! are set). A stage passes only when its bake is over ([`SequentialJudge::end_stage`]) and
//! the canary served at least `min_canary_requests` in it; otherwise it is
//! [`Decision::Inconclusive`], which never passes.
//!
//! References: Lindon, Sanden and Shirikian, "Rapid regression detection in software
//! deployments through sequential testing" (KDD 2022); Ramdas et al., "Game-theoretic
//! statistics and safe anytime-valid inference" (2023).

pub mod evidence;
mod histogram;

use serde::{Deserialize, Serialize};

pub use histogram::{Histogram, MAX_BUCKETS};

use crate::Result;
use crate::config::invalid;
use evidence::{Arm, RateRatioEvidence, SampleRatioEvidence};

/// How the judge decides. Loads from TOML inside a rollout config; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeConfig {
    /// The chance of aborting a rollout that has no regression, for the whole rollout (all
    /// looks, stages and compared metrics). Default 0.01.
    pub alpha: f64,
    /// The chance of calling the traffic routing broken when it is not. Default 0.001.
    pub sample_ratio_alpha: f64,
    /// How much worse, relatively, the canary's error rate may be before it counts as a
    /// regression: 0.1 tolerates 10 % more errors. Default 0.
    pub error_margin: f64,
    /// The same for the share of requests slower than each latency threshold. Default 0.
    pub latency_margin: f64,
    /// The latency thresholds compared, in milliseconds (each rounded up to the histogram's
    /// next bucket bound); empty compares errors only. Default 250, 500, 1000, 2000.
    pub latency_thresholds_ms: Vec<f64>,
    /// The fewest canary requests a stage must see before it can pass. Default 100.
    pub min_canary_requests: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            sample_ratio_alpha: 0.001,
            error_margin: 0.0,
            latency_margin: 0.0,
            latency_thresholds_ms: vec![250.0, 500.0, 1000.0, 2000.0],
            min_canary_requests: 100,
        }
    }
}

/// The most latency thresholds a config may compare.
pub const MAX_LATENCY_THRESHOLDS: usize = 32;

impl JudgeConfig {
    /// Rejects values that make no sense, naming the field: probabilities outside (0, 0.5],
    /// negative or non-finite margins (at most 100), thresholds not positive and finite.
    pub fn validate(&self) -> Result<()> {
        for (field, p) in [
            ("judge.alpha", self.alpha),
            ("judge.sample_ratio_alpha", self.sample_ratio_alpha),
        ] {
            if !(p > 0.0 && p <= 0.5) {
                return Err(invalid(field, "give a probability above 0, at most 0.5"));
            }
        }
        for (field, m) in [
            ("judge.error_margin", self.error_margin),
            ("judge.latency_margin", self.latency_margin),
        ] {
            if !(0.0..=100.0).contains(&m) {
                return Err(invalid(field, "give a relative margin from 0 to 100"));
            }
        }
        if self.latency_thresholds_ms.len() > MAX_LATENCY_THRESHOLDS {
            return Err(invalid(
                "judge.latency_thresholds_ms",
                format!("at most {MAX_LATENCY_THRESHOLDS} thresholds"),
            ));
        }
        if self
            .latency_thresholds_ms
            .iter()
            .any(|t| !(t.is_finite() && *t > 0.0))
        {
            return Err(invalid(
                "judge.latency_thresholds_ms",
                "every threshold must be a positive number of milliseconds",
            ));
        }
        Ok(())
    }

    /// How many metrics share `alpha`.
    fn compared(&self) -> usize {
        if self.latency_thresholds_ms.is_empty() {
            1
        } else {
            2
        }
    }
}

/// What one release served over a window (one arm of a comparison): the answer of
/// [`crate::contracts::MetricsSource::counts`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Requests served.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Their latencies, when the source has them.
    pub latency: Option<Histogram>,
}

/// Both arms' counts over one interval, and the share of traffic the split gave the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The canary (the new release).
    pub canary: RequestCounts,
    /// The baseline (the stable release), over the same interval.
    pub baseline: RequestCounts,
    /// The canary's share of requests under the split, from 0 to 1.
    pub canary_share: f64,
}

/// What the judge says after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// No verdict yet: keep baking.
    Continue,
    /// The stage's bake is over, it saw enough canary requests, nothing was rejected.
    Pass,
    /// A regression: abort.
    Fail,
    /// The bake is over without enough canary requests to judge: never passes.
    Inconclusive,
    /// The canary did not get its share of traffic: routing is broken, nothing can be judged.
    Invalid,
}

impl Decision {
    /// Whether the rollout must stop (fail, inconclusive or invalid).
    pub fn stops(self) -> bool {
        !matches!(self, Decision::Continue | Decision::Pass)
    }
}

/// Events over exposure, summed over the rollout so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Errors, or requests slower than the threshold.
    pub events: u64,
    /// Requests.
    pub exposure: u64,
}

impl Tally {
    fn add(&mut self, events: u64, exposure: u64) {
        self.events = self.events.saturating_add(events);
        self.exposure = self.exposure.saturating_add(exposure);
    }
}

/// One test's standing after a look: enough to recompute the decision offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReading {
    /// `errors`, `latency`, or `sample_ratio`.
    pub test: String,
    /// The canary's events over its exposure, over the rollout so far (for latency, the
    /// threshold with the most evidence).
    pub canary: Tally,
    /// The same for the baseline.
    pub baseline: Tally,
    /// log₁₀ of the evidence against the null.
    pub log10_evidence: f64,
    /// log₁₀ of the bound the evidence is compared with (`1/α` of this test).
    pub log10_bound: f64,
    /// Whether the evidence reached the bound.
    pub rejected: bool,
}

/// One look: its number, every test's reading, the decision and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// Looks so far, this one included.
    pub number: u32,
    /// Canary requests in the current stage so far.
    pub stage_canary_requests: u64,
    /// Every test.
    pub tests: Vec<TestReading>,
    /// What to do.
    pub decision: Decision,
    /// One line on why, naming the counts and the evidence.
    pub why: String,
}

/// A rollout's judge: feed it every interval with [`observe`](Self::observe), close each
/// stage with [`end_stage`](Self::end_stage). It serializes whole (config and evidence), so a
/// rollout journals it between stages and a resumed run carries on with the same evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialJudge {
    config: JudgeConfig,
    errors: RateRatioEvidence,
    error_tally: (Tally, Tally),
    latency: Vec<LatencyTest>,
    sample_ratio: SampleRatioEvidence,
    stage_canary_requests: u64,
    looks: u32,
    /// Once a test rejects, the rollout's answer stays.
    settled: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LatencyTest {
    threshold_ms: f64,
    evidence: RateRatioEvidence,
    tally: (Tally, Tally),
}

impl SequentialJudge {
    /// A judge with no evidence yet; the config is validated.
    pub fn new(config: JudgeConfig) -> Result<Self> {
        config.validate()?;
        let latency = config
            .latency_thresholds_ms
            .iter()
            .map(|&threshold_ms| LatencyTest {
                threshold_ms,
                evidence: RateRatioEvidence::new(config.latency_margin),
                tally: Default::default(),
            })
            .collect();
        Ok(Self {
            errors: RateRatioEvidence::new(config.error_margin),
            error_tally: Default::default(),
            latency,
            sample_ratio: SampleRatioEvidence::default(),
            stage_canary_requests: 0,
            looks: 0,
            settled: None,
            config,
        })
    }

    /// Adds one interval and says what to do now: [`Decision::Continue`], or a rejection
    /// ([`Decision::Fail`], [`Decision::Invalid`]) that stays for the rest of the rollout.
    /// Counts that contradict themselves (more errors than requests, histograms with other
    /// bounds) are `InvalidInput` and change nothing.
    pub fn observe(&mut self, interval: &Interval) -> Result<Look> {
        check(interval)?;
        let (c, b) = (&interval.canary, &interval.baseline);
        let latency_counts = self.latency_counts(interval)?;
        self.looks = self.looks.saturating_add(1);
        self.stage_canary_requests = self.stage_canary_requests.saturating_add(c.requests);
        self.sample_ratio
            .observe(c.requests, b.requests, interval.canary_share);
        self.errors.observe(
            Arm {
                exposure: c.requests,
                events: c.errors,
            },
            Arm {
                exposure: b.requests,
                events: b.errors,
            },
        );
        self.error_tally.0.add(c.errors, c.requests);
        self.error_tally.1.add(b.errors, b.requests);
        if let Some(counts) = latency_counts {
            for (test, (canary, baseline)) in self.latency.iter_mut().zip(counts) {
                test.evidence.observe(canary, baseline);
                test.tally.0.add(canary.events, canary.exposure);
                test.tally.1.add(baseline.events, baseline.exposure);
            }
        }
        let tests = self.readings();
        if self.settled.is_none() {
            if tests.iter().any(|t| t.test == SAMPLE_RATIO && t.rejected) {
                self.settled = Some(Decision::Invalid);
            } else if tests.iter().any(|t| t.rejected) {
                self.settled = Some(Decision::Fail);
            }
        }
        Ok(self.look(tests, self.settled.unwrap_or(Decision::Continue)))
    }

    /// Closes the current stage (its bake is over): [`Decision::Pass`] when nothing rejected
    /// and the canary served at least `min_canary_requests` in it, else
    /// [`Decision::Inconclusive`] (or the rejection that settled the rollout). The evidence
    /// carries into the next stage; the stage's request count starts again.
    pub fn end_stage(&mut self) -> Look {
        let decision = match self.settled {
            Some(d) => d,
            None if self.stage_canary_requests >= self.config.min_canary_requests => Decision::Pass,
            None => Decision::Inconclusive,
        };
        let look = self.look(self.readings(), decision);
        self.stage_canary_requests = 0;
        look
    }

    /// Canary requests seen in the current stage so far.
    pub fn stage_canary_requests(&self) -> u64 {
        self.stage_canary_requests
    }

    /// The config it judges by.
    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    fn look(&self, tests: Vec<TestReading>, decision: Decision) -> Look {
        let why = explain(&tests, decision, self.stage_canary_requests, &self.config);
        Look {
            number: self.looks,
            stage_canary_requests: self.stage_canary_requests,
            tests,
            decision,
            why,
        }
    }

    /// Per threshold, the two arms' "slower than" counts; `None` when either histogram is
    /// missing or latency is not compared.
    fn latency_counts(&self, interval: &Interval) -> Result<Option<Vec<(Arm, Arm)>>> {
        let (Some(hc), Some(hb)) = (&interval.canary.latency, &interval.baseline.latency) else {
            return Ok(None);
        };
        if self.latency.is_empty() {
            return Ok(None);
        }
        if hc.bounds_ms != hb.bounds_ms {
            return Err(bad("the two histograms have different bucket bounds"));
        }
        let (tc, tb) = (hc.total()?, hb.total()?);
        let counts = self
            .latency
            .iter()
            .map(|t| {
                (
                    Arm {
                        exposure: tc,
                        events: hc.slower_than(t.threshold_ms),
                    },
                    Arm {
                        exposure: tb,
                        events: hb.slower_than(t.threshold_ms),
                    },
                )
            })
            .collect();
        Ok(Some(counts))
    }

    fn readings(&self) -> Vec<TestReading> {
        let share = self.config.alpha / self.config.compared() as f64;
        let bound = -share.log10();
        let mut tests = vec![reading(
            ERRORS,
            self.error_tally,
            self.errors.log_evidence(),
            bound,
        )];
        if !self.latency.is_empty() {
            // The average of the thresholds' e-processes, reported with the strongest one's counts.
            let logs: Vec<f64> = self
                .latency
                .iter()
                .map(|t| t.evidence.log_evidence())
                .collect();
            let mean = log_mean(&logs);
            let strongest = logs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            let t = &self.latency[strongest];
            let mut r = reading(LATENCY, t.tally, mean, bound);
            r.test = format!("{LATENCY}>{}ms", t.threshold_ms);
            tests.push(r);
        }
        let srm_bound = -self.config.sample_ratio_alpha.log10();
        tests.push(reading(
            SAMPLE_RATIO,
            self.error_tally,
            self.sample_ratio.log_evidence(),
            srm_bound,
        ));
        tests
    }
}

const ERRORS: &str = "errors";
const LATENCY: &str = "latency";
const SAMPLE_RATIO: &str = "sample_ratio";

fn reading(test: &str, tally: (Tally, Tally), ln_evidence: f64, log10_bound: f64) -> TestReading {
    let log10_evidence = ln_evidence / std::f64::consts::LN_10;
    TestReading {
        test: test.to_string(),
        canary: tally.0,
        baseline: tally.1,
        log10_evidence,
        log10_bound,
        rejected: log10_evidence >= log10_bound,
    }
}

/// `ln(mean(exp(xᵢ)))` without overflow.
fn log_mean(logs: &[f64]) -> f64 {
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    max + (sum / logs.len() as f64).ln()
}

fn explain(tests: &[TestReading], decision: Decision, stage: u64, config: &JudgeConfig) -> String {
    let describe = |t: &TestReading| {
        let (c, b) = (t.canary, t.baseline);
        if t.test == SAMPLE_RATIO {
            format!(
                "{}: canary {} vs baseline {} requests, evidence 10^{:.1} vs 10^{:.1}",
                t.test, c.exposure, b.exposure, t.log10_evidence, t.log10_bound
            )
        } else {
            format!(
                "{}: canary {} of {} vs baseline {} of {}, evidence 10^{:.1} vs 10^{:.1}",
                t.test, c.events, c.exposure, b.events, b.exposure, t.log10_evidence, t.log10_bound
            )
        }
    };
    let strongest = |only_srm: bool| {
        tests
            .iter()
            .filter(|t| (t.test == SAMPLE_RATIO) == only_srm && t.rejected)
            .max_by(|a, b| {
                (a.log10_evidence - a.log10_bound).total_cmp(&(b.log10_evidence - b.log10_bound))
            })
            .map(describe)
            .unwrap_or_default()
    };
    match decision {
        Decision::Fail => format!("{} — abort", strongest(false)),
        Decision::Invalid => format!("{} — traffic routing is broken", strongest(true)),
        Decision::Inconclusive => format!(
            "the canary served {stage} requests this stage, fewer than the {} needed to pass",
            config.min_canary_requests
        ),
        Decision::Pass | Decision::Continue => {
            let errors = tests.first().map(describe).unwrap_or_default();
            let verb = if decision == Decision::Pass {
                "pass"
            } else {
                "continue"
            };
            format!("{errors} — {verb}")
        }
    }
}

fn check(interval: &Interval) -> Result<()> {
    for (arm, counts) in [
        ("canary", &interval.canary),
        ("baseline", &interval.baseline),
    ] {
        if counts.errors > counts.requests {
            return Err(bad(format!(
                "the {arm} had {} errors in {} requests",
                counts.errors, counts.requests
            )));
        }
        if let Some(h) = &counts.latency {
            h.check()?;
        }
    }
    if !(0.0..=1.0).contains(&interval.canary_share) {
        return Err(bad(format!(
            "canary share {} is not between 0 and 1",
            interval.canary_share
        )));
    }
    Ok(())
}

fn bad(reason: impl Into<String>) -> crate::Error {
    crate::Error::invalid_input("judge", "observe", "interval", reason)
}
