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
        vec!["deployment state before shutdown", "recent logs"]
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

/// Seed 000 keeps "the last 5000 lines" of any severity. Sources page oldest first; the
/// evidence is the newest entries, even when the window holds more pages than are read.
#[tokio::test(start_paused = true)]
async fn the_evidence_is_the_newest_entries_of_any_severity() {
    let (d, _, _, runner) = setup().await;
    let logs = Arc::new(MemoryLogSource::new("daemon"));
    let severities = [LogSeverity::Info, LogSeverity::Warning, LogSeverity::Error];
    // 60 000 lines over the last 50 minutes, one every 50 ms: more than 50 pages of 1000.
    for i in 0..60_000i64 {
        logs.push(LogEntry {
            timestamp: now() - chrono::Duration::milliseconds(50 * (60_000 - i)),
            severity: severities[(i % 3) as usize],
            message: format!("line {i}"),
            payload: None,
            release: None,
            labels: BTreeMap::new(),
        });
    }
    let config =
        ShutdownConfig::from_toml("max_log_entries = 5000\nevidence_min_severity = \"DEFAULT\"")
            .unwrap();
    let report = EmergencyShutdown::new("runaway loop", d, config)
        .logs(logs)
        .run(&runner, Mode::Execute)
        .await
        .unwrap()
        .report;
    assert!(report.is_success(), "{}", report.to_markdown());
    let captured: CapturedLogs = report.output("capture-logs").unwrap();
    assert_eq!((captured.kept, captured.cut), (5000, false), "{captured:?}");
    let evidence = &report
        .evidence
        .iter()
        .find(|e| e.key == "recent logs")
        .unwrap()
        .value;
    let lines = evidence.as_array().unwrap();
    assert_eq!(lines.len(), 5000);
    assert_eq!(
        lines.last().unwrap()["message"],
        "line 59999",
        "the newest line is kept"
    );
    assert_eq!(lines[0]["message"], "line 55000");
    let kinds: std::collections::BTreeSet<_> = lines
        .iter()
        .map(|l| l["severity"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "every severity: {kinds:?}");
}

#[test]
fn config_and_reason() {
    assert!(ShutdownConfig::from_toml("max_log_entries = 5000").is_ok());
    assert!(ShutdownConfig::from_toml("max_log_entries = 10001").is_err());
    assert!(ShutdownConfig::from_toml("confirm_within = \"0s\"").is_err());
    assert_eq!(
        ShutdownConfig::from_toml("evidence_window = \"30m\"")
            .unwrap()
            .evidence_window
            .as_secs(),
        1800
    );
}
