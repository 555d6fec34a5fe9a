//! Simulated canary rollouts as count streams, to measure canary judges: how often each
//! aborts a rollout with no regression (false aborts) and how often, and how early, it
//! catches one. Used by the Monte Carlo test in CI (`tests/judge_monte_carlo.rs`, bounded
//! runs) and by `src/bin/canary_judges.rs`, which prints the figures of `RESULTS.md`.
//!
//! Every minute of a stage is one look: the total traffic splits between canary and baseline
//! by the stage's share (binomially), errors and slow requests fall binomially on each arm.

use ops_core::judge::{Decision, Histogram, Interval, JudgeConfig, RequestCounts, SequentialJudge};

/// One simulated rollout's conditions.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Requests per minute, both arms together.
    pub rpm: u64,
    /// The baseline's error rate.
    pub baseline_error_rate: f64,
    /// The canary's error rate as a multiple of the baseline's (1: no regression).
    pub canary_error_factor: f64,
    /// Stages: the canary's share and the bake in minutes (looks once a minute).
    pub stages: Vec<(f64, u32)>,
    /// Simulate latency histograms (the same distribution on both arms).
    pub latency: bool,
}

impl Scenario {
    /// The seed's canary: 1 % for 15 minutes, 5 % for 30, 25 % for 60, then 100 %.
    pub fn seed(rpm: u64, baseline_error_rate: f64, canary_error_factor: f64) -> Self {
        Self {
            rpm,
            baseline_error_rate,
            canary_error_factor,
            stages: vec![(0.01, 15), (0.05, 30), (0.25, 60)],
            latency: true,
        }
    }
}

/// How a simulated rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every stage passed: the canary reached 100 %.
    Promoted,
    /// Stopped (a regression, inconclusive or invalid) in stage `stage` (0-based) at `minute`
    /// of it, after the canary had served `failed` errors in the rollout.
    Stopped {
        /// The stage.
        stage: usize,
        /// Minutes into it (1-based).
        minute: u32,
        /// The canary's errors served before the stop.
        canary_errors: u64,
    },
}

/// A canary judge as the simulation drives it.
pub trait Judge {
    /// One look at one interval: `true` to stop now.
    fn look(&mut self, interval: &Interval) -> bool;
    /// The stage's bake is over: `true` to stop.
    fn end_stage(&mut self) -> bool;
}

/// The sequential judge of `ops_core::judge`.
#[derive(Debug)]
pub struct Sequential(pub SequentialJudge);

impl Sequential {
    /// With `config`.
    pub fn new(config: JudgeConfig) -> Self {
        Self(SequentialJudge::new(config).expect("a valid judge config"))
    }
}

impl Judge for Sequential {
    fn look(&mut self, interval: &Interval) -> bool {
        self.0
            .observe(interval)
            .map_or(true, |l| l.decision.stops())
    }
    fn end_stage(&mut self) -> bool {
        self.0.end_stage().decision != Decision::Pass
    }
}

/// The judge `Rollout` had before: the canary's error rate over the whole stage, read once at
/// the end of the bake, against a fixed abort threshold (the seeds' 5 %).
#[derive(Debug, Default)]
pub struct EndOfBakeThreshold {
    requests: u64,
    errors: u64,
}

impl Judge for EndOfBakeThreshold {
    fn look(&mut self, interval: &Interval) -> bool {
        self.requests += interval.canary.requests;
        self.errors += interval.canary.errors;
        false
    }
    fn end_stage(&mut self) -> bool {
        let rate = self.errors as f64 / self.requests.max(1) as f64;
        (self.requests, self.errors) = (0, 0);
        rate > 0.05
    }
}

/// A Kayenta-style judge: at every look, a fixed-level test of canary against baseline over
/// the stage so far (a one-sided two-proportion z-test at `alpha`), with no correction for
/// looking again and again.
#[derive(Debug)]
pub struct RepeatedFixedTest {
    /// The level of each test.
    pub alpha_z: f64,
    stage: [u64; 4],
}

impl RepeatedFixedTest {
    /// Tests at one-sided level 0.01 (z > 2.326).
    pub fn at_one_percent() -> Self {
        Self {
            alpha_z: 2.326,
            stage: [0; 4],
        }
    }
}

impl Judge for RepeatedFixedTest {
    fn look(&mut self, i: &Interval) -> bool {
        let s = &mut self.stage;
        s[0] += i.canary.requests;
        s[1] += i.canary.errors;
        s[2] += i.baseline.requests;
        s[3] += i.baseline.errors;
        let (nc, ec, nb, eb) = (s[0] as f64, s[1] as f64, s[2] as f64, s[3] as f64);
        if nc == 0.0 || nb == 0.0 {
            return false;
        }
        let pooled = (ec + eb) / (nc + nb);
        let se = (pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nb)).sqrt();
        se > 0.0 && (ec / nc - eb / nb) / se > self.alpha_z
    }
    fn end_stage(&mut self) -> bool {
        self.stage = [0; 4];
        false
    }
}

