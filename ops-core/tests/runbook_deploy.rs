//! Deploy and verify: success, each verification failure rolling back, a failed deploy, the
//! first deploy with nothing to roll back to, dry runs and configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner, StepStatus};
use ops_core::memory::{MemoryDeployer, MemoryLogSource};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig, RunbookConfig};
use ops_core::{Error, ErrorKind};

fn start() -> DateTime<Utc> {
    "2026-07-01T12:00:00Z".parse().unwrap()
}

fn runner() -> Runner {
    Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(start())))
}

fn probe(healthy: bool) -> Arc<dyn HealthProbe> {
    let mut p = MockHealthProbe::new();
    p.expect_name().return_const("api /health".to_string());
    p.expect_check().returning(move || {
        let status = if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        };
        let c = CheckResult {
            name: "GET /health".into(),
            status,
            detail: "x".into(),
            latency: Duration::ZERO,
            observed_at: start(),
        };
        Ok(HealthReport::from_checks("api /health", start(), vec![c]))
    });
    Arc::new(p)
}

/// A notifier that records (event, severity, title) of everything sent.
type Sent = Arc<Mutex<Vec<(NotificationEvent, Severity, String)>>>;

fn recorder() -> (Arc<dyn Notifier>, Sent) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let mut n = MockNotifier::new();
    n.expect_name().return_const("rec".to_string());
    n.expect_send().returning(move |note| {
        s.lock()
            .unwrap()
            .push((note.event, note.severity, note.title.clone()));
        Ok(Receipt {
            notifier: "rec".into(),
            id: None,
            dedup_key: note.dedup_key.clone(),
        })
    });
    (Arc::new(n), sent)
}

async fn stable() -> Arc<MemoryDeployer> {
    let d = Arc::new(MemoryDeployer::new("api"));
    d.deploy(&DeployRequest::new("api:1.0")).await.unwrap();
    d
}

#[tokio::test(start_paused = true)]
async fn a_good_deploy_takes_the_traffic_and_is_announced() {
    let d = stable().await;
    let (n, sent) = recorder();
    let logs = Arc::new(MemoryLogSource::new("api"));
    let run = DeployAndVerify::new("api:1.1", d.clone(), DeployVerifyConfig::default())
        .probe(probe(true))
        .logs(logs)
        .notifier(n);
    let t0 = SystemClock.instant();
    let report = run.run(&runner(), Mode::Execute).await.unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs(30 + 300),
        "stabilise 30 s, watch 5 min"
    );
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("api-00002")
    );
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].0, sent[0].1),
        (NotificationEvent::Trigger, Severity::Info)
    );
    assert_eq!(sent[1].0, NotificationEvent::Resolve);
    assert!(sent[1].2.contains("as api-00002"));
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_release_is_rolled_back_and_the_failure_announced() {
    let d = stable().await;
    let (n, sent) = recorder();
    let run = DeployAndVerify::new("api:1.1", d.clone(), DeployVerifyConfig::default())
        .probe(probe(false))
        .notifier(n);
    let report = run.run(&runner(), Mode::Execute).await.unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "verification_failed");
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("api-00001"),
        "traffic is back on the stable release"
    );
    let status = |name: &str| report.steps.iter().find(|s| s.name == name).unwrap().status;
    assert_eq!(status("deploy"), StepStatus::Compensated);
    assert_eq!(status("health"), StepStatus::Failed);
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        (sent[1].0, sent[1].1),
        (NotificationEvent::Update, Severity::Error)
    );
    assert!(
        sent[1].2.contains("traffic is back on api-00001"),
        "{}",
        sent[1].2
    );
}

