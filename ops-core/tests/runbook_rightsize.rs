//! Right-size: hot services scale up and are measured again; idle ones get a suggestion.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::memory::{MemoryDeployer, MemoryMetricsSource};
use ops_core::runbooks::*;

async fn world(cpu: f64, memory: f64) -> (Arc<MemoryDeployer>, Arc<MemoryMetricsSource>, Runner) {
    world_after(cpu, memory, 0.5, 0.5).await
}

/// Utilisation `cpu` / `memory` over the last hour, and `cpu_after` / `memory_after` over the
/// ten minutes after now (what a change would bring).
async fn world_after(
    cpu: f64,
    memory: f64,
    cpu_after: f64,
    memory_after: f64,
) -> (Arc<MemoryDeployer>, Arc<MemoryMetricsSource>, Runner) {
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
        let at = clock.now() - chrono::Duration::seconds(30) - chrono::Duration::minutes(10 * i);
        m.record_sample(at, None, Metric::CpuUtilisation, cpu)
            .unwrap();
        m.record_sample(at, None, Metric::MemoryUtilisation, memory)
            .unwrap();
        let later = clock.now() + chrono::Duration::seconds(90 * (i + 1));
        m.record_sample(later, None, Metric::CpuUtilisation, cpu_after)
            .unwrap();
        m.record_sample(later, None, Metric::MemoryUtilisation, memory_after)
            .unwrap();
    }
    (d, m, Runner::new().with_clock(clock))
}

fn change(resource: Resource, from: &str, to: &str) -> Change {
    Change {
        resource,
        from: from.into(),
        to: to.into(),
    }
}

/// Seed 000's steps: CPU 1 → 2, memory 2Gi → 4Gi, one more instance only past the top.
fn seed_000() -> RightSizeConfig {
    RightSizeConfig::from_toml(
        "cpu_steps = [\"1\", \"2\"]\nmemory_steps = [\"1Gi\", \"2Gi\", \"4Gi\"]\nstep_instances = 1",
    )
    .unwrap()
}

async fn sized(d: &MemoryDeployer, cpu: &str, memory: &str) {
    d.scale(&ScaleSpec {
        cpu: Some(cpu.into()),
        memory: Some(memory.into()),
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hot_resource_takes_its_next_vertical_step_and_instances_only_past_the_top() {
    // CPU hot: 1 → 2 CPUs, memory and instances untouched.
    let (d, m, runner) = world(0.92, 0.5).await;
    sized(&d, "1000m", "2Gi").await;
    let s = RightSize::new(d.clone(), m, seed_000())
        .run(&runner, Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert_eq!(
        s.decision,
        Decision::ScaleUp {
            changes: vec![change(Resource::Cpu, "1000m", "2")]
        }
    );
    let scale = d.current().await.unwrap().scale.unwrap();
    assert_eq!(
        (
            scale.cpu.as_deref(),
            scale.memory.as_deref(),
            scale.max_instances
        ),
        (Some("2"), Some("2Gi"), Some(4))
    );
    assert_eq!(s.target_met, Some(true));

    // Both hot, CPU already at the top: memory 2Gi → 4Gi and one more instance.
    let (d, m, runner) = world(0.95, 0.9).await;
    sized(&d, "2", "2Gi").await;
    let s = RightSize::new(d.clone(), m, seed_000())
        .run(&runner, Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert_eq!(
        s.decision,
        Decision::ScaleUp {
            changes: vec![
                change(Resource::Memory, "2Gi", "4Gi"),
                change(Resource::MaxInstances, "4", "5")
            ]
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_scale_up_that_leaves_utilisation_above_the_target_fails_the_run() {
    let (d, m, runner) = world_after(0.92, 0.5, 0.85, 0.5).await;
    sized(&d, "1", "2Gi").await;
    let Finished { report, summary } = RightSize::new(d.clone(), m, seed_000())
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let message = &report.error.as_ref().unwrap().message;
    assert!(
        message.contains("CPU at 85 % after scaling (target below 70 %)"),
        "{message}"
    );
    assert_eq!(summary.unwrap().target_met, Some(false));
}

#[tokio::test(start_paused = true)]
async fn an_idle_service_with_steps_is_offered_one_step_down_of_each() {
    let (d, m, runner) = world(0.1, 0.2).await;
    sized(&d, "2", "4Gi").await;
    let s = RightSize::new(d.clone(), m, seed_000())
        .run(&runner, Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert_eq!(
        s.decision,
        Decision::SuggestScaleDown {
            changes: vec![
                change(Resource::Cpu, "2", "1"),
                change(Resource::Memory, "4Gi", "2Gi")
            ]
        }
    );
    assert_eq!(s.target_met, None);
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
    assert_eq!(
        s.decision,
        Decision::ScaleUp {
            changes: vec![change(Resource::MaxInstances, "4", "6")]
        }
    );
    assert_eq!(s.target_met, Some(true), "{:?}", s.after);
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
        Decision::SuggestScaleDown {
            changes: vec![change(Resource::MaxInstances, "4", "2")]
        }
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
        Decision::ScaleDown {
            changes: vec![change(Resource::MaxInstances, "4", "2")]
        }
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
        ("cpu_steps = [\"2\", \"1\"]", "cpu_steps[1]"),
        ("memory_steps = [\"1Gi\", \"lots\"]", "memory_steps[1]"),
        ("target = 0.2", "target"),
    ] {
        match RightSizeConfig::from_toml(toml).unwrap_err().kind() {
            ops_core::ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{other:?}"),
        }
    }
}
