//! The daily health check: every branch of the verdict, the notification it sends, dry runs,
//! and its configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::SimulatedClock;
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::memory::{MemoryDeployer, MemoryLogSource};
use ops_core::runbooks::Finished;
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{HealthCheck, HealthCheckConfig, HealthSummary, RunbookConfig};
use ops_core::{Error, ErrorKind};

fn now() -> DateTime<Utc> {
    "2026-06-01T08:00:00Z".parse().unwrap()
}

fn runner() -> Runner {
    Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(now())))
}

fn probe(name: &'static str, status: HealthStatus) -> Arc<dyn HealthProbe> {
    let mut p = MockHealthProbe::new();
    p.expect_name().return_const(name.to_string());
    p.expect_check().returning(move || {
        let c = CheckResult {
            name: "GET /health".into(),
            status,
            detail: format!("{status}"),
            latency: Duration::from_millis(20),
            observed_at: now(),
        };
        Ok(HealthReport::from_checks(name, now(), vec![c]))
    });
    Arc::new(p)
}

fn failing_probe(name: &'static str) -> Arc<dyn HealthProbe> {
    let mut p = MockHealthProbe::new();
    p.expect_name().return_const(name.to_string());
    p.expect_check().returning(|| {
        Err(Error::new(
            "pg",
            "connect",
            ErrorKind::Unavailable { retry_after: None },
        ))
    });
    Arc::new(p)
}

async fn deployer(serving: bool) -> Arc<MemoryDeployer> {
    let d = MemoryDeployer::new("api");
    d.deploy(&DeployRequest::new("api:1.0")).await.unwrap();
    if !serving {
        d.stop_serving().await.unwrap();
    }
    Arc::new(d)
}

fn logs(errors: usize, infos: usize) -> Arc<MemoryLogSource> {
    let l = MemoryLogSource::new("api");
    let entry = |i: usize, severity| LogEntry {
        timestamp: now() - chrono::Duration::minutes(i as i64 + 1),
        severity,
        message: format!("entry {i}"),
        payload: None,
        release: None,
        labels: BTreeMap::new(),
    };
    (0..errors).for_each(|i| l.push(entry(i, LogSeverity::Error)));
    (0..infos).for_each(|i| l.push(entry(i, LogSeverity::Info)));
    // Older than the window: never counted.
    l.push(LogEntry {
        timestamp: now() - chrono::Duration::days(3),
        ..entry(0, LogSeverity::Critical)
    });
    Arc::new(l)
}

fn silent_notifier() -> Arc<dyn Notifier> {
    let mut n = MockNotifier::new();
    n.expect_name().return_const("mock".to_string());
    n.expect_send().never();
    Arc::new(n)
}

fn expecting(severity: Severity, title_part: &'static str) -> Arc<dyn Notifier> {
    let mut n = MockNotifier::new();
    n.expect_name().return_const("mock".to_string());
    n.expect_send()
        .withf(move |note| {
            note.severity == severity
                && note.title.contains(title_part)
                && note.dedup_key.as_deref() == Some("health-check/api")
        })
        .times(1)
        .returning(|note| {
            Ok(Receipt {
                notifier: "mock".into(),
                id: Some("m-1".into()),
                dedup_key: note.dedup_key.clone(),
            })
        });
    Arc::new(n)
}

async fn check(c: HealthCheck, mode: Mode) -> HealthSummary {
    let Finished { report, summary } = c.run(&runner(), mode).await.unwrap();
    assert!(report.is_success(), "{}", report.summary());
    summary.unwrap()
}

async fn full(
    serving: bool,
    errors: usize,
    service: HealthStatus,
    notifier: Arc<dyn Notifier>,
) -> HealthSummary {
    let c = HealthCheck::new("api", HealthCheckConfig::default())
        .probe(probe("api", service))
        .probe(probe("worker", HealthStatus::Healthy))
        .database(probe("postgres", HealthStatus::Healthy))
        .deployer(deployer(serving).await)
        .logs(logs(errors, 100))
        .notifier(notifier);
    check(c, Mode::Execute).await
}

#[tokio::test]
async fn all_healthy_sends_nothing() {
    let s = full(true, 3, HealthStatus::Healthy, silent_notifier()).await;
    assert_eq!(s.verdict, HealthStatus::Healthy);
    assert_eq!(s.severity, None);
    assert_eq!((s.error_count, s.activity), (Some(3), Some(103)));
    let checks: Vec<&str> = s.findings.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(
        checks,
        vec![
            "api",
            "worker",
            "deployment",
            "database",
            "errors",
            "activity"
        ]
    );
}

