//! Prints the canary judges' figures for `benches/RESULTS.md`: false-abort rates of rollouts
//! with no regression and catch rates of a +50 % error-rate regression, for the sequential
//! judge, the end-of-bake threshold judge `Rollout` had, and a Kayenta-style fixed-level test
//! repeated at every look, all in one run on the same simulated rollouts (same seeds).
//!
//! `cargo run --release -p ops-benches --bin canary_judges [RUNS]` (default 2000).

use ops_benches::canary::{
    EndOfBakeThreshold, Judge, RepeatedFixedTest, Scenario, Sequential, tally,
};
use ops_core::judge::JudgeConfig;

/// Makes a fresh judge for each simulated rollout.
type NewJudge = fn() -> Box<dyn Judge>;

fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let judges: [(&str, NewJudge); 3] = [
        ("sequential (ops, α = 0.01)", || {
            Box::new(Sequential::new(JudgeConfig::default()))
        }),
        ("end-of-bake threshold (5 %)", || {
            Box::new(EndOfBakeThreshold::default())
        }),
        ("z-test at 0.01, every look", || {
            Box::new(RepeatedFixedTest::at_one_percent())
        }),
    ];
    println!(
        "{runs} simulated rollouts per cell; stages 1 % 15 min, 5 % 30 min, 25 % 60 min; one look a minute\n"
    );
    println!(
        "| judge | stopped, no regression: 0 % | 0.1 % | 0.5 % | 2 % (1,200 rpm) | caught +50 % at 0.5 %, 5,000 rpm | 1,200 rpm | mean minutes to stop (1,200 rpm) | mean canary errors served (1,200 rpm) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, judge) in judges {
        let mut row = format!("| {name} |");
        for (i, rate) in [0.0, 0.001, 0.005, 0.02].into_iter().enumerate() {
            let t = tally(&Scenario::seed(1200, rate, 1.0), runs, 7 + i as u64, judge);
            row.push_str(&format!(" {:.2} % |", 100.0 * t.rate()));
        }
        let fast = tally(&Scenario::seed(5000, 0.005, 1.5), runs, 42, judge);
        let slow = tally(&Scenario::seed(1200, 0.005, 1.5), runs, 42, judge);
        row.push_str(&format!(
            " {:.1} % | {:.1} % | {:.0} | {:.0} |",
            100.0 * fast.rate(),
            100.0 * slow.rate(),
            slow.mean_minutes,
            slow.mean_canary_errors
        ));
        println!("{row}");
    }
}
