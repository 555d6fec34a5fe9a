//! BackupFreshness over a real filesystem store and a manual clock: the daily "last night's
//! backup exists and is recent" as a health check, and as an alert on `backup_age_hours`.

use std::sync::Arc;
use std::time::Duration;

use ops_core::adapters::{BACKUP_AGE_HOURS, BackupFreshness, FsBackupStore, NEVER_BACKED_UP_HOURS};
use ops_core::clock::{ManualClock, SharedClock};
use ops_core::contracts::{
    BackupFilter, BackupStore, HealthProbe, HealthStatus, Metric, MetricQuery, MetricsSource,
    PutArtifact, TimeWindow, Verification,
};
use ops_core::runbooks::{AlertRule, AlertsConfig, evaluate_alerts};
use ops_core::{ErrorKind, testkit};

const HOUR: Duration = Duration::from_secs(3600);

async fn fixture() -> (tempfile::TempDir, Arc<ManualClock>, Arc<FsBackupStore>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-30T02:00:00Z".parse().unwrap(),
    ));
    let store = FsBackupStore::open(dir.path())
        .await
        .unwrap()
        .with_clock(clock.clone() as SharedClock)
        .without_fsync();
    (dir, clock, Arc::new(store))
}

async fn nightly(store: &FsBackupStore, id: &str, verified: Option<bool>, clock: &ManualClock) {
    let info = store
        .put_artifact(
            &PutArtifact {
                id: id.into(),
                source: Some("app.db".into()),
                labels: Default::default(),
            },
            Box::pin(&b"SQLite format 3\0"[..]),
        )
        .await
        .unwrap();
    let at = ops_core::clock::Clock::now(clock);
    match verified {
        Some(true) => store
            .record_verification(&info.id, &Verification::Verified { at })
            .await
            .unwrap(),
        Some(false) => store
            .record_verification(
                &info.id,
                &Verification::failed(at, "integrity_check: malformed"),
            )
            .await
            .unwrap(),
        None => {}
    }
}

fn age_query(name: &str) -> MetricQuery {
    MetricQuery {
        metric: Metric::Named { name: name.into() },
        window: TimeWindow::ending_at("2026-12-01T00:00:00Z".parse().unwrap(), HOUR).unwrap(),
        release: None,
        min_samples: 1,
    }
}

#[tokio::test]
async fn last_nights_verified_backup_is_fresh_until_the_bound_passes() {
    let (_dir, clock, store) = fixture().await;
    let freshness = BackupFreshness::new("backups")
        .watch(store.clone(), 26 * HOUR)
        .warn_after(25 * HOUR)
        .with_clock(clock.clone());

    // Nothing yet: unhealthy, and the alert metric is above every threshold.
    let report = testkit::health_probe(&freshness, HealthStatus::Unhealthy).await;
    assert!(
        report.checks[0].detail.starts_with("no verified backup"),
        "{report:?}"
    );
    let reading = freshness.read(&age_query(BACKUP_AGE_HOURS)).await.unwrap();
    assert_eq!(reading.value(), Some(NEVER_BACKED_UP_HOURS));

    nightly(&store, "db-20261130", Some(true), &clock).await;
    clock.advance(6 * HOUR);
    let report = testkit::health_probe(&freshness, HealthStatus::Healthy).await;
    assert!(
        report.checks[0].detail.contains("db-20261130 is 6h old"),
        "{report:?}"
    );
    let age = freshness.read(&age_query(BACKUP_AGE_HOURS)).await.unwrap();
    assert_eq!(age.value(), Some(6.0));

    // The next night's backup is not taken: past 25 h degraded, past 26 h unhealthy.
    clock.advance(19 * HOUR + Duration::from_secs(60));
    testkit::health_probe(&freshness, HealthStatus::Degraded).await;
    clock.advance(HOUR);
    let report = testkit::health_probe(&freshness, HealthStatus::Unhealthy).await;
    assert!(report.checks[0].detail.contains("bound 1d2h"), "{report:?}");
}

