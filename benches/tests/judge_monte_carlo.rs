//! The canary judge's promises, checked by simulation (bounded runs, seeded, so CI takes
//! seconds and a failure reproduces): at α = 0.01 for the whole rollout, with the seed's
//! stages (1 % for 15 minutes, 5 % for 30, 25 % for 60) and errors and latency both compared,
//! - no-regression rollouts are stopped at most 1 % of the time (plus Monte Carlo error), at
//!   baseline error rates 0, 0.1 %, 0.5 % and 2 %;
//! - a +50 % error-rate regression on a 0.5 % baseline is stopped before 100 % in at least
//!   95 % of rollouts at 5,000 requests a minute, and 70 % at 1,200.

use ops_benches::canary::{Judge, Scenario, Sequential, tally};
use ops_core::judge::JudgeConfig;

fn sequential() -> Box<dyn Judge> {
    Box::new(Sequential::new(JudgeConfig::default()))
}

/// The false-abort rate may exceed α only by Monte Carlo error: three standard errors.
fn at_most_alpha(stopped: f64, runs: u32) -> bool {
    let alpha = 0.01;
    stopped <= alpha + 3.0 * (alpha * (1.0 - alpha) / f64::from(runs)).sqrt()
}

#[test]
fn rollouts_without_a_regression_are_rarely_stopped() {
    let runs = 1000;
    for (i, rate) in [0.0, 0.001, 0.005, 0.02].into_iter().enumerate() {
        let scenario = Scenario::seed(1200, rate, 1.0);
        let t = tally(&scenario, runs, 7 + i as u64, sequential);
        assert!(
            at_most_alpha(t.rate(), runs),
            "baseline {rate}: {} of {runs} rollouts stopped",
            t.stopped
        );
    }
}

#[test]
fn a_fifty_percent_regression_is_caught_before_full_traffic() {
    let runs = 1000;
    for (rpm, least) in [(5000, 0.95), (1200, 0.70)] {
        let scenario = Scenario::seed(rpm, 0.005, 1.5);
        let t = tally(&scenario, runs, 42, sequential);
        assert!(
            t.rate() >= least,
            "{rpm} rpm: caught {} of {runs} (want {least})",
            t.stopped
        );
    }
}
