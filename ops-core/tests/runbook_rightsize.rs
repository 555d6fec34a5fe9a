//! Right-size: hot services scale up and are measured again; idle ones get a suggestion.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::memory::{MemoryDeployer, MemoryMetricsSource};
use ops_core::runbooks::*;

async fn world(cpu: f64, memory: f64) -> (Arc<MemoryDeployer>, Arc<MemoryMetricsSource>, Runner) {
    let clock = Arc::new(SimulatedClock::starting_at(
        "2026-04-01T12:00:00Z".parse().unwrap(),
    ));
    let d = Arc::new(MemoryDeployer::new("api"));
    d.deploy(&DeployRequest::new("api:1")).await.unwrap();
    d.scale(&ScaleSpec {
        min_instances: Some(1),
        max_instances: Some(4),
        ..Default::default()
    })
    .await
    .unwrap();
    let m = Arc::new(MemoryMetricsSource::new("m"));
    for i in 0..6 {
        let at = clock.now() - chrono::Duration::minutes(10 * i);
        m.record_sample(at, None, Metric::CpuUtilisation, cpu)
            .unwrap();
        m.record_sample(at, None, Metric::MemoryUtilisation, memory)
            .unwrap();
    }
    (d, m, Runner::new().with_clock(clock))
}

async fn max(d: &MemoryDeployer) -> Option<u32> {
    d.current().await.unwrap().scale.unwrap().max_instances
}

#[tokio::test(start_paused = true)]
async fn a_hot_service_scales_up_and_is_measured_after_settling() {
    let (d, m, runner) = world(0.92, 0.5).await;
    let t0 = SystemClock.instant();
    let Finished { report, summary } = RightSize::new(d.clone(), m, RightSizeConfig::default())
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let s = summary.unwrap();
    assert_eq!(s.decision, Decision::ScaleUp { from: 4, to: 6 });
    assert!(
        (s.before.cpu.unwrap() - 0.92).abs() < 1e-9,
        "{:?}",
        s.before
    );
    assert!(s.after.is_some(), "measured again after settling");
    assert_eq!(max(&d).await, Some(6));
    assert_eq!(SystemClock.instant() - t0, Duration::from_secs(600));
}

#[tokio::test(start_paused = true)]
async fn an_idle_service_gets_a_suggestion_not_a_change() {
    let (d, m, runner) = world(0.1, 0.2).await;
    let Finished { report: _, summary } =
        RightSize::new(d.clone(), m.clone(), RightSizeConfig::default())
            .run(&runner, Mode::Execute)
            .await
            .unwrap();
    assert_eq!(
        summary.unwrap().decision,
        Decision::SuggestScaleDown { from: 4, to: 2 }
    );
    assert_eq!(max(&d).await, Some(4), "nothing changed");
    let auto = RightSizeConfig {
        scale_down_automatically: true,
        ..RightSizeConfig::default()
    };
    let Finished { report: _, summary } = RightSize::new(d.clone(), m, auto)
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        summary.unwrap().decision,
        Decision::ScaleDown { from: 4, to: 2 }
    );
    assert_eq!(max(&d).await, Some(2));
}

#[tokio::test(start_paused = true)]
async fn within_limits_or_without_data_nothing_happens() {
    let (d, m, runner) = world(0.5, 0.5).await;
    let Finished {
        report: _,
        summary: s,
    } = RightSize::new(d.clone(), m, RightSizeConfig::default())
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert!(matches!(s.unwrap().decision, Decision::Steady { .. }));
    let empty = Arc::new(MemoryMetricsSource::new("none"));
    let Finished {
        report: _,
        summary: s,
    } = RightSize::new(d.clone(), empty, RightSizeConfig::default())
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        s.unwrap().decision,
        Decision::Steady {
            reason: "too little utilisation data to decide".into()
        }
    );
    assert_eq!(max(&d).await, Some(4));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_the_scale_without_making_it() {
    let (d, m, runner) = world(0.95, 0.95).await;
    let Finished { report, summary: _ } = RightSize::new(d.clone(), m, RightSizeConfig::default())
        .run(&runner, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(report.planned[0].call, "Deployer::scale");
    assert_eq!(report.planned[0].args["max_instances"], 6);
    assert_eq!(max(&d).await, Some(4));
}

#[test]
fn config() {
    for (toml, field) in [
        ("cpu_high = 80", "cpu_high"),
        ("low = 0.9", "low"),
        ("step_instances = 0", "step_instances"),
    ] {
        match RightSizeConfig::from_toml(toml).unwrap_err().kind() {
            ops_core::ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{other:?}"),
        }
    }
}
