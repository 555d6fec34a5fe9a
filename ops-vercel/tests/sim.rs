//! The ops-core testkit suites and end-to-end behaviour against the Vercel simulator.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::runbooks::Procedure;
use ops_core::sim::Simulator;
use ops_core::testkit;
use ops_vercel::sim::{Fault, VercelSim};
use ops_vercel::{VercelEnv, VercelHealth};

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (VercelSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = VercelSim::builder()
        .clock(clock.clone())
        .build_time(Duration::from_secs(40))
        .start()
        .await;
    (sim, clock)
}

#[tokio::test]
async fn the_deployer_passes_the_suite() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    testkit::deployer(
        &d,
        &testkit::DeployerFixture {
            version_a: "release-a".into(),
            version_b: "release-b".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn environment_variables_pass_the_secret_suite() {
    let (sim, _) = sim().await;
    sim.put_env(
        "DATABASE_URL",
        "postgres://app:pw-1234@db/app",
        &["production", "preview"],
    );
    let env = VercelEnv::new(sim.client().unwrap(), "site", &["production"]).unwrap();
    testkit::secret_store(
        &env,
        &testkit::SecretFixture {
            existing: vec![(
                "DATABASE_URL".into(),
                "postgres://app:pw-1234@db/app".into(),
            )],
            scratch: "SCRATCH_KEY".into(),
            missing: "NO_SUCH_KEY".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn health_follows_the_production_deployment_and_pause() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    // The simulated domains do not resolve: probe the simulator itself as "the site".
    let probe = VercelHealth::new(
        d.clone(),
        Some(format!("{}/v9/projects/site?teamId=x", sim.uri())),
    );
    let report = probe.check().await.unwrap();
    assert_eq!(
        report.checks[0].status,
        HealthStatus::Healthy,
        "{:?}",
        report.checks
    );
    d.stop_serving().await.unwrap();
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(report.checks[0].detail.contains("paused"));
}

#[tokio::test]
async fn a_failed_build_reports_its_output_and_changes_nothing() {
    let (sim, _) = sim().await;
    sim.fail_builds_of("broken-branch");
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    let before = d.current().await.unwrap();
    let err = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("broken-branch")
        })
        .await
        .unwrap_err();
    let ErrorKind::VerificationFailed { detail, .. } = err.kind() else {
        panic!("{err}")
    };
    assert!(
        detail.contains("BUILD_FAILED")
            && detail.contains("Property 'user' does not exist")
            && detail.contains("exited with 1"),
        "{detail}"
    );
    assert_eq!(
        d.current().await.unwrap().traffic,
        before.traffic,
        "production stays where it was"
    );
}

#[tokio::test]
async fn splits_and_scaling_are_unsupported_not_approximated() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    let new = d.deploy(&DeployRequest::new("feature")).await.unwrap();
    let prod = d
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let split = TrafficSplit::new([(new.id.as_str(), 10), (prod.as_str(), 90)]).unwrap();
    assert!(matches!(
        d.set_traffic(&split).await.unwrap_err().kind(),
        ErrorKind::Unsupported { .. }
    ));
    let scale = ScaleSpec {
        max_instances: Some(3),
        ..Default::default()
    };
    assert!(matches!(
        d.scale(&scale).await.unwrap_err().kind(),
        ErrorKind::Unsupported { .. }
    ));
}

#[tokio::test]
async fn rate_limits_wait_for_the_reset_and_failed_creates_are_not_repeated() {
    let (sim, clock) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    sim.inject(
        Some("GET"),
        "/v9/projects",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(7),
        },
    );
    d.current().await.unwrap();
    assert_eq!(
        clock.sleeps().first().copied(),
        Some(Duration::from_secs(7)),
        "x-ratelimit-reset honoured"
    );

    let before = sim.mutations();
    sim.inject(
        Some("POST"),
        "/v13/deployments",
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let err = d.deploy(&DeployRequest::new("main")).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, code: Some(c), .. } if c == "internal_server_error"),
        "{err}"
    );
    let creates = sim
        .requests()
        .iter()
        .filter(|r| r.split('?').next() == Some("POST /v13/deployments"))
        .count();
    assert_eq!((creates, sim.mutations()), (1, before));

    sim.inject(Some("GET"), "/v7/deployments", 1, Fault::TruncatedJson);
    assert!(matches!(
        d.releases().await.unwrap_err().kind(),
        ErrorKind::Decode { .. }
    ));
}

#[tokio::test]
async fn a_wrong_token_is_forbidden_and_a_missing_team_finds_nothing() {
    let (sim, _) = sim().await;
    let mut cfg = sim.config().unwrap();
    cfg.token = "not-the-token".to_string().into();
    let wrong =
        ops_vercel::VercelDeployer::new(ops_vercel::VercelClient::new(cfg).unwrap(), "site", None)
            .unwrap();
    assert!(matches!(
        wrong.current().await.unwrap_err().kind(),
        ErrorKind::Forbidden { .. }
    ));
    let mut cfg = sim.config().unwrap();
    cfg.team_id = None;
    let no_team =
        ops_vercel::VercelDeployer::new(ops_vercel::VercelClient::new(cfg).unwrap(), "site", None)
            .unwrap();
    assert!(matches!(
        no_team.current().await.unwrap_err().kind(),
        ErrorKind::NotFound { .. }
    ));
}

#[tokio::test]
async fn rotation_replaces_the_value_and_redeploys() {
    use ops_core::engine::{Mode, Runner};
    use ops_core::runbooks::{GenerateSecret, RotateConfig, RotateSecret};
    let (sim, clock) = sim().await;
    sim.put_env("API_KEY", "k-0001-old", &["production"]);
    let env = Arc::new(VercelEnv::new(sim.client().unwrap(), "site", &["production"]).unwrap());
    let site = Arc::new(sim.deployer(Duration::from_secs(5)).unwrap());
    let before = site
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let generate: GenerateSecret =
        Arc::new(|| Box::pin(async { Ok(SecretValue::from("k-0002-new")) }));
    let report = RotateSecret::new(env.clone(), "API_KEY", generate, RotateConfig::default())
        .consumer(site.clone())
        .run(&Runner::new().with_clock(clock), Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.to_markdown());
    assert_eq!(
        sim.env_value("API_KEY", "production").as_deref(),
        Some("k-0002-new")
    );
    let after = site
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    assert_ne!(
        before, after,
        "a new production deployment reads the new value"
    );
    assert!(!report.to_markdown().contains("k-0002"));
}
