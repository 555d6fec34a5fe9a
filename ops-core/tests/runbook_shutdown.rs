//! Emergency shutdown: stop, disable secrets (all tried), evidence, page, incident report.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ops_core::clock::SimulatedClock;
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::memory::{MemoryDeployer, MemoryLogSource, MemorySecretStore};
use ops_core::runbooks::*;

fn now() -> DateTime<Utc> {
    "2026-11-01T02:00:00Z".parse().unwrap()
}

async fn setup() -> (
    Arc<MemoryDeployer>,
    Arc<MemorySecretStore>,
    Arc<MemoryLogSource>,
    Runner,
) {
    let d = Arc::new(MemoryDeployer::new("market"));
    d.deploy(&DeployRequest::new("market:3.1")).await.unwrap();
    let s = Arc::new(MemorySecretStore::new("sm"));
    s.add_version("stripe-key", &"sk_live_0123456789".into())
        .await
        .unwrap();
    s.add_version("db-password", &"pw-1".into()).await.unwrap();
    let logs = Arc::new(MemoryLogSource::new("market"));
    for i in 0..5 {
        logs.push(LogEntry {
            timestamp: now() - chrono::Duration::minutes(10 + i),
            severity: LogSeverity::Error,
            message: format!("payment webhook replayed #{i}"),
            payload: None,
            release: Some("market-00001".into()),
            labels: BTreeMap::new(),
        });
    }
    (
        d,
        s,
        logs,
        Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(now()))),
    )
}

fn pager() -> Arc<dyn Notifier> {
    let mut n = MockNotifier::new();
    n.expect_name().return_const("pagerduty".to_string());
    n.expect_send()
        .withf(|note| {
            note.severity == Severity::Critical
                && note.title == "EMERGENCY: market has been shut down"
                && note.body_markdown.contains("leaked key")
        })
        .times(1)
        .returning(|_| {
            Ok(Receipt {
                notifier: "pagerduty".into(),
                id: Some("PD-1".into()),
                dedup_key: None,
            })
        });
    Arc::new(n)
}

#[tokio::test(start_paused = true)]
async fn stops_disables_captures_pages_and_reports() {
    let (d, s, logs, runner) = setup().await;
    let versions = vec![
        ("stripe-key".to_string(), "1".to_string()),
        ("db-password".to_string(), "1".to_string()),
    ];
    let Finished {
        report,
        summary: incident,
    } = EmergencyShutdown::new(
        "leaked key in a public repo",
        d.clone(),
        ShutdownConfig::default(),
    )
    .disable_secrets(s.clone(), versions)
    .logs(logs)
    .notifier(pager())
    .run(&runner, Mode::Execute)
    .await
    .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert!(!d.current().await.unwrap().serving);
    assert_eq!(
        s.list_versions("stripe-key").await.unwrap()[0].state,
        VersionState::Disabled
    );
    let keys: Vec<&str> = report.evidence.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["deployment state before shutdown", "recent error logs"]
    );
    assert_eq!(report.evidence[1].value.as_array().unwrap().len(), 5);
    let md = incident.unwrap();
    assert!(
        md.contains("# Incident: emergency shutdown of `market`"),
        "{md}"
    );
    assert!(
        md.contains("Secret version `stripe-key@1` disabled") && md.contains("market-00001 100%"),
        "{md}"
    );
    assert!(
        !report.to_json().contains("sk_live"),
        "secret values never reach the report"
    );
}

#[tokio::test(start_paused = true)]
async fn a_secret_that_cannot_be_disabled_fails_the_run_after_everything_else_is_done() {
    let (d, s, _, runner) = setup().await;
    let versions = vec![
        ("missing".to_string(), "9".to_string()),
        ("stripe-key".to_string(), "1".to_string()),
    ];
    let Finished {
        report,
        summary: incident,
    } = EmergencyShutdown::new("leaked key", d.clone(), ShutdownConfig::default())
        .disable_secrets(s.clone(), versions)
        .notifier(pager())
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(
        s.list_versions("stripe-key").await.unwrap()[0].state,
        VersionState::Disabled,
        "the others were still disabled"
    );
    assert!(!d.current().await.unwrap().serving, "nothing was undone");
    assert!(
        incident
            .unwrap()
            .contains("**FAILED** to disable `missing@9`")
    );
    assert!(report.error.as_ref().unwrap().message.contains("missing@9"));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_stops_nothing() {
    let (d, s, logs, runner) = setup().await;
    let Finished {
        report,
        summary: incident,
    } = EmergencyShutdown::new("drill", d.clone(), ShutdownConfig::default())
        .disable_secrets(s.clone(), vec![("stripe-key".into(), "1".into())])
        .logs(logs)
        .run(&runner, Mode::DryRun)
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
            "Deployer::stop_serving",
            "SecretStore::disable_version",
            "(depends on an earlier planned step)"
        ]
    );
    assert!(d.current().await.unwrap().serving);
    assert_eq!(
        s.list_versions("stripe-key").await.unwrap()[0].state,
        VersionState::Enabled
    );
    assert!(
        incident
            .unwrap()
            .contains("(dry run) serving would be stopped")
    );
}

#[test]
fn config_and_reason() {
    assert!(ShutdownConfig::from_toml("max_log_entries = 5000").is_err());
    assert_eq!(
        ShutdownConfig::from_toml("evidence_window = \"30m\"")
            .unwrap()
            .evidence_window
            .as_secs(),
        1800
    );
}
