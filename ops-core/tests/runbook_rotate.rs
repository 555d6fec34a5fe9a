//! Secret rotation: add, validate, roll consumers, grace period (resumable), retire the old
//! version; failed validation; stores without versions; dry runs; the age audit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::adapters::EnvSecretStore;
use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::{MemoryDeployer, MemorySecretStore};
use ops_core::runbooks::*;
use ops_core::{Error, ErrorKind};

fn start() -> DateTime<Utc> {
    "2026-05-05T09:00:00Z".parse().unwrap()
}

fn generator() -> (GenerateSecret, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let g: GenerateSecret = Arc::new(move || {
        let i = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(SecretValue::from(format!("generated-secret-{i}"))) })
    });
    (g, n)
}

async fn setup() -> (
    Arc<MemorySecretStore>,
    Arc<MemoryDeployer>,
    Arc<SimulatedClock>,
) {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let store = Arc::new(MemorySecretStore::new("sm").with_clock(clock.clone()));
    store
        .add_version("db-password", &"old-password".into())
        .await
        .unwrap();
    let d = Arc::new(MemoryDeployer::new("daemon").with_clock(clock.clone()));
    d.deploy(&DeployRequest::new("daemon:7")).await.unwrap();
    (store, d, clock)
}

#[tokio::test(start_paused = true)]
async fn rotates_rolls_consumers_waits_and_retires_the_old_version() {
    let (store, d, clock) = setup().await;
    let (generate, _) = generator();
    let validated = Arc::new(AtomicUsize::new(0));
    let v = validated.clone();
    let check: ValidateSecret = Arc::new(move |value| {
        let v = v.clone();
        Box::pin(async move {
            assert!(value.expose_str()?.starts_with("generated-secret-"));
            v.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    });
    let t0 = SystemClock.instant();
    let report = RotateSecret::new(
        store.clone(),
        "db-password",
        generate,
        RotateConfig::default(),
    )
    .validate(check)
    .consumer(d.clone())
    .run(&Runner::new().with_clock(clock), Mode::Execute)
    .await
    .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs(24 * 3600),
        "the grace period"
    );
    assert_eq!(validated.load(Ordering::SeqCst), 1);
    let versions = store.list_versions("db-password").await.unwrap();
    assert_eq!(
        (versions[0].state, versions[1].state),
        (VersionState::Enabled, VersionState::Disabled)
    );
    assert_eq!(
        store
            .read("db-password", &VersionRef::Latest)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "generated-secret-0"
    );
    // The consumer was redeployed with the same version, and the new release serves.
    let releases = d.releases().await.unwrap();
    assert_eq!(
        (releases[0].version.as_str(), releases.len()),
        ("daemon:7", 2)
    );
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("daemon-00002")
    );
    let json = report.to_json();
    assert!(
        !json.contains("generated-secret") && !json.contains("old-password"),
        "values never reach the report"
    );
}

