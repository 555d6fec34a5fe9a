//! Configuration changes on Cloud Run as verified deploys (seeds 000 and 001), on the
//! simulator: environment variables changed with the serving image, secrets as Secret Manager
//! references, and a broken setting or a missing secret failing the deploy with the traffic
//! left on the revision with the old settings.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::contracts::Deployer;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig, Procedure};
use ops_core::sim::Simulator;
use ops_gcp::CloudRun;
use ops_gcp::run::env::EnvChange;
use ops_gcp::sim::GcpSim;
use serde_json::json;

const IMAGE: &str = "europe-docker.pkg.dev/acme/app/api:1.0";

async fn setup() -> (GcpSim, Arc<ManualClock>, CloudRun) {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service("api", IMAGE);
    sim.put_secret("db-password", b"s3cret-value-91");
    let run = CloudRun::new(sim.client().unwrap(), "api").unwrap();
    (sim, clock, run)
}

fn config() -> DeployVerifyConfig {
    DeployVerifyConfig {
        error_watch: Duration::from_secs(60),
        ..DeployVerifyConfig::default()
    }
}

async fn change(run: &CloudRun, clock: &Arc<ManualClock>, change: EnvChange) -> RunOutcome {
    let image = run.current_image().await.unwrap();
    assert_eq!(image, IMAGE);
    let deployer = Arc::new(run.clone().with_env_change(change).unwrap());
    let runner = Runner::new().with_clock(clock.clone());
    let done = DeployAndVerify::new(&image, deployer.clone(), config())
        .probe(Arc::new(deployer.health_probe()))
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    done.report.outcome.unwrap()
}

fn env_of(svc: &ops_gcp::run::model::Service) -> serde_json::Value {
    svc.template["containers"][0]["env"].clone()
}

#[tokio::test]
async fn a_setting_and_a_secret_reference_change_as_a_new_revision() {
    let (_sim, clock, run) = setup().await;
    let before = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .map(str::to_string);
    let outcome = change(
        &run,
        &clock,
        EnvChange::default().set("LOG_LEVEL", "debug").secret(
            "DB_PASSWORD",
            "db-password",
            "latest",
        ),
    )
    .await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    let after = run.current().await.unwrap();
    assert_ne!(
        after.primary_release().map(str::to_string),
        before,
        "a new revision serves"
    );
    let svc = run.service().await.unwrap();
    assert_eq!(
        env_of(&svc),
        json!([{"name": "DB_PASSWORD", "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "latest"}}},
               {"name": "LOG_LEVEL", "value": "debug"}]),
        "new variables are appended in name order"
    );
    assert!(
        !svc.template.to_string().contains("s3cret-value-91"),
        "the secret's value is never in the service"
    );
    assert_eq!(
        svc.template["containers"][0]["image"], IMAGE,
        "the image is unchanged"
    );
}

#[tokio::test]
async fn a_broken_setting_fails_the_deploy_and_the_old_settings_keep_serving() {
    let (sim, clock, run) = setup().await;
    change(&run, &clock, EnvChange::default().set("LOG_LEVEL", "info")).await;
    let serving = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .map(str::to_string);
    sim.crash_when_env("LOG_LEVEL", "verbose");
    let outcome = change(
        &run,
        &clock,
        EnvChange::default().set("LOG_LEVEL", "verbose"),
    )
    .await;
    assert_eq!(outcome, RunOutcome::Failed);
    let now = run.current().await.unwrap();
    assert_eq!(
        now.primary_release().map(str::to_string),
        serving,
        "traffic stayed"
    );
    let old = run.revision(serving.as_deref().unwrap()).await.unwrap();
    let env = &old.containers[0].env;
    assert_eq!(
        (env[0].name.as_str(), env[0].value.as_deref()),
        ("LOG_LEVEL", Some("info")),
        "the serving revision keeps the old setting"
    );
}

#[tokio::test]
async fn a_reference_to_a_missing_secret_fails_naming_it() {
    let (_sim, clock, run) = setup().await;
    let image = run.current_image().await.unwrap();
    let deployer = run
        .clone()
        .with_env_change(EnvChange::default().secret("API_KEY", "no-such-secret", "latest"))
        .unwrap();
    let err = deployer
        .deploy(&ops_core::contracts::DeployRequest::new(&image))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("secrets/no-such-secret/versions/latest was not found"),
        "{err}"
    );
    let _ = clock;
}

#[tokio::test]
async fn a_secret_as_plain_text_is_refused_before_anything_is_sent() {
    let (sim, _clock, run) = setup().await;
    let before = sim.mutations();
    let err = run
        .clone()
        .with_env_change(EnvChange::default().set("DB_PASSWORD", "hunter2"))
        .unwrap_err();
    assert!(
        err.to_string().contains("Secret Manager reference"),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"));
    assert_eq!(sim.mutations(), before);
}