/// The latency histogram's bounds (ms) and the chance a request is slower than each.
const LATENCY_BOUNDS: [f64; 4] = [250.0, 500.0, 1000.0, 2000.0];
const LATENCY_TAIL: [f64; 4] = [0.2, 0.05, 0.01, 0.002];

/// Runs one rollout of `scenario` past `judge`, drawing from `rng`.
pub fn simulate(scenario: &Scenario, judge: &mut dyn Judge, rng: &mut fastrand::Rng) -> Outcome {
    let pb = scenario.baseline_error_rate;
    let pc = (pb * scenario.canary_error_factor).min(1.0);
    let mut canary_errors = 0u64;
    for (stage, &(share, minutes)) in scenario.stages.iter().enumerate() {
        for minute in 1..=minutes {
            let nc = binomial(rng, scenario.rpm, share);
            let nb = scenario.rpm - nc;
            let (ec, eb) = (binomial(rng, nc, pc), binomial(rng, nb, pb));
            canary_errors += ec;
            let interval = Interval {
                canary: RequestCounts {
                    requests: nc,
                    errors: ec,
                    latency: scenario.latency.then(|| latency(rng, nc)),
                },
                baseline: RequestCounts {
                    requests: nb,
                    errors: eb,
                    latency: scenario.latency.then(|| latency(rng, nb)),
                },
                canary_share: share,
            };
            if judge.look(&interval) {
                return Outcome::Stopped {
                    stage,
                    minute,
                    canary_errors,
                };
            }
        }
        if judge.end_stage() {
            return Outcome::Stopped {
                stage,
                minute: minutes,
                canary_errors,
            };
        }
    }
    Outcome::Promoted
}

/// Bucket counts for `n` requests: each tail a binomial thinning of the one before.
fn latency(rng: &mut fastrand::Rng, n: u64) -> Histogram {
    let mut tails = [0u64; 4];
    let (mut above, mut p_prev) = (n, 1.0);
    for (k, p) in LATENCY_TAIL.iter().enumerate() {
        above = binomial(rng, above, p / p_prev);
        tails[k] = above;
        p_prev = *p;
    }
    let mut counts = vec![n - tails[0]];
    counts.extend(tails.windows(2).map(|w| w[0] - w[1]));
    counts.push(tails[3]);
    Histogram {
        bounds_ms: LATENCY_BOUNDS.to_vec(),
        counts,
    }
}

/// A binomial draw: exact (geometric gaps between successes) when the mean is small, the
/// normal approximation otherwise.
pub fn binomial(rng: &mut fastrand::Rng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(rng, n, 1.0 - p);
    }
    let mean = n as f64 * p;
    if mean < 40.0 {
        let log_q = (1.0 - p).ln();
        let (mut at, mut hits) = (0u64, 0u64);
        loop {
            let u = 1.0 - rng.f64(); // (0, 1]
            at = at.saturating_add((u.ln() / log_q).floor() as u64 + 1);
            if at > n {
                return hits;
            }
            hits += 1;
        }
    }
    let sd = (mean * (1.0 - p)).sqrt();
    let (u1, u2) = (1.0 - rng.f64(), rng.f64());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mean + sd * z).round().clamp(0.0, n as f64) as u64
}

/// The share of `runs` rollouts that stopped before 100 %, and of those that stopped, the
/// mean canary errors served and minutes into the rollout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    /// Rollouts run.
    pub runs: u32,
    /// Of which stopped before 100 %.
    pub stopped: u32,
    /// Mean canary errors served before the stop, over stopped runs.
    pub mean_canary_errors: f64,
    /// Mean minutes from the rollout's start to the stop, over stopped runs.
    pub mean_minutes: f64,
}

impl Tally {
    /// The stopped share.
    pub fn rate(&self) -> f64 {
        f64::from(self.stopped) / f64::from(self.runs.max(1))
    }
}

/// Runs `runs` rollouts of `scenario`, a fresh judge from `judge` for each, seeded by `seed`.
pub fn tally(
    scenario: &Scenario,
    runs: u32,
    seed: u64,
    judge: impl Fn() -> Box<dyn Judge>,
) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut stopped, mut errors, mut minutes) = (0u32, 0u64, 0u64);
    for _ in 0..runs {
        let mut j = judge();
        if let Outcome::Stopped {
            stage,
            minute,
            canary_errors,
        } = simulate(scenario, j.as_mut(), &mut rng)
        {
            stopped += 1;
            errors += canary_errors;
            let before: u32 = scenario.stages[..stage].iter().map(|s| s.1).sum();
            minutes += u64::from(before + minute);
        }
    }
    let per = |x: u64| x as f64 / f64::from(stopped.max(1));
    Tally {
        runs,
        stopped,
        mean_canary_errors: per(errors),
        mean_minutes: per(minutes),
    }
}