#[tokio::test(start_paused = true)]
async fn a_value_that_fails_validation_is_disabled_and_consumers_untouched() {
    let (store, d, clock) = setup().await;
    let (generate, _) = generator();
    let reject: ValidateSecret = Arc::new(|_| {
        Box::pin(async { Err(Error::new("postgres", "login", ErrorKind::Unauthorized)) })
    });
    let report = RotateSecret::new(
        store.clone(),
        "db-password",
        generate,
        RotateConfig::default(),
    )
    .validate(reject)
    .consumer(d.clone())
    .run(&Runner::new().with_clock(clock), Mode::Execute)
    .await
    .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "verification_failed");
    assert_eq!(
        store
            .read("db-password", &VersionRef::Latest)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "old-password"
    );
    assert_eq!(
        store.list_versions("db-password").await.unwrap()[0].state,
        VersionState::Disabled,
        "the new version is disabled"
    );
    assert_eq!(
        d.releases().await.unwrap().len(),
        1,
        "no consumer was redeployed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_that_dies_in_the_grace_period_resumes_for_the_rest_only() {
    let (store, d, clock) = setup().await;
    let (generate, generated) = generator();
    let journal = Arc::new(MemoryJournal::new());
    let rotation = RotateSecret::new(
        store.clone(),
        "db-password",
        generate,
        RotateConfig::default(),
    )
    .consumer(d.clone());
    let runner = Runner::new()
        .with_clock(clock)
        .with_journal(journal.clone());
    let control = RunControl::new();
    let run = tokio::spawn({
        let (runner, rb, control) = (runner.clone(), rotation.runbook().unwrap(), control.clone());
        async move {
            runner
                .run_with(&rb, Mode::Execute, &control, Some("rot-1".into()))
                .await
        }
    });
    // 10 hours into the 24-hour grace period the process is stopped.
    SystemClock.sleep(Duration::from_secs(10 * 3600)).await;
    run.abort();
    let _ = run.await;
    let t = SystemClock.instant();
    let report = runner
        .resume(&rotation.runbook().unwrap(), "rot-1", &control)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(
        SystemClock.instant() - t,
        Duration::from_secs(14 * 3600),
        "only the remaining 14 hours"
    );
    assert_eq!(
        generated.load(Ordering::SeqCst),
        1,
        "no second version was added"
    );
    assert_eq!(
        d.releases().await.unwrap().len(),
        2,
        "consumers were not rolled twice"
    );
    assert_eq!(
        store.list_versions("db-password").await.unwrap()[1].state,
        VersionState::Disabled
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_adds_nothing() {
    let (store, d, clock) = setup().await;
    let (generate, generated) = generator();
    let report = RotateSecret::new(
        store.clone(),
        "db-password",
        generate,
        RotateConfig::default(),
    )
    .consumer(d.clone())
    .run(&Runner::new().with_clock(clock), Mode::DryRun)
    .await
    .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        generated.load(Ordering::SeqCst),
        0,
        "no value was even generated"
    );
    assert_eq!(store.list_versions("db-password").await.unwrap().len(), 1);
    assert_eq!(report.planned[0].args["value"], "(generated)");
}

#[tokio::test]
async fn a_read_only_store_refuses_the_rotation_with_a_typed_error() {
    let store = Arc::new(EnvSecretStore::from_vars(
        "APP_",
        [("APP_TOKEN", b"t".to_vec())],
    ));
    let (generate, _) = generator();
    let report = RotateSecret::new(store, "TOKEN", generate, RotateConfig::default())
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "unsupported");
}

#[tokio::test]
async fn the_age_audit_lists_old_and_unknown_secrets_oldest_first() {
    let clock = Arc::new(ops_core::clock::ManualClock::starting_at(start()));
    let store = MemorySecretStore::new("sm").with_clock(clock.clone());
    store.add_version("ancient", &"a".into()).await.unwrap();
    clock.advance(Duration::from_secs(30 * 86_400));
    store.add_version("old", &"b".into()).await.unwrap();
    clock.advance(Duration::from_secs(80 * 86_400));
    store.add_version("fresh", &"c".into()).await.unwrap();
    let now = start() + chrono::Duration::days(130);
    let aged = secret_age_audit(&store, now, &AgeAuditConfig::default())
        .await
        .unwrap();
    assert_eq!(
        aged.iter()
            .map(|a| (a.name.as_str(), a.age_days))
            .collect::<Vec<_>>(),
        vec![("ancient", Some(130)), ("old", Some(100))]
    );
    let env = EnvSecretStore::from_vars("X_", [("X_KEY", b"k".to_vec())]);
    let unknown = secret_age_audit(&env, now, &AgeAuditConfig::default())
        .await
        .unwrap();
    assert_eq!(
        unknown[0].age_days, None,
        "an unknown age is reported, not assumed fresh"
    );
    assert!(AgeAuditConfig::from_toml("max_age = \"0d\"").is_err());
}