#[tokio::test]
async fn a_down_service_pages_at_critical() {
    let s = full(
        true,
        0,
        HealthStatus::Unhealthy,
        expecting(Severity::Critical, "api is unhealthy"),
    )
    .await;
    assert_eq!(s.verdict, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn error_counts_map_to_warning_and_error() {
    let s = full(
        true,
        11,
        HealthStatus::Healthy,
        expecting(Severity::Warning, "degraded"),
    )
    .await;
    assert_eq!(s.error_count, Some(11));
    assert!(
        s.findings
            .iter()
            .any(|f| f.check == "errors" && f.detail.contains("warning above 10"))
    );
    let s = full(
        true,
        101,
        HealthStatus::Healthy,
        expecting(Severity::Error, "unhealthy"),
    )
    .await;
    assert_eq!(s.verdict, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn a_deployment_not_serving_is_critical() {
    let s = full(
        false,
        0,
        HealthStatus::Healthy,
        expecting(Severity::Critical, "unhealthy"),
    )
    .await;
    assert!(
        s.findings
            .iter()
            .any(|f| f.check == "deployment" && f.detail == "not serving traffic")
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_critical() {
    let c = HealthCheck::new("api", HealthCheckConfig::default())
        .database(failing_probe("postgres"))
        .notifier(expecting(Severity::Critical, "unhealthy"));
    let s = check(c, Mode::Execute).await;
    assert!(
        s.findings[0].detail.starts_with("could not probe"),
        "{:?}",
        s.findings
    );
}

#[tokio::test]
async fn a_failing_log_source_is_reported_not_fatal() {
    let mut logs = MockLogSource::new();
    logs.expect_name().return_const("logs".to_string());
    logs.expect_count().returning(|_, _| {
        Err(Error::new(
            "gcp-logging",
            "count",
            ErrorKind::Forbidden {
                detail: String::new(),
            },
        ))
    });
    let c = HealthCheck::new("api", HealthCheckConfig::default())
        .probe(probe("api", HealthStatus::Healthy))
        .logs(Arc::new(logs))
        .notifier(expecting(Severity::Warning, "degraded"));
    let s = check(c, Mode::Execute).await;
    assert_eq!(s.error_count, None);
    assert!(s.findings.iter().any(|f| f.check == "errors"
        && f.detail.contains("could not count errors")
        && f.detail.contains("forbidden")));
}

#[tokio::test]
async fn a_dry_run_reads_live_state_and_plans_the_notification() {
    let c = HealthCheck::new("api", HealthCheckConfig::default())
        .probe(probe("api", HealthStatus::Unhealthy))
        .notifier(silent_notifier());
    let Finished { report, summary } = c.run(&runner(), Mode::DryRun).await.unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        summary.unwrap().verdict,
        HealthStatus::Unhealthy,
        "reads ran"
    );
    assert_eq!(report.planned.len(), 1);
    assert_eq!(report.planned[0].call, "Notifier::send");
    assert_eq!(report.planned[0].args["severity"], "critical");
}

#[tokio::test]
async fn nothing_to_check_is_invalid() {
    let err = HealthCheck::new("api", HealthCheckConfig::default())
        .run(&runner(), Mode::Execute)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
}

#[test]
fn config_loads_from_toml_with_defaults_and_rejects_nonsense_by_field() {
    let c = HealthCheckConfig::from_toml("").unwrap();
    assert_eq!(c, HealthCheckConfig::default());
    assert_eq!(c.error_window, Duration::from_secs(86_400));
    assert_eq!(c.error_warn_above, 10);
    let c = HealthCheckConfig::from_toml(
        "error_window = \"1h30m\"\nerror_warn_above = 5\nnotify = false",
    )
    .unwrap();
    assert_eq!(
        (c.error_window.as_secs(), c.error_warn_above, c.notify),
        (5400, 5, false)
    );
    for (toml, field) in [
        ("error_window = \"-5m\"", "error_window"),
        ("error_window = \"0s\"", "error_window"),
        ("error_window = \"5 fortnights\"", "error_window"),
        ("error_warn_above = 200", "error_warn_above"),
        ("error_warn_above = -1", "error_warn_above"),
        ("probe_concurrency = 0", "probe_concurrency"),
        ("colour = \"blue\"", "colour"),
        ("error_window = ", "toml"),
    ] {
        let err = HealthCheckConfig::from_toml(toml).unwrap_err();
        match err.kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}: {err}"),
            other => panic!("{toml}: {other:?}"),
        }
    }
}
