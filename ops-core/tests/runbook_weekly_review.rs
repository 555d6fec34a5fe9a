//! Weekly review: grouping, change counts from the journal, the archive (and its cleanup when
//! the source fails), dry runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ops_core::adapters::FsBackupStore;
use ops_core::clock::SimulatedClock;
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::{MemoryDeployer, MemoryLogSource};
use ops_core::runbooks::*;
use ops_core::{Error, ErrorKind};

fn now() -> DateTime<Utc> {
    "2026-06-08T09:00:00Z".parse().unwrap()
}

fn entry(minutes_ago: i64, severity: LogSeverity, message: String) -> LogEntry {
    LogEntry {
        timestamp: now() - chrono::Duration::minutes(minutes_ago),
        severity,
        message,
        payload: None,
        release: None,
        labels: BTreeMap::new(),
    }
}

fn logs() -> Arc<MemoryLogSource> {
    let l = MemoryLogSource::new("api");
    for i in 0..50 {
        l.push(entry(
            i + 1,
            LogSeverity::Error,
            format!(
                "payment {} declined by gateway (req 3f2a9c1e-77b0-4c55-9e1d-0a1b2c3d{:04x})",
                1000 + i,
                i
            ),
        ));
    }
    for i in 0..30 {
        l.push(entry(
            i + 100,
            LogSeverity::Critical,
            format!("db timeout after {}ms", 5000 + i),
        ));
    }
    for i in 0..5 {
        l.push(entry(
            i + 200,
            LogSeverity::Error,
            format!("cache miss storm at 2026-06-0{}T01:02:03Z", i + 1),
        ));
    }
    for i in 0..40 {
        l.push(entry(i + 1, LogSeverity::Info, format!("request {i} ok")));
    }
    l.push(entry(
        60 * 24 * 9,
        LogSeverity::Error,
        "last week's error".into(),
    ));
    Arc::new(l)
}

fn runner(journal: Arc<MemoryJournal>) -> Runner {
    Runner::new()
        .with_clock(Arc::new(SimulatedClock::starting_at(now())))
        .with_journal(journal)
}

