//! Seed 000's emergency shutdown of a daemon kept up by minimum instances, on the Cloud Run
//! and Cloud Monitoring simulator: the stop pins the instances at zero, the instance-count
//! metric confirms it, and resuming brings back the scaling there was. A stop that only closed
//! the traffic would leave the daemon running, and the confirmation fails it.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::contracts::{Deployer, Metric, ScaleSpec, TrafficSplit};
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::memory::MemoryDeployer;
use ops_core::runbooks::{EmergencyShutdown, Procedure, ShutdownConfig, StopConfirmation};
use ops_gcp::monitoring::INSTANCE_COUNT;
use ops_gcp::sim::GcpSim;
use ops_gcp::{CloudMonitoring, CloudRun};

fn instances() -> Metric {
    Metric::Named {
        name: INSTANCE_COUNT.into(),
    }
}

#[tokio::test]
async fn the_shutdown_stops_the_instances_and_the_metric_confirms_it() -> ops_core::Result<()> {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service(
        "code-developer",
        "europe-docker.pkg.dev/acme/app/daemon:1.0",
    );
    let run = Arc::new(CloudRun::new(sim.client()?, "code-developer")?);
    let metrics = Arc::new(CloudMonitoring::new(sim.client()?, "code-developer")?);
    // The daemon: always one instance, up to three.
    run.scale(&ScaleSpec {
        min_instances: Some(1),
        max_instances: Some(3),
        ..ScaleSpec::default()
    })
    .await?;
    clock.advance(Duration::from_secs(600));
    let runner = Runner::new().with_clock(clock.clone());

    let done = EmergencyShutdown::new("runaway cost", run.clone(), ShutdownConfig::default())
        .confirm_stopped(metrics.clone(), instances())
        .run(&runner, Mode::Execute)
        .await?;
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let confirmed: StopConfirmation = done.report.output("confirm-stopped").unwrap();
    assert_eq!(confirmed, StopConfirmation::Stopped { reading: Some(0.0) });
    assert!(
        done.summary
            .unwrap()
            .contains("Instances confirmed stopped"),
        "the incident report says so"
    );
    let stopped = run.current().await?;
    assert!(!stopped.serving);

    // Resuming restores the automatic scaling with its minimum, and an instance runs again.
    let release = run.releases().await?[0].id.clone();
    let resumed = run.set_traffic(&TrafficSplit::all_to(&release)?).await?;
    assert!(resumed.serving);
    let scale = resumed.scale.unwrap();
    assert_eq!(
        (scale.min_instances, scale.max_instances),
        (Some(1), Some(3))
    );
    let svc = run.service().await?;
    assert_eq!(
        svc.scaling.unwrap().scaling_mode.as_deref(),
        Some("AUTOMATIC")
    );
    assert!(svc.annotations.is_empty(), "{:?}", svc.annotations);
    Ok(())
}

#[tokio::test]
async fn a_stop_that_leaves_instances_running_fails_the_confirmation() -> ops_core::Result<()> {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service(
        "code-developer",
        "europe-docker.pkg.dev/acme/app/daemon:1.0",
    );
    let metrics = Arc::new(CloudMonitoring::new(sim.client()?, "code-developer")?);
    clock.advance(Duration::from_secs(600));
    // A deployer whose stop reaches nothing the metric sees: the instance keeps running.
    let elsewhere = Arc::new(MemoryDeployer::new("code-developer"));
    elsewhere
        .deploy(&ops_core::contracts::DeployRequest::new("daemon:1.0"))
        .await?;
    let config = ShutdownConfig {
        confirm_within: Duration::from_secs(120),
        ..ShutdownConfig::default()
    };
    let report = EmergencyShutdown::new("runaway cost", elsewhere, config)
        .confirm_stopped(metrics, instances())
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await?
        .report;
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let message = &report.error.as_ref().unwrap().message;
    assert!(
        message.contains("1.0 instances still running 2m after the stop"),
        "{message}"
    );
    Ok(())
}
