//! E-processes: running evidence against a null hypothesis that stays valid however often it is
//! read (Ville's inequality: under the null, the chance it ever reaches `1/α` is at most `α`).
//!
//! Each is a mixture, with fixed prior weights, of likelihood-ratio test martingales. The log of
//! every component's likelihood ratio is accumulated and the mixture taken in log space
//! (log-sum-exp), so neither huge counts nor long rollouts overflow.

use serde::{Deserialize, Serialize};

/// Evidence that the canary's rate of some event (an error, a request slower than a threshold)
/// is more than `1 + margin` times the baseline's.
///
/// Given the events of both arms in one interval, with exposures `n_c` (canary) and `n_b`
/// (baseline) and event rates `p_c`, `p_b`, each event falls on the canary with probability
/// `θ(ρ) = ρ·s / (ρ·s + 1 − s)`, where `s = n_c / (n_c + n_b)` and `ρ = p_c / p_b` (events
/// as Poisson counts: the conditional binomial test). The null is `ρ ≤ ρ₀ = 1 + margin`; an
/// alternative `ρ = ρ₀·r` with `r > 1` has likelihood ratio, for `e_c` canary and `e_b`
/// baseline events,
///
/// ```text
/// LR_r = (θ(ρ₀r) / θ(ρ₀))^e_c · ((1 − θ(ρ₀r)) / (1 − θ(ρ₀)))^e_b
/// ```
///
/// Its expectation per event is `θ·a + (1 − θ)·b` with `a > 1 > b`: one at `θ = θ(ρ₀)` and
/// below it for every `ρ < ρ₀`, so the running product over intervals is a supermartingale
/// under the whole null, whatever the traffic share of each interval (it may change from stage
/// to stage). The mixture over the grid of `r` with prior weights is too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateRatioEvidence {
    /// `ρ₀ = 1 + margin`.
    rho0: f64,
    /// The alternatives `r` and the log of their prior weights.
    grid: Vec<(f64, f64)>,
    /// `ln LR_r` so far, per alternative.
    log_lr: Vec<f64>,
}

/// The alternatives of [`RateRatioEvidence`]: how many times worse than the margin allows, and
/// each one's prior weight. Small regressions get the most weight: large ones pile up evidence
/// fast whatever their weight.
pub const RATE_RATIO_PRIOR: [(f64, f64); 6] = [
    (1.25, 0.25),
    (1.5, 0.25),
    (2.0, 0.2),
    (3.0, 0.15),
    (5.0, 0.1),
    (10.0, 0.05),
];

impl RateRatioEvidence {
    /// No evidence yet, against `ρ ≤ 1 + margin` (`margin` ≥ 0, finite: checked by the config).
    pub fn new(margin: f64) -> Self {
        let grid: Vec<(f64, f64)> = RATE_RATIO_PRIOR.iter().map(|&(r, w)| (r, w.ln())).collect();
        Self {
            rho0: 1.0 + margin,
            log_lr: vec![0.0; grid.len()],
            grid,
        }
    }

    /// Adds one interval: exposures and events of each arm. An interval where either arm had
    /// no exposure carries no evidence (there is nothing to compare).
    pub fn observe(&mut self, canary: Arm, baseline: Arm) {
        if canary.exposure == 0 || baseline.exposure == 0 {
            return;
        }
        let s = share(canary.exposure, baseline.exposure);
        // Rounding can reach 0 or 1 when one arm is ~10¹⁶ times the other: nothing to compare.
        if !(s > 0.0 && s < 1.0) {
            return;
        }
        let theta0 = theta(self.rho0, s);
        let (ec, eb) = (canary.events as f64, baseline.events as f64);
        let steps = self.grid.iter().map(|(r, _)| {
            let theta1 = theta(self.rho0 * r, s);
            weighted_ln(ec, theta1 / theta0) + weighted_ln(eb, (1.0 - theta1) / (1.0 - theta0))
        });
        add_steps(&mut self.log_lr, steps);
    }

    /// The natural log of the evidence (the mixture's likelihood ratio).
    pub fn log_evidence(&self) -> f64 {
        log_mixture(&self.grid, &self.log_lr)
    }
}

/// `events · ln(ratio)`, and zero without events: `0 · ln 0` and `0 · ln(0/0)` (a share so
/// near 0 or 1 that a probability rounds to it) are no evidence, not NaN.
fn weighted_ln(events: f64, ratio: f64) -> f64 {
    if events == 0.0 {
        0.0
    } else {
        events * ratio.ln()
    }
}

/// Adds one interval's `steps` (one per alternative) to `log_lr`, or nothing when rounding
/// made one of them NaN: an interval that cannot be computed carries no evidence, and NaN
/// must never reach a decision.
fn add_steps(log_lr: &mut [f64], steps: impl Iterator<Item = f64>) {
    let next: Vec<f64> = log_lr
        .iter()
        .zip(steps)
        .map(|(acc, step)| acc + step)
        .collect();
    if next.iter().any(|x| x.is_nan()) {
        return;
    }
    log_lr.copy_from_slice(&next);
}

