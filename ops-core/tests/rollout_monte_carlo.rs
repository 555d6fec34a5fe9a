//! Whole rollouts, judged at every look, on in-memory services with random traffic: a few
//! seeded runs beside the judge's own Monte Carlo (`benches/tests/judge_monte_carlo.rs`), to
//! check the runbook feeds the judge what the judge assumes (per-look counts of both
//! releases, the split's share).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::{MemoryDeployer, MemoryMetricsSource};
use ops_core::runbooks::*;

fn start() -> DateTime<Utc> {
    "2026-08-01T10:00:00Z".parse().unwrap()
}

/// One rollout of a canary whose error rate is `factor` times the stable release's 1 %, with
/// 1,200 requests a minute split by the live traffic; errors and latencies drawn from `seed`.
async fn rollout(factor: f64, seed: u64) -> (RunReport, String) {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let deployer = Arc::new(MemoryDeployer::new("api").with_clock(clock.clone()));
    deployer
        .deploy(&DeployRequest::new("api:1.0"))
        .await
        .unwrap();
    let metrics = Arc::new(MemoryMetricsSource::new("api"));
    let (d, m, c) = (deployer.clone(), metrics.clone(), clock.clone());
    let traffic = tokio::spawn(async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        loop {
            SystemClock.sleep(Duration::from_secs(1)).await;
            let state = d.current().await.unwrap();
            // Twenty requests a second (the rehearsal's traffic), each routed by the split.
            for _ in 0..20 {
                let mut pick = rng.u8(0..100);
                let Some(t) = state.traffic.iter().find(|t| {
                    let hit = pick < t.percent;
                    pick = pick.saturating_sub(t.percent);
                    hit
                }) else {
                    continue;
                };
                let p = if t.release == "api-00001" {
                    0.01
                } else {
                    0.01 * factor
                };
                let status = if rng.f64() < p { 503 } else { 200 };
                m.record_request(c.now(), Some(&t.release), status, 40.0 + 80.0 * rng.f64());
            }
        }
    });
    let report = Rollout::new(
        "api:1.1",
        deployer.clone(),
        metrics,
        RolloutConfig::default(),
    )
    .run(&Runner::new().with_clock(clock), Mode::Execute)
    .await
    .unwrap();
    traffic.abort();
    let primary = deployer
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    (report.report, primary)
}

#[tokio::test(start_paused = true)]
async fn healthy_canaries_go_through_and_bad_ones_come_back() {
    for seed in 1..=6 {
        let (report, primary) = rollout(1.0, seed).await;
        assert_eq!(
            report.outcome,
            Some(RunOutcome::Succeeded),
            "seed {seed}: a healthy canary was stopped: {:?}",
            report.error
        );
        assert_eq!(primary, "api-00002");
    }
    // Three times the errors (3 %, under the 5 % guard rail): the judge must see it.
    for seed in 11..=16 {
        let (report, primary) = rollout(3.0, seed).await;
        assert_eq!(report.outcome, Some(RunOutcome::Failed), "seed {seed}");
        let why = &report.error.as_ref().unwrap().message;
        assert!(why.contains("errors: canary"), "seed {seed}: {why}");
        assert!(
            !report
                .steps
                .iter()
                .any(|s| s.name == "traffic-100" && s.status == StepStatus::Succeeded),
            "seed {seed}: stopped before full traffic"
        );
        assert_eq!(
            primary, "api-00001",
            "seed {seed}: traffic is back on stable"
        );
    }
}