#[tokio::test]
async fn a_newer_backup_that_failed_its_check_degrades_and_is_named() {
    let (_dir, clock, store) = fixture().await;
    nightly(&store, "db-20261129", Some(true), &clock).await;
    clock.advance(24 * HOUR);
    nightly(&store, "db-20261130", Some(false), &clock).await;
    clock.advance(HOUR);
    let freshness = BackupFreshness::new("backups")
        .watch(store.clone(), 48 * HOUR)
        .with_clock(clock.clone());
    let report = testkit::health_probe(&freshness, HealthStatus::Degraded).await;
    let detail = &report.checks[0].detail;
    assert!(
        detail.contains("db-20261129 is 1d1h old")
            && detail.contains("newer db-20261130 failed verification: integrity_check: malformed"),
        "{detail}"
    );
    // An unverified newer one (verification still to run) does not lower the status.
    nightly(&store, "db-20261201", None, &clock).await;
    let report = freshness.check().await.unwrap();
    assert!(
        report.checks[0]
            .detail
            .contains("db-20261201 is not verified"),
        "{report:?}"
    );
}

#[tokio::test]
async fn each_store_or_prefix_is_its_own_check_and_metric() {
    let (_dir, clock, store) = fixture().await;
    nightly(&store, "orders-1", Some(true), &clock).await;
    clock.advance(30 * HOUR);
    nightly(&store, "users-1", Some(true), &clock).await;
    let by_prefix = |p: &str| BackupFilter {
        prefix: Some(p.into()),
        ..Default::default()
    };
    let freshness = BackupFreshness::new("backups")
        .watch_filtered("orders", store.clone(), by_prefix("orders-"), 26 * HOUR)
        .watch_filtered("users", store.clone(), by_prefix("users-"), 26 * HOUR)
        .with_clock(clock.clone());
    let report = testkit::health_probe(&freshness, HealthStatus::Unhealthy).await;
    let status: Vec<_> = report
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.status))
        .collect();
    assert_eq!(
        status,
        [
            ("backups orders", HealthStatus::Unhealthy),
            ("backups users", HealthStatus::Healthy)
        ]
    );
    let worst = freshness.read(&age_query(BACKUP_AGE_HOURS)).await.unwrap();
    assert_eq!(
        worst.value(),
        Some(30.0),
        "the metric is the stalest store's"
    );
    let users = freshness
        .read(&age_query("backup_age_hours:users"))
        .await
        .unwrap();
    assert_eq!(users.value(), Some(0.0));
    let err = freshness
        .read(&age_query("backup_age_hours:absent"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let err = freshness.read(&age_query("cpu")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
}

#[tokio::test]
async fn a_store_that_cannot_be_listed_is_an_unhealthy_check_and_none_is_invalid() {
    let (dir, clock, store) = fixture().await;
    let freshness = BackupFreshness::new("backups")
        .watch(store.clone(), 26 * HOUR)
        .with_clock(clock.clone());
    drop(store);
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path(), b"not a directory").unwrap();
    let report = freshness.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert!(
        report.checks[0].detail.starts_with("cannot list backups"),
        "{report:?}"
    );

    let err = BackupFreshness::new("none").check().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_alert_table_fires_on_a_stale_backup() {
    let (_dir, clock, store) = fixture().await;
    nightly(&store, "db-1", Some(true), &clock).await;
    clock.advance(30 * HOUR);
    let freshness = Arc::new(
        BackupFreshness::new("backups")
            .watch(store.clone(), 26 * HOUR)
            .with_clock(clock.clone()),
    );
    let rule = AlertRule::new(
        "backup-age",
        Metric::Named {
            name: BACKUP_AGE_HOURS.into(),
        },
        26.0,
        48.0,
    );
    let config = AlertsConfig {
        rules: vec![rule],
        ..Default::default()
    };
    let now = ops_core::clock::Clock::now(clock.as_ref());
    let fired = evaluate_alerts(freshness.as_ref(), &config, now)
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, "backup-age");
    assert_eq!(
        fired[0].severity,
        Some(ops_core::contracts::Severity::Warning)
    );
}
