//! A whole canary rollout of a bad image on Cloud Run and Cloud Monitoring, against the
//! simulator: the new revision takes 1 % of the traffic, fails 30 % of its requests, and the
//! rollout puts all traffic back on the stable revision by itself, at the look that sees it
//! (request counts per revision from Cloud Monitoring, judged against the stable revision).

use std::sync::Arc;

use ops_core::clock::ManualClock;
use ops_core::contracts::Deployer;
use ops_core::engine::{Mode, RunOutcome, Runner, StepStatus};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{Rollout, RolloutConfig};
use ops_gcp::sim::{Behaviour, GcpSim};
use ops_gcp::{CloudMonitoring, CloudRun};

#[tokio::test]
async fn a_bad_canary_is_seen_at_one_percent_and_traffic_goes_back() -> ops_core::Result<()> {
    // Simulated time: the 15-minute bakes pass at once.
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service("api", "europe-docker.pkg.dev/acme/app/api:1.0");
    sim.set_behaviour(
        "europe-docker.pkg.dev/acme/app/api:1.1",
        Behaviour::failing(0.3),
    );

    let run = Arc::new(CloudRun::new(sim.client()?, "api")?);
    let metrics = Arc::new(CloudMonitoring::new(sim.client()?, "api")?);
    let stable = run.current().await?.primary_release().map(str::to_owned);

    let rollout = Rollout::new(
        "europe-docker.pkg.dev/acme/app/api:1.1",
        run.clone(),
        metrics,
        RolloutConfig::default(), // 1 % → 5 % → 25 % → 100 %, abort above 5 % errors
    );
    let report = rollout
        .run(&Runner::new().with_clock(clock), Mode::Execute)
        .await?;

    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let bake = report.steps.iter().find(|s| s.name == "bake-1").unwrap();
    assert_eq!(
        bake.status,
        StepStatus::Failed,
        "the 1 % stage's watched bake saw the errors"
    );
    let message = &report.error.as_ref().unwrap().message;
    assert!(message.contains("errors: canary"), "{message}");
    assert!(
        !report
            .steps
            .iter()
            .any(|s| s.name == "traffic-5" && s.status == StepStatus::Succeeded),
        "no later stage ran"
    );
    assert_eq!(
        run.current().await?.primary_release().map(str::to_owned),
        stable
    );
    Ok(())
}
