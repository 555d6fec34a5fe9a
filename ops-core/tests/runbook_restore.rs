//! Restore against a real filesystem store: the pre-restore backup, stopping and resuming
//! traffic, a failed verification that keeps the safety copy and says where it is, dry runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::adapters::FsBackupStore;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner, StepStatus};
use ops_core::memory::MemoryDeployer;
use ops_core::runbooks::*;

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    store: Arc<FsBackupStore>,
    good: BackupInfo,
    runner: Runner,
}

/// `app.db` backed up at version 1, then changed to version 2 (the state to restore over).
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    std::fs::write(&db, b"version 1").unwrap();
    let clock = Arc::new(ManualClock::starting_at(
        "2026-10-01T03:00:00Z".parse().unwrap(),
    ));
    let store = Arc::new(
        FsBackupStore::open(dir.path().join("backups"))
            .await
            .unwrap()
            .without_fsync()
            .with_clock(clock.clone()),
    );
    let good = store
        .create(&CreateBackup {
            source: db.display().to_string(),
            name: Some("app".into()),
            labels: Default::default(),
        })
        .await
        .unwrap();
    std::fs::write(&db, b"version 2, corrupted by a bad migration").unwrap();
    clock.advance(Duration::from_secs(3600));
    Fixture {
        _dir: dir,
        db,
        store,
        good,
        runner: Runner::new().with_clock(clock),
    }
}

fn restore(f: &Fixture, config: RestoreConfig) -> Restore {
    let current = CreateBackup {
        source: f.db.display().to_string(),
        name: Some("app".into()),
        labels: Default::default(),
    };
    Restore::new(
        f.store.clone(),
        f.good.id.clone(),
        RestoreTarget::Original,
        current,
        config,
    )
}

fn probe(healthy: bool) -> Arc<dyn HealthProbe> {
    let mut p = MockHealthProbe::new();
    p.expect_name().return_const("app".to_string());
    p.expect_check().returning(move || {
        let status = if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        };
        let at = chrono::DateTime::UNIX_EPOCH;
        Ok(HealthReport::from_checks(
            "app",
            at,
            vec![CheckResult {
                name: "c".into(),
                status,
                detail: "x".into(),
                latency: Duration::ZERO,
                observed_at: at,
            }],
        ))
    });
    Arc::new(p)
}

#[tokio::test]
async fn restores_after_taking_a_pre_restore_backup() {
    let f = fixture().await;
    let report = restore(&f, RestoreConfig::default())
        .probe(probe(true))
        .run(&f.runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(std::fs::read(&f.db).unwrap(), b"version 1");
    let safety: BackupInfo = report.output("pre-restore-backup").unwrap();
    assert_eq!(safety.id, "pre-restore-app-20261001-040000");
    let mut kept = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(
        &mut f.store.get_artifact(&safety.id).await.unwrap(),
        &mut kept,
    )
    .await
    .unwrap();
    assert_eq!(
        kept, b"version 2, corrupted by a bad migration",
        "the state before the restore is kept"
    );
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.key == "pre-restore backup" && e.value["id"] == safety.id.as_str())
    );
    assert_eq!(report.target, "app");
}

#[tokio::test]
async fn traffic_is_stopped_for_the_restore_and_put_back() {
    let f = fixture().await;
    let d = Arc::new(MemoryDeployer::new("app"));
    let stable = d.deploy(&DeployRequest::new("app:1")).await.unwrap();
    let canary = d.deploy(&DeployRequest::new("app:2")).await.unwrap();
    d.set_traffic(
        &TrafficSplit::new([(canary.id.as_str(), 10), (stable.id.as_str(), 90)]).unwrap(),
    )
    .await
    .unwrap();
    let before = d.current().await.unwrap().traffic;
    let config = RestoreConfig {
        stop_traffic: true,
        ..Default::default()
    };
    let report = restore(&f, config)
        .deployer(d.clone())
        .run(&f.runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "describe",
            "check-backup",
            "save-traffic",
            "stop-traffic",
            "pre-restore-backup",
            "restore",
            "resume-traffic"
        ]
    );
    let now = d.current().await.unwrap();
    assert!(now.serving);
    assert_eq!(now.traffic, before, "the same split as before");
}

