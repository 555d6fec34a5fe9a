//! Rollback: choosing the release, verification without flapping, the automatic cap,
//! emergencies and dry runs.

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::MemoryDeployer;
use ops_core::runbooks::*;

/// api-00001 (1.0), api-00002 (1.1, failed to start), api-00003 (1.2) serving.
async fn service() -> Arc<MemoryDeployer> {
    let d = Arc::new(MemoryDeployer::new("api"));
    d.deploy(&DeployRequest::new("api:1.0")).await.unwrap();
    d.fail_deploys_of("api:1.1");
    let _ = d.deploy(&DeployRequest::new("api:1.1")).await;
    d.deploy(&DeployRequest {
        traffic: InitialTraffic::All,
        ..DeployRequest::new("api:1.2")
    })
    .await
    .unwrap();
    d
}

fn probe(healthy: bool) -> Arc<dyn HealthProbe> {
    let mut p = MockHealthProbe::new();
    p.expect_name().return_const("api".to_string());
    p.expect_check().returning(move || {
        let status = if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        };
        let at = chrono::DateTime::UNIX_EPOCH;
        let c = CheckResult {
            name: "GET /health".into(),
            status,
            detail: "x".into(),
            latency: Duration::ZERO,
            observed_at: at,
        };
        Ok(HealthReport::from_checks("api", at, vec![c]))
    });
    Arc::new(p)
}

async fn primary(d: &MemoryDeployer) -> String {
    d.current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn rolls_back_to_the_previous_ready_release_skipping_failed_ones() {
    let d = service().await;
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .probe(probe(true))
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    let choice: RollbackChoice = report.output("choose").unwrap();
    assert_eq!(
        choice,
        RollbackChoice {
            from: Some("api-00003".into()),
            to: "api-00001".into()
        }
    );
    assert_eq!(primary(&d).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn a_named_release_must_exist_and_be_ready() {
    let d = service().await;
    let ok = Rollback::new(
        RollbackTo::Release("api-00001".into()),
        d.clone(),
        RollbackConfig::default(),
    )
    .run(&Runner::new(), Mode::Execute)
    .await
    .unwrap();
    assert!(ok.is_success());
    for (id, kind) in [("api-00009", "not_found"), ("api-00002", "invalid_input")] {
        let r = Rollback::new(
            RollbackTo::Release(id.into()),
            d.clone(),
            RollbackConfig::default(),
        )
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
        assert_eq!(r.outcome, Some(RunOutcome::Failed));
        assert_eq!(r.error.as_ref().unwrap().kind, kind, "{id}");
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_earlier_to_go_back_to_is_reported() {
    let d = Arc::new(MemoryDeployer::new("api"));
    d.deploy(&DeployRequest::new("api:1.0")).await.unwrap();
    let r = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(r.error.as_ref().unwrap().kind, "not_found");
    assert_eq!(primary(&d).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_fails_verification_stays_put_instead_of_flapping() {
    let d = service().await;
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .probe(probe(false))
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "verification_failed");
    assert!(report.compensations.is_empty());
    assert_eq!(
        primary(&d).await,
        "api-00001",
        "not moved back to the bad release"
    );
}

#[tokio::test(start_paused = true)]
async fn automatic_rollbacks_are_capped_until_something_else_succeeds() {
    let journal = Arc::new(MemoryJournal::new());
    let runner = Runner::new().with_journal(journal.clone());
    let d = service().await;
    let auto = || {
        Rollback::new(
            RollbackTo::Release("api-00001".into()),
            d.clone(),
            RollbackConfig::default(),
        )
        .automatic(journal.clone())
    };
    for _ in 0..3 {
        assert!(
            auto()
                .run(&runner, Mode::Execute)
                .await
                .unwrap()
                .is_success()
        );
    }
    let fourth = auto().run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(fourth.outcome, Some(RunOutcome::Failed));
    assert!(
        fourth
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("3 automatic rollbacks of api in a row (cap 3)")
    );
    // A person may still roll back.
    let manual = Rollback::new(
        RollbackTo::Release("api-00003".into()),
        d.clone(),
        RollbackConfig::default(),
    );
    assert!(
        manual
            .run(&runner, Mode::Execute)
            .await
            .unwrap()
            .is_success()
    );
    // ...which resets the count.
    assert!(
        auto()
            .run(&runner, Mode::Execute)
            .await
            .unwrap()
            .is_success()
    );
}

#[tokio::test(start_paused = true)]
async fn an_emergency_rollback_acts_at_once_pages_then_checks_health() {
    let d = service().await;
    let mut n = MockNotifier::new();
    n.expect_name().return_const("pager".to_string());
    n.expect_send()
        .withf(|note| {
            note.severity == Severity::Critical && note.title.contains("emergency-rollback")
        })
        .times(1)
        .returning(|_| {
            Ok(Receipt {
                notifier: "pager".into(),
                id: None,
                dedup_key: None,
            })
        });
    let t0 = SystemClock.instant();
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .emergency()
        .probe(probe(true))
        .notifier(Arc::new(n))
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(SystemClock.instant(), t0, "no waiting");
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["choose", "shift", "notify", "verify"]
    );
}

/// Seed 003: "rollback:emergency", then "curl …/health". An unhealthy service after an
/// emergency rollback fails the run, after the traffic moved and the page went out.
#[tokio::test(start_paused = true)]
async fn an_emergency_rollback_to_an_unhealthy_release_fails_after_paging() {
    let d = service().await;
    let before = d
        .current()
        .await
        .unwrap()
        .primary_release()
        .map(str::to_owned);
    let pager = Arc::new(ops_core::memory::MemoryNotifier::new("pager"));
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .emergency()
        .probe(probe(false))
        .notifier(pager.clone())
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Failed),
        "{}",
        report.summary()
    );
    assert_eq!(pager.sent().len(), 1, "the page went out first");
    let after = d
        .current()
        .await
        .unwrap()
        .primary_release()
        .map(str::to_owned);
    assert_ne!(after, before, "the traffic moved");
    let failed: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(failed, vec!["verify"]);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_moves_no_traffic() {
    let d = service().await;
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .run(&Runner::new(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(report.planned[0].call, "Deployer::set_traffic");
    assert_eq!(
        report.planned[0].args["allocations"][0]["release"],
        "api-00001"
    );
    assert_eq!(primary(&d).await, "api-00003");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_of_rolling_back_a_broken_service_plans_its_verification() {
    // The service is broken now; that is why it is rolled back. A dry run cannot verify a
    // rollback it did not make: the verification is planned, not failed on today's state.
    let d = service().await;
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .probe(probe(false))
        .run(&Runner::new(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Planned),
        "{}",
        report.summary()
    );
    let planned: Vec<&str> = report.planned.iter().map(|p| p.step.as_str()).collect();
    assert!(planned.contains(&"verify"), "{planned:?}");
    // Executed, the same verification runs and fails on a broken result.
    let report = Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
        .probe(probe(false))
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Failed),
        "{}",
        report.summary()
    );
}

#[test]
fn config() {
    let c = RollbackConfig::from_toml("").unwrap();
    assert_eq!(
        (c.stabilization.as_secs(), c.max_automatic_in_a_row),
        (30, 3)
    );
    match RollbackConfig::from_toml("max_automatic_in_a_row = 0")
        .unwrap_err()
        .kind()
    {
        ErrorKind::InvalidInput { field, .. } => assert_eq!(field, "max_automatic_in_a_row"),
        other => panic!("{other:?}"),
    }
}
