//! Service-account key rotation on the simulator: the new key's file goes to Secret Manager,
//! the consumer is redeployed, the old key disabled and deleted; a spent quota changes
//! nothing; a failure after the key was made deletes it again and keeps the old one working.
//! The key file is in no report.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::contracts::{SecretStore, VersionRef};
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_core::sim::Simulator;
use ops_gcp::keys::ServiceAccountKeys;
use ops_gcp::keys::rotate::{KeyRotationConfig, RotateServiceAccountKey};
use ops_gcp::sim::{Behaviour, GcpSim};
use ops_gcp::{CloudRun, SecretManager};

const EMAIL: &str = "deployer@sim-project.iam.gserviceaccount.com";
const IMAGE: &str = "registry.example/api:1.0";

async fn setup() -> (
    GcpSim,
    Arc<ManualClock>,
    RotateServiceAccountKey,
    Arc<SecretManager>,
    String,
) {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    let old = sim.create_service_account(EMAIL, Duration::from_secs(100 * 86_400));
    sim.create_service("api", IMAGE);
    sim.set_behaviour(IMAGE, Behaviour::failing(0.0));
    let client = sim.client().unwrap();
    let store = Arc::new(SecretManager::new(client.clone()));
    let rotation = RotateServiceAccountKey::new(
        ServiceAccountKeys::new(client.clone(), EMAIL).unwrap(),
        store.clone(),
        "deployer-key",
        KeyRotationConfig::default(),
    )
    .consumer(Arc::new(CloudRun::new(client, "api").unwrap()));
    (sim, clock, rotation, store, old)
}

#[tokio::test]
async fn the_new_key_is_stored_rolled_out_and_the_old_one_retired() {
    let (sim, clock, rotation, store, old) = setup().await;
    let runner = Runner::new().with_clock(clock.clone());
    let before = sim.mutations();
    rotation.run(&runner, Mode::DryRun).await.unwrap();
    assert_eq!(sim.mutations(), before, "a dry run changes nothing");

    let done = rotation.run(&runner, Mode::Execute).await.unwrap();
    let md = done.report.to_markdown();
    assert_eq!(done.report.outcome, Some(RunOutcome::Succeeded), "{md}");
    let made = done.summary.unwrap();
    // Read back from the report, as a resumed run would: nothing it needs is masked.
    assert_eq!(made.stored_version, "1");
    let new_id = ops_gcp::keys::rotate::key_id(&made.key);
    let keys = sim.service_account_keys(EMAIL);
    assert_eq!(keys, [(new_id.clone(), false)], "only the new key is left");
    assert_ne!(new_id, old);
    let file = store
        .read("deployer-key", &VersionRef::Latest)
        .await
        .unwrap();
    let file: serde_json::Value = serde_json::from_slice(file.value.expose_bytes()).unwrap();
    assert_eq!(file["private_key_id"], new_id.as_str());
    assert!(
        !md.contains("PRIVATE KEY")
            && !serde_json::to_string(&done.report)
                .unwrap()
                .contains("PRIVATE KEY"),
        "the key file is in no report"
    );
    assert!(md.contains("roll-"), "the consumer was redeployed: {md}");
}

#[tokio::test]
async fn a_spent_key_quota_changes_nothing() {
    let (sim, clock, rotation, store, old) = setup().await;
    sim.exhaust_key_quota(true);
    let done = rotation
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_ne!(done.report.outcome, Some(RunOutcome::Succeeded));
    assert!(
        done.report.to_markdown().contains("rate limited"),
        "{}",
        done.report.to_markdown()
    );
    assert_eq!(sim.service_account_keys(EMAIL), [(old, false)]);
    assert!(
        store.list_versions("deployer-key").await.is_err(),
        "no secret was written"
    );
}

#[tokio::test]
async fn a_failure_after_the_key_was_made_deletes_it_and_keeps_the_old_one() {
    let (sim, clock, rotation, store, old) = setup().await;
    // The consumer cannot be redeployed: its image no longer starts.
    sim.set_behaviour(IMAGE, Behaviour::crashing());
    let done = rotation
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_ne!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    assert_eq!(
        sim.service_account_keys(EMAIL),
        [(old, false)],
        "the new key is deleted, the old one still works"
    );
    let versions = store.list_versions("deployer-key").await.unwrap();
    assert!(
        versions
            .iter()
            .all(|v| v.state != ops_core::contracts::VersionState::Enabled),
        "the stored file is disabled: {versions:?}"
    );
}

#[test]
fn an_email_that_is_no_account_is_refused() {
    let client = ops_gcp::GcpClient::new(
        ops_gcp::GcpConfig::new("p", "r"),
        Arc::new(ops_gcp::auth::TokenProvider::static_token("t")),
    )
    .unwrap();
    for bad in ["", "nobody", "a/b@c", "x y@z"] {
        assert!(
            ServiceAccountKeys::new(client.clone(), bad).is_err(),
            "{bad}"
        );
    }
}