#[tokio::test]
async fn a_failed_verification_resumes_traffic_keeps_the_safety_copy_and_says_where() {
    let f = fixture().await;
    let d = Arc::new(MemoryDeployer::new("app"));
    d.deploy(&DeployRequest::new("app:1")).await.unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let mut n = MockNotifier::new();
    n.expect_name().return_const("n".to_string());
    n.expect_send().returning(move |note| {
        s.lock().unwrap().push(note.title.clone());
        Ok(Receipt {
            notifier: "n".into(),
            id: None,
            dedup_key: None,
        })
    });
    let config = RestoreConfig {
        stop_traffic: true,
        ..Default::default()
    };
    let report = restore(&f, config)
        .deployer(d.clone())
        .probe(probe(false))
        .notifier(Arc::new(n))
        .run(&f.runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let status = |s: &str| report.steps.iter().find(|x| x.name == s).unwrap().status;
    assert_eq!(
        status("stop-traffic"),
        StepStatus::Compensated,
        "traffic was put back"
    );
    assert!(d.current().await.unwrap().serving);
    let last = sent.lock().unwrap().last().unwrap().clone();
    assert!(
        last.contains("failed; the pre-restore backup is pre-restore-app-20261001-040000 at"),
        "{last}"
    );
    assert!(
        f.store
            .describe("pre-restore-app-20261001-040000")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_missing_backup_changes_nothing() {
    let f = fixture().await;
    let current = CreateBackup {
        source: f.db.display().to_string(),
        name: Some("app".into()),
        labels: Default::default(),
    };
    let r = Restore::new(
        f.store.clone(),
        "app-19990101-000000",
        RestoreTarget::Original,
        current,
        RestoreConfig::default(),
    )
    .run(&f.runner, Mode::Execute)
    .await
    .unwrap();
    assert_eq!(r.error.as_ref().unwrap().kind, "not_found");
    assert_eq!(
        f.store.list(&BackupFilter::default()).await.unwrap().len(),
        1,
        "no pre-restore backup was taken"
    );
    assert_eq!(
        std::fs::read(&f.db).unwrap(),
        b"version 2, corrupted by a bad migration"
    );
}

#[tokio::test]
async fn a_dry_run_restores_nothing() {
    let f = fixture().await;
    let report = restore(&f, RestoreConfig::default())
        .run(&f.runner, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        report
            .planned
            .iter()
            .map(|p| p.call.as_str())
            .collect::<Vec<_>>(),
        vec!["BackupStore::create", "BackupStore::restore"]
    );
    assert_eq!(
        std::fs::read(&f.db).unwrap(),
        b"version 2, corrupted by a bad migration"
    );
    assert_eq!(
        f.store.list(&BackupFilter::default()).await.unwrap().len(),
        1
    );
}

#[test]
fn config() {
    assert!(!RestoreConfig::from_toml("").unwrap().stop_traffic);
    assert!(RestoreConfig::from_toml("pre_restore_prefix = \" \"").is_err());
    let needs_deployer = Restore::new(
        Arc::new(MockBackupStore::new()), // no expectations: any call would fail the test
        "x",
        RestoreTarget::Original,
        CreateBackup {
            source: "a".into(),
            name: None,
            labels: Default::default(),
        },
        RestoreConfig {
            stop_traffic: true,
            ..Default::default()
        },
    )
    .runbook()
    .unwrap_err();
    assert!(needs_deployer.to_string().contains("stop_traffic"));
}

/// Seed 002: stop traffic, copy the current file, restore, restart the service so it loads the
/// restored file, resume. Every release that served comes back as a new release of the same
/// version, with the same share.
#[tokio::test]
async fn the_service_restarts_on_the_restored_data_before_traffic_resumes() {
    let f = fixture().await;
    let d = Arc::new(MemoryDeployer::new("app"));
    let stable = d.deploy(&DeployRequest::new("app:1")).await.unwrap();
    let canary = d.deploy(&DeployRequest::new("app:2")).await.unwrap();
    d.set_traffic(
        &TrafficSplit::new([(canary.id.as_str(), 10), (stable.id.as_str(), 90)]).unwrap(),
    )
    .await
    .unwrap();
    let config = RestoreConfig::from_toml("stop_traffic = true\nrestart = true").unwrap();
    let report = restore(&f, config)
        .deployer(d.clone())
        .probe(probe(true))
        .run(&f.runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "describe",
            "check-backup",
            "save-traffic",
            "stop-traffic",
            "pre-restore-backup",
            "restore",
            "restart",
            "verify",
            "resume-traffic"
        ]
    );
    let restarted: Restarted = report.output("restart").unwrap();
    assert_eq!(restarted.replaced.len(), 2);
    let now = d.current().await.unwrap();
    assert!(now.serving);
    let releases = d.releases().await.unwrap();
    let version_of = |id: &str| {
        releases
            .iter()
            .find(|r| r.id == id)
            .unwrap()
            .version
            .clone()
    };
    let mut shares: Vec<(String, u8)> = now
        .traffic
        .iter()
        .map(|a| (version_of(&a.release), a.percent))
        .collect();
    shares.sort();
    assert_eq!(
        shares,
        [("app:1".to_string(), 90), ("app:2".to_string(), 10)]
    );
    assert!(
        now.traffic
            .iter()
            .all(|a| a.release != stable.id && a.release != canary.id),
        "no instance that loaded the old data serves: {:?}",
        now.traffic
    );

    // Serving throughout (no stop): the restart moves the traffic at once.
    let f = fixture().await;
    let config = RestoreConfig::from_toml("restart = true").unwrap();
    let report = restore(&f, config)
        .deployer(d.clone())
        .run(&f.runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.ends_with(&["restore", "restart", "move-traffic"]),
        "{names:?}"
    );
    let moved = d.current().await.unwrap();
    assert!(
        moved
            .traffic
            .iter()
            .all(|a| now.traffic.iter().all(|b| a.release != b.release))
    );

    // Restarting needs something to restart.
    let e = restore(&f, RestoreConfig::from_toml("restart = true").unwrap())
        .runbook()
        .unwrap_err();
    assert!(e.to_string().contains("restart"), "{e}");
}