/// Evidence that the canary's share of requests is not the share the traffic split gives it
/// (a sample-ratio mismatch: routing is broken, so no comparison can be trusted).
///
/// In each interval the canary's requests are binomial, `n_c ~ Bin(n_c + n_b, s)`, with `s` the
/// configured share. The alternatives move the log-odds of `s` by `κ`, in both directions; each
/// likelihood ratio is a martingale under the null whatever `s` each interval has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRatioEvidence {
    grid: Vec<(f64, f64)>,
    log_lr: Vec<f64>,
}

/// The log-odds shifts of [`SampleRatioEvidence`] (equal weights). The smallest, ±0.2, is a
/// canary getting about a fifth more or less than its share: routing jitter well inside that
/// drifts the evidence down, not up.
pub const SAMPLE_RATIO_SHIFTS: [f64; 8] = [-2.0, -1.0, -0.5, -0.2, 0.2, 0.5, 1.0, 2.0];

impl Default for SampleRatioEvidence {
    fn default() -> Self {
        let w = (1.0 / SAMPLE_RATIO_SHIFTS.len() as f64).ln();
        Self {
            grid: SAMPLE_RATIO_SHIFTS.iter().map(|&k| (k, w)).collect(),
            log_lr: vec![0.0; SAMPLE_RATIO_SHIFTS.len()],
        }
    }
}

impl SampleRatioEvidence {
    /// Adds one interval: the requests each arm served while the split gave the canary
    /// `share` (strictly between 0 and 1; other intervals carry no evidence).
    pub fn observe(&mut self, canary_requests: u64, baseline_requests: u64, share: f64) {
        if !(share > 0.0 && share < 1.0) {
            return;
        }
        let (nc, nb) = (canary_requests as f64, baseline_requests as f64);
        let odds = share / (1.0 - share);
        let steps = self.grid.iter().map(|(kappa, _)| {
            let shifted = odds * kappa.exp();
            let q = shifted / (1.0 + shifted);
            weighted_ln(nc, q / share) + weighted_ln(nb, (1.0 - q) / (1.0 - share))
        });
        add_steps(&mut self.log_lr, steps);
    }

    /// The natural log of the evidence.
    pub fn log_evidence(&self) -> f64 {
        log_mixture(&self.grid, &self.log_lr)
    }
}

/// Evidence that one release's rate of some event is above a fixed `level` (an absolute guard
/// rail: "more than 5 % of requests fail").
///
/// Each request has the event with probability `p`; against the null `p ≤ level`, the
/// alternatives `p = level·r` (capped below one) have likelihood ratio
/// `(p/level)^e · ((1 − p)/(1 − level))^(n − e)` over `n` requests with `e` events, a
/// supermartingale under the whole null; the mixture uses [`RATE_RATIO_PRIOR`]'s grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AboveLevelEvidence {
    level: f64,
    grid: Vec<(f64, f64)>,
    log_lr: Vec<f64>,
}

impl AboveLevelEvidence {
    /// No evidence yet, against a rate of at most `level` (strictly between 0 and 1; other
    /// levels never gather evidence).
    pub fn new(level: f64) -> Self {
        let grid: Vec<(f64, f64)> = RATE_RATIO_PRIOR.iter().map(|&(r, w)| (r, w.ln())).collect();
        Self {
            level,
            log_lr: vec![0.0; grid.len()],
            grid,
        }
    }

    /// Adds `exposure` requests of which `events` had the event (at most `exposure`).
    pub fn observe(&mut self, exposure: u64, events: u64) {
        let p0 = self.level;
        if !(p0 > 0.0 && p0 < 1.0) || events > exposure {
            return;
        }
        let (e, rest) = (events as f64, (exposure - events) as f64);
        let steps = self.grid.iter().map(|(r, _)| {
            // Halfway to certainty at most: the ratio stays finite.
            let p1 = (p0 * r).min((1.0 + p0) / 2.0);
            weighted_ln(e, p1 / p0) + weighted_ln(rest, (1.0 - p1) / (1.0 - p0))
        });
        add_steps(&mut self.log_lr, steps);
    }

    /// The natural log of the evidence.
    pub fn log_evidence(&self) -> f64 {
        log_mixture(&self.grid, &self.log_lr)
    }
}

/// One arm's exposure (requests) and events (errors, slow requests) in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    /// Requests served.
    pub exposure: u64,
    /// Of which had the event.
    pub events: u64,
}

fn share(canary: u64, baseline: u64) -> f64 {
    let (c, b) = (canary as f64, baseline as f64);
    c / (c + b)
}

/// The chance an event falls on the canary when its rate is `rho` times the baseline's and it
/// has share `s` of the exposure.
fn theta(rho: f64, s: f64) -> f64 {
    rho * s / (rho * s + (1.0 - s))
}

/// `ln Σ wᵢ·LRᵢ` from `ln wᵢ` and `ln LRᵢ`, without overflow.
fn log_mixture(grid: &[(f64, f64)], log_lr: &[f64]) -> f64 {
    let terms = grid.iter().zip(log_lr).map(|((_, lw), l)| lw + l);
    let max = terms.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + terms.map(|t| (t - max).exp()).sum::<f64>().ln()
}