#[tokio::test(start_paused = true)]
async fn groups_the_weeks_errors_by_fingerprint() {
    let Finished {
        report,
        summary: md,
    } = WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
        .run(&runner(Arc::default()), Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let s: ErrorSummary = report.output("errors").unwrap();
    assert_eq!((s.total, s.distinct, s.truncated), (85, 3, false));
    let top: Vec<(&str, u64)> = s
        .top
        .iter()
        .map(|g| (g.fingerprint.as_str(), g.count))
        .collect();
    assert_eq!(
        top,
        vec![
            ("payment <n> declined by gateway (req <uuid>)", 50),
            ("db timeout after <n>ms", 30),
            ("cache miss storm at <ts>", 5)
        ]
    );
    let md = md.unwrap();
    assert!(
        md.contains("| 50 | `payment <n> declined by gateway (req <uuid>)` |"),
        "{md}"
    );
}

#[tokio::test(start_paused = true)]
async fn counts_the_weeks_deploys_and_rollbacks_from_the_journal() {
    let journal = Arc::new(MemoryJournal::new());
    let r = runner(journal.clone());
    let d = Arc::new(MemoryDeployer::new("api"));
    d.deploy(&DeployRequest::new("api:0")).await.unwrap();
    for v in ["api:1", "api:2"] {
        assert!(
            DeployAndVerify::new(v, d.clone(), DeployVerifyConfig::default())
                .run(&r, Mode::Execute)
                .await
                .unwrap()
                .is_success()
        );
    }
    d.fail_deploys_of("api:3");
    assert!(
        !DeployAndVerify::new("api:3", d.clone(), DeployVerifyConfig::default())
            .run(&r, Mode::Execute)
            .await
            .unwrap()
            .is_success()
    );
    assert!(
        Rollback::new(RollbackTo::Previous, d.clone(), RollbackConfig::default())
            .run(&r, Mode::Execute)
            .await
            .unwrap()
            .is_success()
    );
    let Finished {
        report,
        summary: md,
    } = WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
        .journal(journal)
        .run(&r, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.output::<ChangeCounts>("changes").unwrap(),
        ChangeCounts {
            deploys: 2,
            deploys_failed: 1,
            rollbacks: 1
        }
    );
    assert!(
        md.unwrap()
            .contains("- Deploys: 2 succeeded, 1 failed\n- Rollbacks: 1")
    );
}

#[tokio::test(start_paused = true)]
async fn archives_the_weeks_errors_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        FsBackupStore::open(dir.path())
            .await
            .unwrap()
            .without_fsync(),
    );
    let Finished { report, summary: _ } =
        WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
            .archive(store.clone())
            .run(&runner(Arc::default()), Mode::Execute)
            .await
            .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(report.output::<u64>("archive"), Some(85));
    let text = std::fs::read_to_string(dir.path().join("errors-api-20260608.jsonl")).unwrap();
    let lines: Vec<LogEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 85);
    assert!(lines.iter().all(|e| e.severity >= LogSeverity::Error));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_fails_mid_archive_leaves_no_partial_archive() {
    // Two pages. The review reads both (calls 1 and 2); the archive reads page 1 (call 3) and
    // then the source fails (call 4) with a page already streamed into the store.
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut flaky = MockLogSource::new();
    flaky.expect_name().return_const("flaky".to_string());
    flaky.expect_query_page().returning(move |q| {
        let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match (call, q.page_token.as_deref()) {
            (4, _) => Err(Error::new(
                "gcp-logging",
                "entries.list",
                ErrorKind::Unavailable { retry_after: None },
            )),
            (_, None) => Ok(LogPage {
                entries: vec![entry(1, LogSeverity::Error, "boom 1".into())],
                next_page_token: Some("p2".into()),
            }),
            (_, Some(_)) => Ok(LogPage {
                entries: vec![entry(2, LogSeverity::Error, "boom 2".into())],
                next_page_token: None,
            }),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        FsBackupStore::open(dir.path())
            .await
            .unwrap()
            .without_fsync(),
    );
    let review = WeeklyReview::new("api", Arc::new(flaky), WeeklyReviewConfig::default())
        .archive(store.clone());
    let Finished { report, summary: _ } = review
        .run(&runner(Arc::default()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let status = |s: &str| report.steps.iter().find(|x| x.name == s).unwrap().status;
    assert_eq!(
        (status("errors"), status("archive")),
        (StepStatus::Succeeded, StepStatus::Failed),
        "it failed in the archive"
    );
    assert!(
        store
            .list(&BackupFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "no truncated archive passes as complete"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "and no file is left behind"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_archives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        FsBackupStore::open(dir.path())
            .await
            .unwrap()
            .without_fsync(),
    );
    let Finished {
        report,
        summary: md,
    } = WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
        .archive(store.clone())
        .run(&runner(Arc::default()), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert!(md.is_some(), "the review itself is a read: it runs");
    assert!(
        store
            .list(&BackupFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn config() {
    assert_eq!(
        WeeklyReviewConfig::from_toml("").unwrap().window.as_secs(),
        7 * 86_400
    );
    assert!(WeeklyReviewConfig::from_toml("top = 0").is_err());
}

/// Runs are counted by the category their journal carries: a team's own deploy runbook counts
/// under any name, a check named like a deploy does not, and a run journaled before runs
/// carried a category still counts by this library's runbook names.
#[tokio::test(start_paused = true)]
async fn counts_runs_by_the_category_the_journal_carries() {
    let journal = Arc::new(MemoryJournal::new());
    let r = runner(journal.clone());
    let noop = |name: &str| {
        Step::mutate(name.to_string(), |_| {
            Ok(Action::new("noop", serde_json::json!({}), async { Ok(()) }))
        })
    };
    let ours = Runbook::new("ship-it-our-way", "api")
        .with_category(Category::Deploy)
        .step(noop("ship"));
    assert!(r.run(&ours, Mode::Execute).await.unwrap().is_success());
    let misleading = Runbook::new("deploy-and-verify", "api")
        .with_category(Category::Check)
        .step(noop("look"));
    assert!(
        r.run(&misleading, Mode::Execute)
            .await
            .unwrap()
            .is_success()
    );
    let planned = Runbook::new("our-rollback", "api")
        .with_category(Category::Rollback)
        .step(noop("back"));
    r.run(&planned, Mode::DryRun).await.unwrap();
    // A rollback journaled by an earlier version: no category in its RunStarted event.
    let at = now() - chrono::Duration::hours(1);
    let old = |seq, kind| JournalEvent {
        seq,
        run_id: "old-1".into(),
        runbook: "emergency-rollback".into(),
        target: "api".into(),
        at,
        kind,
    };
    let legacy: serde_json::Value = serde_json::json!({
        "event": "run_started", "mode": "execute", "steps": [], "resumed": false
    });
    journal
        .append(&old(0, serde_json::from_value(legacy).unwrap()))
        .await
        .unwrap();
    journal
        .append(&old(
            1,
            EventKind::RunFinished {
                outcome: RunOutcome::Succeeded,
                error: None,
            },
        ))
        .await
        .unwrap();

    let Finished { report, summary: _ } =
        WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
            .journal(journal)
            .run(&r, Mode::Execute)
            .await
            .unwrap();
    assert_eq!(
        report.output::<ChangeCounts>("changes").unwrap(),
        ChangeCounts {
            deploys: 1,
            deploys_failed: 0,
            rollbacks: 1
        }
    );
}

/// An auditor with fixed findings.
struct Fixed(Vec<AuditFinding>);

#[async_trait::async_trait]
impl SecurityAuditor for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn audit(&self) -> ops_core::Result<Vec<AuditFinding>> {
        Ok(self.0.clone())
    }
}

fn finding(severity: Severity, resource: &str) -> AuditFinding {
    AuditFinding {
        severity,
        resource: resource.into(),
        issue: "open 40 days | fix available".into(),
        advice: "upgrade".into(),
    }
}

#[tokio::test]
async fn security_findings_join_the_review_worst_first() {
    let clock = Arc::new(SimulatedClock::starting_at(now()));
    let review = WeeklyReview::new("api", logs(), WeeklyReviewConfig::default())
        .auditor(Arc::new(Fixed(vec![
            finding(
                Severity::Warning,
                "repo:acme/app dependabot alert 2 tar (npm)",
            ),
            finding(
                Severity::Critical,
                "repo:acme/app dependabot alert 1 lodash (npm)",
            ),
        ])))
        .auditor(Arc::new(Fixed(vec![finding(Severity::Info, "other")])));
    let done = review
        .run(&Runner::new().with_clock(clock), Mode::Execute)
        .await
        .unwrap();
    let md = done.summary.unwrap();
    assert!(
        md.contains("## Security findings\n\n1 critical, 0 error, 1 warning, 1 info\n"),
        "{md}"
    );
    let lodash = md.find("lodash").unwrap();
    let tar = md.find("tar (npm)").unwrap();
    assert!(lodash < tar, "worst first: {md}");
    assert!(
        md.contains("open 40 days \\| fix available"),
        "cells are escaped: {md}"
    );
}