#[tokio::test(start_paused = true)]
async fn errors_from_the_new_release_during_the_watch_roll_it_back() {
    let d = stable().await;
    let logs = Arc::new(MemoryLogSource::new("api"));
    // The new release logs an error 110 s in; an error of the old release does not count.
    let entry = |secs: i64, release: &str| LogEntry {
        timestamp: start() + chrono::Duration::seconds(secs),
        severity: LogSeverity::Error,
        message: "boom".into(),
        payload: None,
        release: Some(release.into()),
        labels: BTreeMap::new(),
    };
    logs.push(entry(20, "api-00001"));
    logs.push(entry(110, "api-00002"));
    let run = DeployAndVerify::new("api:1.1", d.clone(), DeployVerifyConfig::default()).logs(logs);
    let t0 = SystemClock.instant();
    let report = run.run(&runner(), Mode::Execute).await.unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let msg = &report.error.as_ref().unwrap().message;
    assert!(msg.contains("1 ERROR entries from api-00002"), "{msg}");
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs(120),
        "caught at the first poll after the error"
    );
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("api-00001")
    );
}

#[tokio::test(start_paused = true)]
async fn a_release_that_fails_to_start_leaves_traffic_alone() {
    let d = stable().await;
    d.fail_deploys_of("api:broken");
    let (n, sent) = recorder();
    let report = DeployAndVerify::new("api:broken", d.clone(), DeployVerifyConfig::default())
        .notifier(n)
        .run(&runner(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "provider");
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("api-00001")
    );
    assert!(sent.lock().unwrap()[1].2.contains("failed"));
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_that_fails_reports_that_nothing_could_be_rolled_back() {
    let d = Arc::new(MemoryDeployer::new("api"));
    let report = DeployAndVerify::new("api:1.0", d, DeployVerifyConfig::default())
        .probe(probe(false))
        .run(&runner(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(
        report
            .steps
            .iter()
            .find(|s| s.name == "deploy")
            .unwrap()
            .status,
        StepStatus::CompensationFailed
    );
    assert!(
        report.compensations[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("no serving release")
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_deploys_nothing() {
    let mut d = MockDeployer::new();
    d.expect_target().return_const("api".to_string());
    d.expect_current().returning(|| {
        Err(Error::new(
            "mock",
            "current",
            ErrorKind::Unavailable { retry_after: None },
        ))
    });
    d.expect_deploy().never();
    d.expect_set_traffic().never();
    // current fails: the dry run stops at the read, as a real run would, having changed nothing.
    let report = DeployAndVerify::new("api:1.1", Arc::new(d), DeployVerifyConfig::default())
        .run(&runner(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));

    let d = stable().await;
    let (n, sent) = recorder();
    let report = DeployAndVerify::new("api:1.1", d.clone(), DeployVerifyConfig::default())
        .notifier(n)
        .run(&runner(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        report
            .planned
            .iter()
            .map(|p| p.call.as_str())
            .collect::<Vec<_>>(),
        vec![
            "Notifier::send",
            "Deployer::deploy",
            "wait",
            "(depends on an earlier planned step)"
        ]
    );
    assert_eq!(report.planned[1].args["version"], "api:1.1");
    assert_eq!(
        report.planned[2].args["seconds"], 30.0,
        "the stabilisation wait is planned, not waited"
    );
    assert_eq!(d.releases().await.unwrap().len(), 1, "nothing deployed");
    assert!(sent.lock().unwrap().is_empty(), "nothing sent");
}

#[test]
fn config_defaults_and_validation() {
    let c = DeployVerifyConfig::from_toml("").unwrap();
    assert_eq!(
        (
            c.stabilization.as_secs(),
            c.error_watch.as_secs(),
            c.max_errors
        ),
        (30, 300, 0)
    );
    let c = DeployVerifyConfig::from_toml("stabilization = 45\nerror_watch = \"10m\"").unwrap();
    assert_eq!(
        (c.stabilization.as_secs(), c.error_watch.as_secs()),
        (45, 600)
    );
    for (toml, field) in [
        ("error_poll = \"0s\"", "error_poll"),
        ("stabilization = -3", "stabilization"),
        ("max_errors = \"many\"", "max_errors"),
    ] {
        match DeployVerifyConfig::from_toml(toml).unwrap_err().kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{toml}: {other:?}"),
        }
    }
}
